"""Property tests: invariants of the limit model over random valid configurations."""

import os

import hypothesis.strategies as st
import jax
import numpy as np
import pytest
from hypothesis import assume, given, settings

import limits
from limits.model.outputs import BOUND_LABELS, LABEL_OUTPUTS
from limits.model.params import numeric_fields

# "fast" keeps the suite quick; LIMITS_HYPOTHESIS_PROFILE=thorough runs many more examples.
settings.register_profile("fast", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
PROPERTY_SETTINGS = settings.get_profile(os.environ.get("LIMITS_HYPOTHESIS_PROFILE", "fast"))
EVALUATE = jax.jit(limits.evaluate)
MODELS = ("llama3_8b", "llama3_70b", "llama3_405b", "deepseek_v3")


def run(p):
    return {k: np.asarray(v) for k, v in EVALUATE(p).items()}


def log_uniform(lo, hi):
    return st.floats(np.log10(lo), np.log10(hi)).map(lambda e: float(10.0**e))


@st.composite
def configs(draw):
    """A valid ``Params``: random hardware numbers, model preset, batch, context, parallelism
    (tp from the divisors and small multiples of the head count), sync latencies, drafts."""
    model = draw(st.sampled_from(MODELS))
    base = limits.load_params("xpu_hbm3", model)
    heads = int(base.model.n_heads)
    tp = draw(
        st.sampled_from(
            [t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256) if heads % t == 0 or t % heads == 0]
        )
    )
    ep = 1
    if base.model.ffn == "moe":
        ep = draw(
            st.sampled_from(
                [
                    e
                    for e in (1, 2, 4, 8, 16, 32)
                    if tp % e == 0 and int(base.model.n_experts) % e == 0
                ]
            )
        )
    draft_len = draw(st.integers(0, 4))
    return base.replace(
        mem_bw=draw(log_uniform(1e11, 1e16)),
        peak_flops=draw(log_uniform(1e13, 1e17)),
        mem_capacity=draw(log_uniform(1e9, 1e12)),
        sync_latency=draw(st.floats(0, 1e-5)),
        sync_latency_intra_node=draw(st.floats(0, 1e-5)),
        pipeline_latency=draw(st.floats(0, 1e-5)),
        node_size=float(draw(st.sampled_from([1, 4, 8, 16, 72]))),
        link_bw=draw(st.one_of(st.just(float("inf")), log_uniform(1e9, 1e13))),
        batch=float(draw(st.integers(1, 512))),
        context=float(draw(st.integers(1, 131072))),
        prompt_len=float(draw(st.integers(1, 32768))),
        tp=float(tp),
        ep=float(ep),
        pp=float(draw(st.sampled_from([1, 2, 4]))),
        replicas=float(draw(st.integers(1, 4))),
        weight_bytes=draw(st.sampled_from([0.5, 1.0, 2.0])),
        kv_bytes=draw(st.sampled_from([1.0, 2.0])),
        draft_len=float(draft_len),
        acceptance_rate=draw(st.floats(0, 1)),
        draft_params=draw(st.sampled_from([0.0, 1e8, 1e9])) if draft_len else 0.0,
        draft_layers=float(draw(st.integers(0, 16))) if draft_len else 0.0,
        layer_overhead=draw(st.sampled_from([0.0, 1e-6])),
        mem_efficiency=draw(st.floats(0.3, 1.0)),
        flops_efficiency=draw(st.floats(0.3, 1.0)),
    )


factors = st.floats(1.0, 100.0)


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(configs(), factors)
def test_more_memory_bandwidth_never_slows_a_step(p, factor):
    faster = p.replace(mem_bw=p.hardware.mem_bw * factor)
    assert run(faster)["step_time"] <= run(p)["step_time"]


@PROPERTY_SETTINGS
@given(configs(), factors)
def test_more_peak_flops_never_slows_a_step(p, factor):
    faster = p.replace(peak_flops=p.hardware.peak_flops * factor)
    assert run(faster)["step_time"] <= run(p)["step_time"]


@PROPERTY_SETTINGS
@given(configs(), factors, st.floats(0, 1e-5))
def test_more_sync_latency_never_speeds_a_step(p, factor, extra):
    hw = p.hardware
    slower = p.replace(
        sync_latency=hw.sync_latency * factor + extra,
        sync_latency_intra_node=hw.sync_latency_intra_node * factor + extra,
        pipeline_latency=hw.pipeline_latency * factor + extra,
    )
    assert run(slower)["step_time"] >= run(p)["step_time"]


