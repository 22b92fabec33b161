"""Numerics: finite gradients that agree with finite differences, jit == eager, vmap ==
broadcasting, no overflow at extreme sizes, and every output declared in OUTPUTS."""

import jax
import numpy as np
import pytest

import limits
from limits.model.outputs import LABEL_OUTPUTS, OUTPUTS

POINTS = {
    "dense_gqa": (
        "llama3_70b",
        dict(
            tp=8.0,
            batch=4.0,
            context=8192.0,
            link_bw=1e11,
            draft_len=2.0,
            acceptance_rate=0.6,
            draft_params=1e9,
            draft_layers=4.0,
        ),
    ),
    "moe_mla": ("deepseek_v3", dict(tp=16.0, ep=8.0, batch=8.0, context=4096.0)),
    "windowed": (
        "llama3_8b",
        dict(
            tp=2.0,
            pp=2.0,
            batch=2.0,
            context=65536.0,
            prompt_len=8192.0,
            sliding_window=4096.0,
            sliding_window_layer_fraction=0.5,
        ),
    ),
}
FLOAT_OUTPUTS = [k for k in OUTPUTS if k not in LABEL_OUTPUTS]


def point(name):
    model, overrides = POINTS[name]
    p = limits.load_params("xpu_hbm3", model, **overrides)
    return jax.tree_util.tree_map(float, p)  # float leaves: differentiable


def test_every_output_is_declared_with_units():
    out = limits.evaluate(point("dense_gqa"))
    assert set(out) == set(OUTPUTS)
    assert all(units for units, _ in OUTPUTS.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", POINTS)
def test_gradients_are_finite_everywhere(name):
    p = point(name)
    jac = jax.jacrev(
        lambda q: {
            k: v
            for k, v in limits.evaluate(q).items()
            if k in FLOAT_OUTPUTS and k != "tokens_per_usd"
        }
    )(p)
    for out_name, grads in jac.items():
        for param, value in grads.flat().items():
            assert np.isfinite(np.asarray(value)).all(), (out_name, param)


CHECKED_OUTPUTS = ("step_time", "stps", "ttft", "utps", "cost_per_mtok", "memory_required")
CHECKED_PARAMS = (
    "mem_bw",
    "peak_flops",
    "sync_latency",
    "context",
    "batch",
    "prompt_len",
    "acceptance_rate",
    "chip_power",
)


@pytest.mark.parametrize("name", POINTS)
def test_gradients_match_central_differences(name):
    """d output / d parameter (forward mode) against a central difference with a relative step
    of 1e-6, at points away from the max() kinks. Whole-number parameters are differentiated as
    the continuous relaxation (traced values skip the whole-number check)."""
    p = point(name).replace(electricity_price=0.1, acceptance_rate=0.6)
    x0 = np.array([float(p.flat()[k]) for k in CHECKED_PARAMS])

    @jax.jit
    def outputs(x):
        out = limits.evaluate(p.replace(**dict(zip(CHECKED_PARAMS, x))))
        return jax.numpy.stack([out[k] for k in CHECKED_OUTPUTS])

    jac = np.asarray(jax.jit(jax.jacfwd(outputs))(x0))
    base = np.asarray(outputs(x0))
    for j, param in enumerate(CHECKED_PARAMS):
        step = np.zeros_like(x0)
        step[j] = 1e-6 * x0[j]
        numeric = (np.asarray(outputs(x0 + step)) - np.asarray(outputs(x0 - step))) / (2 * step[j])
        # relative tolerance, plus an elasticity-sized floor for derivatives that are ~0
        tolerance = 1e-5 * np.abs(numeric) + 1e-8 * np.abs(base) / x0[j]
        bad = np.abs(jac[:, j] - numeric) > tolerance
        assert not bad.any(), (
            name,
            param,
            np.array(CHECKED_OUTPUTS)[bad],
            jac[bad, j],
            numeric[bad],
        )


def test_jit_equals_eager():
    p = point("moe_mla")
    eager, jitted = limits.evaluate(p), jax.jit(limits.evaluate)(p)
    for k in OUTPUTS:
        np.testing.assert_allclose(
            np.asarray(jitted[k]), np.asarray(eager[k]), rtol=1e-13, err_msg=k
        )


def test_vmap_equals_broadcasting():
    p = point("dense_gqa")
    bws = np.array([1e12, 4e12, 16e12])
    mapped = jax.vmap(lambda bw: limits.evaluate(p.replace(mem_bw=bw))["step_time"])(bws)
    broadcast = limits.evaluate(p.replace(mem_bw=bws))["step_time"]
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(broadcast), rtol=1e-14)


def test_extreme_sizes_stay_finite():
    """Counts are floats: 1e6 users x 1e8 tokens of context does not overflow or wrap."""
    p = limits.load_params(
        "xpu_hbm3",
        "llama3_405b",
        tp=128.0,
        batch=1e6,
        context=1e8,
        prompt_len=1e7,
        max_context=float("inf"),
        kv_bytes=2.0,
    )
    out = limits.evaluate(p)
    for k in FLOAT_OUTPUTS:
        if k != "tokens_per_usd":  # free hardware: infinitely many tokens per dollar
            assert np.isfinite(np.asarray(out[k])).all(), k
    assert float(out["kv_bytes_read"]) == pytest.approx(1e6 * 1e8 * 516_096 / 2 * 2)


def test_acceptance_near_one_is_continuous():
    near = limits.load_params("xpu_hbm3", "llama3_8b", draft_len=4.0, acceptance_rate=1.0 - 1e-9)
    one = near.replace(acceptance_rate=1.0)
    assert float(limits.evaluate(near)["tokens_per_step"]) == pytest.approx(
        float(limits.evaluate(one)["tokens_per_step"]), rel=1e-6
    )
