"""Numerics at extreme but valid values: no overflow, no NaN, in float32 and float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import limits
from limits.analysis import open_results
from limits.sweep import compose, run

MODELS = ["llama3_8b", "llama3_405b", "deepseek_v3"]


def _as(p: limits.Params, dtype) -> limits.Params:
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), p)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("model", MODELS)
def test_context_ten_million_and_hundred_thousand_chips(model, dtype):
    """context 1e7 tokens and 131072 chips (tp, a multiple of every model's heads)."""
    base = limits.load_params("xpu_hbm3", model)
    p = base.replace(
        max_context=float("inf"),
        context=1e7,
        prompt_len=1e7,
        tp=131072.0,
        batch=64.0,
        output_len=1e6,
    )
    out = jax.jit(limits.evaluate)(_as(p, dtype))
    for name, value in out.items():
        arr = np.asarray(value, dtype=np.float64)
        assert np.isfinite(arr).all(), f"{name} = {arr} at context 1e7, tp 131072"
    assert float(out["step_time"]) > 0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_feasible_points_are_nan_free_over_a_wide_grid(dtype):
    """Every output is finite wherever the point is feasible, over a grid spanning decades."""
    p = limits.load_params("xpu_hbm4", "llama3_70b").replace(max_context=float("inf"))
    grid = dict(
        context=np.geomspace(1, 1e7, 8).round().reshape(8, 1, 1, 1),
        batch=np.array([1.0, 64.0, 4096.0]).reshape(1, 3, 1, 1),
        tp=np.array([1.0, 8.0, 64.0, 65536.0]).reshape(1, 1, 4, 1),
        sync_latency=np.array([0.0, 1e-9, 1e-3]).reshape(1, 1, 1, 3),
    )
    out = jax.jit(limits.evaluate)(_as(p.replace(**grid), dtype))
    feasible = np.broadcast_to(np.asarray(out["feasible"]), (8, 3, 4, 3))
    assert feasible.any() and not feasible.all()
    for name, value in out.items():
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), feasible.shape)
        assert np.isfinite(arr[feasible]).all(), f"{name} not finite at a feasible point"


def test_sweep_at_extreme_axes_float32_matches_float64_and_feasible_points_are_finite(tmp_path):
    """Through the sweep engine (blocks, padding, two devices, the store): context up to 1e7
    tokens on a model without max_context and up to 131072 chips, in float32 and float64.
    Every feasible point is finite in both; float32 agrees with float64 to 1e-5 relative."""
    grid = [
        "grid=point",
        "model.max_context=inf",
        "++grid.context=[1,1000,100000,10000000]",
        "++grid.tp=[1,128,131072]",
        "++grid.batch=[1,4096]",
        "++grid.sync_latency=[0,1us]",
        "store.chunk_points=16",
    ]
    stores = {
        p: open_results(
            run(
                compose(grid + [f"precision={p}", f"store.path={tmp_path / p}.zarr"]), verbose=False
            ).path
        ).load()
        for p in ("float32", "float64")
    }
    s32, s64 = stores["float32"], stores["float64"]
    feasible = s64.feasible.values
    assert feasible.any() and not feasible.all()
    for name in s64.data_vars:
        v32, v64 = s32[name].values, s64[name].values
        if v64.dtype.kind != "f":
            continue
        assert v32.dtype == np.float32, name
        if name == "tokens_per_usd":  # free hardware (price 0): infinitely many per dollar
            continue
        assert np.isfinite(v64[feasible]).all() and np.isfinite(v32[feasible]).all(), name
        if name == "max_batch":  # a floor: may differ by one user near a whole number
            assert (np.abs(v32 - v64) <= np.maximum(1.0, 1e-5 * np.abs(v64))).all()
            continue
        both = np.isfinite(v64) & feasible
        np.testing.assert_allclose(v32[both], v64[both], rtol=1e-5, err_msg=name)