@PROPERTY_SETTINGS
@given(configs(), factors)
def test_more_link_bandwidth_never_slows_a_step(p, factor):
    faster = p.replace(link_bw=p.hardware.link_bw * factor)
    assert run(faster)["step_time"] <= run(p)["step_time"]
    assert run(faster)["ttft"] <= run(p)["ttft"]


def without_sync(p):
    return p.replace(
        sync_latency=0.0,
        sync_latency_intra_node=0.0,
        pipeline_latency=0.0,
        link_bw=float("inf"),
        layer_overhead=0.0,
        draft_len=0.0,
    )


@PROPERTY_SETTINGS
@given(configs())
def test_no_sync_gives_the_roofline_exactly(p):
    out = run(without_sync(p))
    assert out["t_sync"] == 0.0
    assert out["step_time"] == np.maximum(out["t_mem"], out["t_compute"])


@PROPERTY_SETTINGS
@given(configs())
def test_unbounded_bandwidth_leaves_compute_plus_sync(p):
    p = p.replace(layer_overhead=0.0, draft_len=0.0)
    out = run(p.replace(mem_bw=1e30))
    assert out["t_compute"] == run(p)["t_compute"]
    assert out["step_time"] == pytest.approx(max(out["t_compute"], 0.0) + out["t_sync"], rel=1e-9)


@PROPERTY_SETTINGS
@given(configs())
def test_breakdown_is_consistent(p):
    out = run(p)
    d = p.deployment
    walls = np.maximum(out["t_mem"], out["t_compute"])
    assert out["step_time"] == pytest.approx(
        walls + out["t_sync"] + out["t_overhead"] + out["t_draft"], rel=1e-12
    )
    assert out["utps"] == pytest.approx(out["tokens_per_step"] / out["step_time"], rel=1e-12)
    assert out["tbt"] == pytest.approx(out["step_time"] / out["tokens_per_step"], rel=1e-12)
    assert out["stps"] == pytest.approx(d.replicas * d.pp * d.batch * out["utps"], rel=1e-12)
    assert out["bytes_per_step"] == pytest.approx(
        out["weight_bytes_read"] + out["kv_bytes_read"], rel=1e-12
    )
    assert 1.0 <= out["tokens_per_step"] <= d.draft_len + 1.0
    assert out["request_latency"] == pytest.approx(
        out["ttft"] + (d.output_len - 1) * out["tbt"], rel=1e-12
    )


@PROPERTY_SETTINGS
@given(configs())
def test_max_batch_fits_and_one_more_does_not(p):
    out = run(p)
    max_batch = float(out["max_batch"])
    assume(max_batch >= 1)
    # skip exact ties of the free memory with a whole number of users (rounding decides)
    kv_per_user = float(out["memory_kv"]) / (p.deployment.pp * p.deployment.batch)
    room = (
        float(out["memory_available"] - out["memory_weights"])
        - p.deployment.tp * p.deployment.pp * p.calibration.workspace_bytes
    )
    users = room / (p.deployment.pp * kv_per_user)
    assume(abs(users - round(users)) > 1e-9 * max(users, 1.0))
    assert bool(run(p.replace(batch=max_batch))["feasible"])
    assert not bool(run(p.replace(batch=max_batch + 1))["feasible"])


@PROPERTY_SETTINGS
@given(configs())
def test_bound_label_names_the_largest_wall(p):
    out = run(p)
    label = BOUND_LABELS[int(out["bound"])]
    if not out["feasible"]:
        assert label == "capacity"
        return
    walls = {"memory": out["t_mem"], "compute": out["t_compute"], "sync": out["t_sync"]}
    assert walls[label] == max(walls.values())


def test_broadcast_grid_matches_point_by_point():
    """mem_bw x context x batch as (3,1,1), (1,4,1), (1,1,2) arrays: same as each point alone."""
    base = limits.load_params("xpu_hbm3", "llama3_70b", tp=8, pp=2, link_bw=1e11)
    mem_bw = np.array([1e12, 4e12, 3e13]).reshape(3, 1, 1)
    context = np.array([1.0, 1024.0, 32768.0, 131072.0]).reshape(1, 4, 1)
    batch = np.array([1.0, 64.0]).reshape(1, 1, 2)
    grid = run(base.replace(mem_bw=mem_bw, context=context, batch=batch))
    for i, j, k in np.ndindex(3, 4, 2):
        point = run(
            base.replace(
                mem_bw=float(mem_bw[i, 0, 0]),
                context=float(context[0, j, 0]),
                batch=float(batch[0, 0, k]),
            )
        )
        for name, value in point.items():
            cell = np.broadcast_to(grid[name], (3, 4, 2))[i, j, k]
            assert cell == pytest.approx(value, rel=1e-12, nan_ok=True), (name, i, j, k)


