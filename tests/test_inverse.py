"""Inverse design: solutions plugged back into the model reach the target; unreachable targets
are NaN with the right reason; grids are handled elementwise."""

import jax
import numpy as np
import pytest

import limits
from limits.autodiff.inverse import (
    LATENCY_PARAMS,
    REASON_LABELS,
    max_sync_latency,
    min_chips,
    min_mem_bw,
    required_utps,
    tp_candidates,
)

_evaluate = jax.jit(limits.evaluate)


def _params(**kw):
    base = dict(tp=32, batch=1)
    base.update(kw)
    return limits.load_params("xpu_hbm3", "llama3_405b", **base)


def _reason(code):
    return REASON_LABELS[int(code)]


SPECULATIVE = dict(draft_len=4, acceptance_rate=0.7, draft_params=8e9, draft_layers=32)


@pytest.mark.parametrize(
    "kw, target",
    [
        (dict(), 120.0),
        (dict(), 1000.0),  # memory-bound, slower/faster
        (dict(batch=256, context=1024, tp=8), 30.0),  # t_compute matters
        (dict(link_bw=5e10, layer_overhead=2e-6), 200.0),  # bandwidth term and overhead
        (SPECULATIVE, 500.0),  # draft model with its own walls
    ],
    ids=["slow", "fast", "batch", "link_bw", "speculative"],
)
def test_min_mem_bw_round_trip(kw, target):
    params = _params(**kw)
    r = jax.jit(lambda p: min_mem_bw(p, target))(params)
    assert _reason(r["reason"]) == "reached"
    bw = float(r["mem_bw"])
    utps = float(_evaluate(params.replace(mem_bw=bw))["utps"])
    assert utps == pytest.approx(target, rel=1e-6)
    # less bandwidth misses the target: it is the least
    assert float(_evaluate(params.replace(mem_bw=bw * 0.999))["utps"]) < target


def test_min_mem_bw_for_system_throughput_with_tbt_bound():
    params = _params(batch=16)
    # stps target binds: 16 users x 100 tok/s
    r = min_mem_bw(params, target_stps=1600.0, max_tbt=0.05)
    out = _evaluate(params.replace(mem_bw=float(r["mem_bw"])))
    assert float(out["stps"]) == pytest.approx(1600.0, rel=1e-6)
    # the TBT bound binds (1 / 5 ms = 200 tok/s/user > 100)
    r = min_mem_bw(params, target_stps=1600.0, max_tbt=0.005)
    out = _evaluate(params.replace(mem_bw=float(r["mem_bw"])))
    assert float(out["tbt"]) == pytest.approx(0.005, rel=1e-6)
    assert float(required_utps(params, target_stps=1600.0, max_tbt=0.005)) == 200.0


def test_min_mem_bw_unreachable_reasons():
    # sync alone: 252 collectives x 2.25 us = 567 us > 1/2000 s
    r = min_mem_bw(_params(), 2000.0)
    assert np.isnan(float(r["mem_bw"])) and _reason(r["reason"]) == "sync"
    # compute alone exceeds the budget: big batch on one node
    params = _params(batch=4096, context=1024, tp=8, mem_capacity=1e13)
    t_compute = float(_evaluate(params)["t_compute"])
    r = min_mem_bw(params, 1.0 / (0.9 * t_compute))
    assert np.isnan(float(r["mem_bw"])) and _reason(r["reason"]) == "compute"
    # 405 GB of weights do not fit one 96 GiB chip
    r = min_mem_bw(_params(tp=1), 10.0)
    assert np.isnan(float(r["mem_bw"])) and _reason(r["reason"]) == "capacity"


@pytest.mark.parametrize("tp, which", [(32, "sync_latency"), (8, "sync_latency_intra_node")])
def test_max_sync_latency_round_trip_picks_the_group_latency(tp, which):
    params = _params(tp=tp, link_bw=2e11)
    target = 0.8 * float(
        _evaluate(params.replace(sync_latency=0.0, sync_latency_intra_node=0.0))["utps"]
    )
    r = jax.jit(lambda p: max_sync_latency(p, target))(params)
    assert _reason(r["reason"]) == "reached"
    assert LATENCY_PARAMS[int(r["latency_param"])] == which
    latency = float(r["sync_latency_max"])
    assert latency > 0
    utps = float(_evaluate(params.replace(**{which: latency}))["utps"])
    assert utps == pytest.approx(target, rel=1e-6)


