"""Elasticities against finite differences, limiting regimes, the tie rule, inf/zero parameters,
refused discrete knobs, exchange rates against the closed form, and the plots."""

import math

import jax
import numpy as np
import pytest
import xarray as xr

import limits
from limits.autodiff.elasticities import (
    derivatives,
    differentiable_parameters,
    elasticities,
    exchange_rate,
    exchange_rate_to_user_units,
)
from limits.model.params import ParameterError

WRT = [
    "mem_bw",
    "sync_latency",
    "sync_latency_intra_node",
    "peak_flops",
    "link_bw",
    "mem_efficiency",
    "flops_efficiency",
    "chip_power",
    "chip_price",
    "node_power",
    "electricity_price",
    "layer_overhead",
    "weight_bytes",
    "kv_bytes",
]
METRICS = [
    "utps",
    "stps",
    "step_time",
    "ttft",
    "stps_per_watt",
    "cost_per_mtok",
    "request_latency",
    "tbt",
]


def _point(**kw):
    base = dict(
        tp=32,
        batch=1,
        link_bw=4e11,
        chip_price=2.0,
        electricity_price=0.1,
        mem_efficiency=0.8,
        flops_efficiency=0.7,
        layer_overhead=1e-6,
    )
    base.update(kw)
    return _as_arrays(limits.load_params("xpu_hbm3", "llama3_405b", **base))


def _as_arrays(params):
    """Every leaf a float64 NumPy array, so perturbed copies share one jit signature."""
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf, dtype=np.float64), params)


_evaluate = jax.jit(limits.evaluate)
_elasticities_jit = jax.jit(elasticities, static_argnums=(1, 2))


def _elasticities(params, metrics, wrt):
    """Jitted (compiling beats eager op-by-op dispatch on these small graphs)."""
    return _elasticities_jit(_as_arrays(params), tuple(metrics), tuple(wrt))


def _log_fd(params, metrics, name, h=1e-5):
    """Central finite differences of ln(metric) in ln(parameter) (elementwise over a grid)."""
    params = _as_arrays(params)
    x = np.asarray(getattr(getattr(params, limits.parameter_index()[name][0]), name))
    up = _evaluate(params.replace(**{name: x * math.exp(h)}))
    down = _evaluate(params.replace(**{name: x * math.exp(-h)}))
    return {m: (np.log(np.asarray(up[m])) - np.log(np.asarray(down[m]))) / (2 * h) for m in metrics}


def _assert_close_to_fd(params, metrics, wrt):
    out = _evaluate(params)
    t_mem, t_comp = np.asarray(out["t_mem"]), np.asarray(out["t_compute"])
    assert (np.abs(t_mem - t_comp) / np.maximum(t_mem, t_comp) > 1e-2).all(), "point at a kink"
    e = _elasticities(params, metrics, wrt)
    for k, name in enumerate(wrt):
        fd = _log_fd(params, metrics, name)
        for m in metrics:
            got = np.asarray(e[f"elasticity_{m}"][..., k])
            want = np.broadcast_to(fd[m], got.shape)
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-8, err_msg=f"{m} / {name}")


@pytest.mark.parametrize(
    "kw",
    [dict(batch=1), dict(batch=512, context=1024, tp=8)],
    ids=["memory-bound", "compute-bound"],
)
def test_elasticities_match_log_finite_differences(kw):
    params = _point(**kw)
    expected_bound = "memory" if kw["batch"] == 1 else "compute"
    assert limits.BOUND_LABELS[int(limits.evaluate(params)["bound"])] == expected_bound
    _assert_close_to_fd(params, METRICS, WRT)


@pytest.mark.slow
def test_grid_axis_parameter_as_array_matches_finite_differences():
    params = _point(
        mem_bw=np.array([2.0, 4.0, 8.0])[:, None] * 2.0**40,
        context=np.array([1024.0, 65536.0])[None, :],
    )
    wrt = ["mem_bw", "sync_latency", "peak_flops"]
    e = _elasticities(params, ["utps", "ttft"], wrt)
    assert e["elasticity_utps"].shape == (3, 2, 3)
    assert e["elasticity_ttft"].shape == (3, 2, 3)
    _assert_close_to_fd(params, ["utps", "step_time"], wrt)
    # an output that depends on no grid axis (rank 0) still lands on the block, wrt last
    power = _elasticities(params, ["power"], ["chip_power", "mem_bw"])["elasticity_power"]
    assert power.shape == (3, 2, 2)
    chips_share = 900.0 * 32 / (900.0 * 32 + 300.0 * 4)
    np.testing.assert_allclose(np.asarray(power[..., 0]), chips_share, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(power[..., 1]), 0.0)