# --- float32 against float64 ---------------------------------------------------------------

FLOAT32_REL_TOL = 1e-5


def as_float32(p):
    leaves, tree = jax.tree_util.tree_flatten(p)
    return jax.tree_util.tree_unflatten(tree, [np.float32(x) for x in leaves])


def all_hardware_presets():
    """Every hardware preset stacked along axis 0, shape (n, 1): one evaluation covers all."""
    presets = [
        limits.Hardware.from_mapping(limits.load_preset("hardware", name))
        for name in limits.available("hardware")
    ]
    stacked = {
        f: np.array([getattr(h, f) for h in presets]).reshape(-1, 1)
        for f in numeric_fields(limits.Hardware)
    }
    return limits.Hardware(name="all_presets", **stacked)


@pytest.mark.slow
@pytest.mark.parametrize("model", limits.available("model"))
def test_float32_agrees_with_float64(model):
    """Every hardware preset x this model at (batch, context) = (1, 4K) and (32, 128K or the
    model's max_context): every
    float output agrees to FLOAT32_REL_TOL; bound and feasible agree away from ties (max_batch,
    a floor, may differ by one user when the free memory is near a multiple of a user's KV)."""
    long_context = min(131072.0, limits.load_params("xpu_hbm3", model).model.max_context)
    p64 = limits.load_params(
        all_hardware_presets(),
        model,
        tp=8,
        batch=np.array([[1.0, 32.0]]),
        context=np.array([[min(4096.0, long_context), long_context]]),
        draft_len=2,
        acceptance_rate=0.7,
        draft_params=1e9,
        draft_layers=8,
        link_bw=1e11,
        chip_price=2.0,
        electricity_price=0.1,
    )
    out64, out32 = run(p64), run(as_float32(p64))
    shape = (len(limits.available("hardware")), 2)
    for name, v64 in out64.items():
        v64, v32 = np.broadcast_to(v64, shape), np.broadcast_to(out32[name], shape)
        if name in LABEL_OUTPUTS:
            continue
        assert v32.dtype == np.float32, name
        if name == "max_batch":
            assert (np.abs(v32 - v64) <= np.maximum(1.0, 1e-5 * v64)).all()
            continue
        finite = np.isfinite(v64)
        np.testing.assert_allclose(v32[finite], v64[finite], rtol=FLOAT32_REL_TOL, err_msg=name)
        assert (v32[~finite] == v64[~finite]).all(), name
    walls = np.sort(
        np.stack([np.broadcast_to(out64[k], shape) for k in ("t_mem", "t_compute", "t_sync")]),
        axis=0,
    )
    untied = walls[-1] - walls[-2] > 1e-4 * walls[-1]
    assert (out32["bound"][untied] == out64["bound"][untied]).all()
    margin = np.abs(out64["memory_available"] - out64["memory_required"])
    clear = margin > 1e-5 * out64["memory_available"]
    assert (out32["feasible"][clear] == out64["feasible"][clear]).all()


def test_output_catalogues_name_outputs_of_the_model():
    """The named groups of outputs (one place, ``limits.model.outputs``) that the query and
    the calibration use are outputs the model returns, each once."""
    import limits
    from limits.autodiff.calibrate import CALIBRATED_OUTPUTS
    from limits.model.outputs import DECODE_FIGURES, OUTPUTS, SERVING_FIGURES
    from limits.query import SERVING_NAMES

    out = limits.evaluate(limits.load_params("xpu_hbm3", "llama3_8b"))
    for group in (DECODE_FIGURES, SERVING_FIGURES):
        assert len(set(group)) == len(group) and set(group) <= set(OUTPUTS) & set(out)
    assert SERVING_NAMES == set(SERVING_FIGURES)
    assert CALIBRATED_OUTPUTS == (*DECODE_FIGURES, *SERVING_FIGURES)