def test_max_sync_latency_unreachable_and_unused():
    # the memory wall alone is slower than the target: no latency helps
    r = max_sync_latency(_params(tp=8), 1000.0)
    assert np.isnan(float(r["sync_latency_max"])) and _reason(r["reason"]) == "memory"
    # tp = 1 (a small model on one chip): no collective, any latency works
    params = limits.load_params("xpu_hbm3", "llama3_8b", tp=1)
    r = max_sync_latency(params, 10.0)
    assert float(r["sync_latency_max"]) == np.inf and _reason(r["reason"]) == "reached"
    with pytest.raises(limits.ParameterError, match="latency"):
        max_sync_latency(params, 10.0, latency="pipeline_latency")


@pytest.mark.slow
def test_min_chips_is_the_smallest_allowed_tp_that_reaches_the_target():
    params = _params()
    cands = tp_candidates(128, max_tp=512)
    assert cands[:8] == (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0) and cands[-1] == 512.0
    for target in (100.0, 300.0, 1000.0):
        r = min_chips(params, target, max_tp=512)
        assert _reason(r["reason"]) == "reached"
        tp = float(r["tp"])
        out = _evaluate(params.replace(tp=tp))
        assert float(out["utps"]) >= target and bool(out["feasible"])
        assert float(r["chips"]) == tp
        smaller = [c for c in cands if c < tp]
        for c in smaller:
            out = _evaluate(params.replace(tp=c))
            assert not (bool(out["feasible"]) and float(out["utps"]) >= target)


def test_min_chips_unreachable_reports_the_binding_wall():
    r = min_chips(_params(), 5000.0, max_tp=512)
    assert np.isnan(float(r["tp"])) and _reason(r["reason"]) == "sync"
    r = min_chips(_params(), 10.0, candidates=(1.0, 2.0))
    assert np.isnan(float(r["tp"])) and _reason(r["reason"]) == "capacity"


def test_inverse_is_elementwise_over_a_grid():
    grid = _params(
        tp=np.array([8.0, 16.0, 32.0, 64.0])[:, None], batch=np.array([1.0, 16.0, 64.0])[None, :]
    )
    r = jax.jit(lambda p: min_mem_bw(p, 200.0))(grid)
    assert r["mem_bw"].shape == (4, 3) and r["reason"].shape == (4, 3)
    for i, tp in enumerate([8.0, 16.0, 32.0, 64.0]):
        for j, batch in enumerate([1.0, 16.0, 64.0]):
            point = min_mem_bw(_params(tp=tp, batch=batch), 200.0)
            np.testing.assert_allclose(float(r["mem_bw"][i, j]), float(point["mem_bw"]), rtol=1e-12)
    s = jax.jit(lambda p: max_sync_latency(p, 200.0))(grid)
    np.testing.assert_array_equal(np.asarray(s["latency_param"])[:, 0], [0, 1, 1, 1])
    c = jax.jit(lambda p: min_chips(p, 200.0, candidates=(8.0, 16.0, 32.0, 64.0)))(grid)
    assert c["tp"].shape == (4, 3)


@pytest.mark.slow
def test_min_chips_when_outputs_depend_on_different_grid_axes():
    # memory capacity (an axis utps ignores) decides which tp fits; utps is rank 0
    grid = _params(mem_capacity=np.array([16.0, 96.0]) * 2.0**30)
    r = min_chips(grid, 100.0, candidates=(8.0, 16.0, 32.0, 64.0))
    assert r["tp"].shape == (2,)
    for i, cap in enumerate([16.0, 96.0]):
        point = min_chips(
            _params(mem_capacity=cap * 2.0**30), 100.0, candidates=(8.0, 16.0, 32.0, 64.0)
        )
        assert float(r["tp"][i]) == float(point["tp"])
    assert float(r["tp"][0]) > float(r["tp"][1])
