"""Sobol indices and DGSM against cases with known answers; the DGSM bound ST <= dgsm."""

import math

import numpy as np
import pytest

import limits

pytest.importorskip("SALib", reason="SALib is in the 'analysis' extra")
from limits.autodiff.global_sensitivity import sobol_indices

TIB = 2.0**40


def _memory_bound_point():
    """utps = c x mem_bw x mem_efficiency exactly: one node (no scale-out), zero in-node
    latency, batch 1 (deep memory-bound)."""
    return limits.load_params("xpu_hbm3", "llama3_405b", tp=8, batch=1, sync_latency_intra_node=0.0)


def _log_uniform_moments(a, b):
    w = math.log(b / a)
    return (b - a) / w, (b * b - a * a) / (2 * w)  # E[X], E[X^2]


def test_only_bandwidth_matters_in_the_deep_memory_bound_regime():
    ranges = {
        "mem_bw": (2 * TIB, 16 * TIB, "log"),
        "chip_price": (1.0, 5.0, "linear"),
        "sync_latency": (1e-6, 1e-5, "log"),
    }  # scale-out latency unused at tp = 8
    ds = sobol_indices(_memory_bound_point(), "utps", ranges, n=256)
    assert list(ds["param"].values) == list(ranges)
    for name in ("S1", "S1_conf", "ST", "ST_conf", "dgsm"):
        assert ds[name].dims == ("param",) and ds[name].attrs["units"] == "1"
    s = ds.sel(param="mem_bw")
    assert float(s["S1"]) == pytest.approx(1.0, abs=0.05)
    assert float(s["ST"]) == pytest.approx(1.0, abs=0.05)
    for other in ("chip_price", "sync_latency"):
        for name in ("S1", "ST", "dgsm"):
            assert abs(float(ds[name].sel(param=other))) < 1e-9
    # utps = k e^z, z ~ U[0, w]: dgsm = w^2 E[e^2z] / (pi^2 Var e^z), analytically
    w = math.log(8.0)
    mean, second = (math.exp(w) - 1) / w, (math.exp(2 * w) - 1) / (2 * w)
    dgsm = w * w * second / (math.pi**2 * (second - mean * mean))
    assert float(s["dgsm"]) == pytest.approx(dgsm, rel=0.03)
    assert float(s["dgsm"]) >= float(s["ST"])


def test_product_of_two_log_uniform_factors_matches_analytic_indices():
    (a, b), (c, d) = (2 * TIB, 16 * TIB), (0.25, 1.0)
    ranges = {"mem_bw": (a, b, "log"), "mem_efficiency": (c, d, "log")}
    ds = sobol_indices(_memory_bound_point(), "utps", ranges, n=1024, seed=1)
    (ex, ex2), (ey, ey2) = _log_uniform_moments(a, b), _log_uniform_moments(c, d)
    var = ex2 * ey2 - ex * ex * ey * ey
    want_s1 = {
        "mem_bw": (ex2 - ex * ex) * ey * ey / var,
        "mem_efficiency": (ey2 - ey * ey) * ex * ex / var,
    }
    want_st = {"mem_bw": (ex2 - ex * ex) * ey2 / var, "mem_efficiency": (ey2 - ey * ey) * ex2 / var}
    for name in ranges:
        assert float(ds["S1"].sel(param=name)) == pytest.approx(want_s1[name], abs=0.03)
        assert float(ds["ST"].sel(param=name)) == pytest.approx(want_st[name], abs=0.03)
        assert float(ds["dgsm"].sel(param=name)) >= float(ds["ST"].sel(param=name))


def test_log_metric_is_additive_and_dgsm_is_twelve_over_pi_squared_times_st():
    # ln utps = ln mem_bw + ln mem_efficiency + const: S1 = ST = w_i^2 / sum w^2, and with
    # d ln utps / dz_i = 1, dgsm_i = w_i^2 / (pi^2 w_total^2 / 12) = 12/pi^2 S_i
    ranges = {"mem_bw": (2 * TIB, 16 * TIB, "log"), "mem_efficiency": (0.5, 1.0, "log")}
    ds = sobol_indices(_memory_bound_point(), "utps", ranges, n=512, log_metric=True)
    w2 = np.array([math.log(8.0) ** 2, math.log(2.0) ** 2])
    share = w2 / w2.sum()
    np.testing.assert_allclose(ds["S1"].values, share, atol=0.02)
    np.testing.assert_allclose(ds["ST"].values, share, atol=0.02)
    np.testing.assert_allclose(ds["dgsm"].values, 12 / math.pi**2 * share, rtol=0.02)
    assert ds.attrs["log_metric"] == 1 and ds.attrs["metric_units"] == "1"


def test_bad_ranges_are_refused_by_name():
    p = _memory_bound_point()
    with pytest.raises(limits.ParameterError, match="mem_bw"):
        sobol_indices(p, "utps", {"mem_bw": (2.0, 1.0, "log")})
    with pytest.raises(limits.ParameterError, match="sync_latency"):
        sobol_indices(p, "utps", {"sync_latency": (0.0, 1e-6, "log")})
    with pytest.raises(limits.ParameterError, match="chip_price"):
        sobol_indices(p, "utps", {"chip_price": (1.0, 2.0, "cubic")})
    with pytest.raises(limits.ParameterError, match="batch"):
        sobol_indices(p, "utps", {"batch": (1.0, 64.0, "log")})
    with pytest.raises(limits.ParameterError, match="one design point"):
        sobol_indices(p.replace(tp=np.array([8.0, 16.0])), "utps", {"mem_bw": (1e12, 2e12, "log")})