def test_trailing_axis_follows_wrt_order():
    params = _point()
    a, b = jax.jit(
        lambda p: (
            elasticities(p, ["utps"], ["mem_bw", "sync_latency"]),
            elasticities(p, ["utps"], ["sync_latency", "mem_bw"]),
        )
    )(params)
    a, b = a["elasticity_utps"], b["elasticity_utps"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[::-1])


def test_deep_memory_bound_without_sync_is_proportional_to_bandwidth():
    # tp = 8 fits one node: set the in-node latency to zero, link_bw inf -> t_sync = 0
    params = limits.load_params(
        "xpu_hbm3", "llama3_405b", tp=8, batch=1, sync_latency_intra_node=0.0
    )
    assert float(limits.evaluate(params)["t_sync"]) == 0.0
    e = _elasticities(params, ["utps", "step_time"], ["mem_bw", "mem_efficiency", "peak_flops"])
    np.testing.assert_allclose(np.asarray(e["elasticity_utps"]), [1.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.asarray(e["elasticity_step_time"]), [-1.0, -1.0, 0.0], atol=1e-12)


def test_sync_dominated_bandwidth_elasticity_tends_to_zero():
    params = limits.load_params("xpu_hbm3", "llama3_405b", tp=32, sync_latency=1e-1)
    e = np.asarray(_elasticities(params, ["utps"], ["mem_bw", "sync_latency"])["elasticity_utps"])
    assert 0.0 < e[0] < 1e-3
    assert -1.0 < e[1] < -0.999


def _tie_point():
    """A point with t_mem == t_compute exactly and no sync (memory and compute tied)."""
    base = limits.load_params("xpu_hbm3", "llama3_8b", tp=1, batch=64, context=1024)
    out = limits.evaluate(base)
    ridge = float(out["flops_per_step"]) / float(out["bytes_per_step"])
    pf = ridge * base.hardware.mem_bw
    for _ in range(64):
        params = base.replace(peak_flops=pf)
        out = limits.evaluate(params)
        if float(out["t_mem"]) == float(out["t_compute"]):
            return params
        pf = np.nextafter(pf, np.inf if float(out["t_compute"]) > float(out["t_mem"]) else 0.0)
    raise AssertionError("no exact tie found")


def test_exact_tie_splits_the_derivative_half_and_half():
    params = _tie_point()
    out = limits.evaluate(params)
    assert float(out["t_sync"]) == 0.0
    assert limits.BOUND_LABELS[int(out["bound"])] == "memory"  # ties go to memory
    e = np.asarray(_elasticities(params, ["utps"], ["mem_bw", "peak_flops"])["elasticity_utps"])
    np.testing.assert_allclose(e, [0.5, 0.5], rtol=1e-12)
    # one-sided slopes are 1 and 0: the tie value is their average
    above = params.replace(peak_flops=params.hardware.peak_flops * 1.01)
    below = params.replace(mem_bw=params.hardware.mem_bw * 1.01)
    assert _log_fd(above, ["utps"], "mem_bw")["utps"] == pytest.approx(1.0, abs=1e-6)
    assert _log_fd(below, ["utps"], "mem_bw")["utps"] == pytest.approx(0.0, abs=1e-6)


def test_infinite_and_zero_parameters_give_zero_not_nan():
    params = limits.load_params("xpu_hbm3", "llama3_405b", tp=32, sync_latency=0.0)
    assert math.isinf(params.hardware.link_bw)
    e = np.asarray(
        _elasticities(params, ["utps", "ttft"], ["link_bw", "sync_latency"])["elasticity_utps"]
    )
    np.testing.assert_array_equal(e, [0.0, 0.0])
    # utps does depend on sync_latency at zero (plain derivative non-zero): E = 0 by definition
    d = np.asarray(derivatives(params, ["utps"], ["sync_latency"])["derivative_utps"])
    assert d[0] < 0
    # a zero metric that does not depend on the parameter: 0, not 0/0
    free = params.replace(electricity_price=0.0)  # xpu presets have no chip price: cost is 0
    e_cost = np.asarray(
        _elasticities(free, ["cost_per_mtok"], ["mem_bw"])["elasticity_cost_per_mtok"]
    )
    np.testing.assert_array_equal(e_cost, [0.0])


@pytest.mark.parametrize("knob", ["tp", "pp", "batch", "context", "n_layers"])
def test_discrete_knobs_are_refused_by_name(knob):
    with pytest.raises(ParameterError, match=knob):
        elasticities(_point(), ["utps"], ["mem_bw", knob])
    assert knob not in differentiable_parameters()


def test_unknown_names_and_labels_are_refused():
    with pytest.raises(ParameterError, match="mem_bandwidth"):
        elasticities(_point(), ["utps"], ["mem_bandwidth"])
    with pytest.raises(ValueError, match="bound"):
        elasticities(_point(), ["bound"], ["mem_bw"])
    with pytest.raises(ValueError, match="speed"):
        elasticities(_point(), ["speed"], ["mem_bw"])
    with pytest.raises(ParameterError, match="mem_bw given more than once"):
        elasticities(_point(), ["utps"], ["mem_bw", "sync_latency", "mem_bw"])
    assert elasticities(_point(), ["utps"], [])["elasticity_utps"].shape == (0,)


def test_exchange_rate_matches_closed_form_and_all_sources_agree():
    params = limits.load_params("xpu_hbm3", "llama3_405b", tp=32, batch=1)
    out = _evaluate(_as_arrays(params))
    hw, m = params.hardware, params.model
    assert limits.BOUND_LABELS[int(out["bound"])] == "memory"
    # d step / d mem_bw = -t_mem / mem_bw ; d step / d sync_latency = layers x collectives
    collectives = m.n_layers * params.calibration.collectives_per_layer
    want = -(float(out["t_mem"]) / hw.mem_bw) / collectives
    got = float(jax.jit(lambda p: exchange_rate(p, "utps", "sync_latency", "mem_bw"))(params))
    assert got == pytest.approx(want, rel=1e-12)
    user = exchange_rate_to_user_units(got, "sync_latency", "mem_bw", "us", "TiB/s")
    assert user == pytest.approx(want * 2.0**40 / 1e-6, rel=1e-12)

    wrt = ["mem_bw", "sync_latency"]
    e = _elasticities(params, ["utps"], wrt)
    values = {"mem_bw": hw.mem_bw, "sync_latency": hw.sync_latency}
    from_dict = exchange_rate(e, "utps", "sync_latency", "mem_bw", wrt=wrt, values=values)
    assert float(from_dict) == pytest.approx(want, rel=1e-12)
    ds = xr.Dataset(
        {"elasticity_utps": ("wrt", np.asarray(e["elasticity_utps"]))},
        coords={"wrt": np.array(wrt, dtype=object)},
        attrs=values,
    )
    from_ds = exchange_rate(ds, "utps", "sync_latency", "mem_bw")
    assert float(from_ds) == pytest.approx(want, rel=1e-12)
    assert from_ds.attrs["units"] == "s per B/s"


def test_elasticities_jit_one_compile_over_blocks_of_same_shape():
    f = jax.jit(lambda p: elasticities(p, ["utps"], ["mem_bw", "sync_latency"]))
    a = f(_point(mem_bw=np.array([2.0, 4.0]) * 2.0**40))
    b = f(_point(mem_bw=np.array([8.0, 16.0]) * 2.0**40))
    assert f._cache_size() == 1
    assert not np.allclose(np.asarray(a["elasticity_utps"]), np.asarray(b["elasticity_utps"]))


def test_plots_produce_artists():
    pytest.importorskip("matplotlib", reason="matplotlib is in the 'plots' extra")
    from limits.plots.sensitivity import elasticity_heatmap, tornado

    wrt = ["mem_bw", "sync_latency", "peak_flops"]
    params = _point(
        mem_bw=np.array([1.0, 4.0, 16.0, 64.0])[:, None] * 2.0**40,
        batch=np.array([1.0, 64.0, 512.0, 2048.0])[None, :],
        context=1024,
    )
    out, e = jax.jit(lambda p: (limits.evaluate(p), elasticities(p, ["utps"], wrt)))(params)
    ds = xr.Dataset(
        {
            "elasticity_utps": (("mem_bw", "batch", "wrt"), np.asarray(e["elasticity_utps"])),
            "bound": (("mem_bw", "batch"), np.broadcast_to(np.asarray(out["bound"]), (4, 4))),
        },
        coords={
            "mem_bw": np.array([1.0, 4.0, 16.0, 64.0]) * 2.0**40,
            "batch": [1.0, 64.0, 512.0, 2048.0],
            "wrt": np.array(wrt, dtype=object),
        },
    )
    assert len(np.unique(ds["bound"].values)) > 1
    ax = tornado(ds.isel(mem_bw=0, batch=0), "utps")
    assert len(ax.patches) == len(wrt)
    ax = tornado({"elasticity_utps": e["elasticity_utps"][0, 0]}, "utps", wrt=wrt)
    assert len(ax.patches) == len(wrt)
    ax = elasticity_heatmap(ds, "utps", "mem_bw", x="batch", y="mem_bw")
    assert ax.collections  # the mesh and the bound contour
    assert ax.texts
