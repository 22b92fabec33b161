"""Numerics at extreme but valid values: no overflow, no NaN, in float32 and float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import limits

MODELS = ["llama3_8b", "llama3_405b", "deepseek_v3"]


def _as(p: limits.Params, dtype) -> limits.Params:
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), p)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("model", MODELS)
def test_context_ten_million_and_hundred_thousand_chips(model, dtype):
    """context 1e7 tokens and 131072 chips (tp, a multiple of every model's heads)."""
    base = limits.load_params("xpu_hbm3", model)
    p = base.replace(max_context=float("inf"), context=1e7, prompt_len=1e7, tp=131072.0,
                     batch=64.0, output_len=1e6)
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
