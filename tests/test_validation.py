"""Bad parameters fail early with a message naming the parameter and its allowed range."""

import dataclasses

import pytest

import limits
from limits import Hardware, Model, ParameterError, UnitError


def base(**overrides):
    return limits.load_params("xpu_hbm3", "llama3_8b", **overrides)


def deepseek(**overrides):
    return limits.load_params("xpu_hbm3", "deepseek_v3", **overrides)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        (dict(mem_bw=-1.0), r"hardware\.mem_bw = -1 is out of range; allowed: \(0, inf\) B/s"),
        (dict(mem_bw=0.0), r"hardware\.mem_bw = 0 is out of range; allowed: \(0, inf\)"),
        (dict(tp=0.0), r"deployment\.tp = 0 is out of range; allowed: whole number in \[1, inf\)"),
        (
            dict(peak_flops=float("nan")),
            r"hardware\.peak_flops = nan is not a number; allowed: "
            r"\(0, inf\) FLOP/s",
        ),
        (dict(mem_bw=float("inf")), r"hardware\.mem_bw = inf is not allowed; allowed: \(0, inf\)"),
        (
            dict(link_bw=float("-inf")),
            r"hardware\.link_bw = -inf is not allowed; allowed: "
            r"\(0, inf\] B/s",
        ),
        (
            dict(n_layers=31.5),
            r"model\.n_layers = 31\.5 must be a whole number; allowed: whole "
            r"number in \[1, inf\)",
        ),
        (dict(batch=2.5), r"deployment\.batch = 2\.5 must be a whole number"),
        (
            dict(acceptance_rate=1.5),
            r"deployment\.acceptance_rate = 1\.5 is out of range; "
            r"allowed: \[0, 1\]",
        ),
        (
            dict(mem_efficiency=0.0),
            r"calibration\.mem_efficiency = 0 is out of range; allowed: "
            r"\(0, 1\]",
        ),
        (dict(tp=12.0), r"deployment\.tp = 12 must divide model\.n_heads = 32 or be a multiple"),
        (dict(ep=2.0), r"deployment\.ep = 2 must divide deployment\.tp = 1"),
        (
            dict(tp=2.0, ep=2.0),
            r"deployment\.ep = 2 needs a MoE model; model llama3_8b is dense "
            r"\(allowed: 1\)",
        ),
        (
            dict(context=131073.0),
            r"deployment\.context = 131073 exceeds model\.max_context = "
            r"131072",
        ),
        (dict(pp=33.0), r"deployment\.pp = 33 exceeds model\.n_layers = 32"),
        (dict(tp=True), r"deployment\.tp = True is not a number"),
    ],
)
def test_bad_value_names_parameter_and_range(overrides, pattern):
    with pytest.raises(ParameterError, match=pattern):
        base(**overrides)


def test_tp_multiple_of_heads_is_allowed():
    assert float(base(tp=64.0).deployment.tp) == 64.0


def test_nan_inside_a_grid_is_caught():
    import numpy as np

    with pytest.raises(ParameterError, match=r"hardware\.mem_bw = nan"):
        base(mem_bw=np.array([1e12, np.nan]))


def test_ep_must_divide_the_expert_count():
    with pytest.raises(
        ParameterError,
        match=r"deployment\.ep = 3 must divide model\.n_experts "
        r"= 256",
    ):
        deepseek(tp=384.0, ep=3.0)  # tp: a multiple of the 128 heads; ep divides tp
    with pytest.raises(ParameterError, match=r"deployment\.ep = 4 must divide deployment\.tp"):
        deepseek(tp=2.0, ep=4.0)


def test_unknown_attention_kind():
    with pytest.raises(
        ParameterError,
        match=r"model\.attention = 'linear' is unknown; choose "
        r"one of mha, gqa, mqa, mla",
    ):
        Model(attention="linear")


def test_mha_needs_as_many_kv_heads_as_heads():
    with pytest.raises(
        ParameterError,
        match=r"model\.n_kv_heads = 8 must equal model\.n_heads "
        r"= 32 for attention=mha",
    ):
        base().model.replace(attention="mha")


def test_gqa_kv_heads_must_divide_heads():
    with pytest.raises(ParameterError, match=r"model\.n_kv_heads = 5 must divide"):
        base().model.replace(n_kv_heads=5.0)


def test_top_k_cannot_exceed_expert_count():
    with pytest.raises(
        ParameterError,
        match=r"model\.top_k = 300 must be in \[1, n_experts = "
        r"256\]",
    ):
        deepseek(top_k=300.0)


def test_unknown_parameter_name_in_replace():
    with pytest.raises(
        ParameterError,
        match=r"unknown parameter 'memory_bandwidth'; valid: "
        r"mem_bw",
    ):
        base().replace(memory_bandwidth=1e12)


def test_unknown_field_in_a_preset_mapping():
    with pytest.raises(ParameterError, match=r"hardware: unknown parameter\(s\) bandwidth"):
        Hardware.from_mapping({"bandwidth": "4 TB/s"})


@pytest.mark.parametrize(
    "build",
    [
        lambda v: limits.load_params("xpu_hbm3", "llama3_8b", mem_bw=v),
        lambda v: base().replace(mem_bw=v),
        lambda v: Hardware.from_mapping({"mem_bw": v}),
    ],
)
def test_units_must_match_the_parameter(build):
    with pytest.raises(UnitError, match=r"mem_bw: unit 'TiB' in '4 TiB' does not match B/s"):
        build("4 TiB")
    with pytest.raises(
        UnitError,
        match=r"mem_bw: unknown unit 'TQ' in '4 TQ/s'; expected a "
        r"unit of B/s",
    ):
        build("4 TQ/s")


def test_replace_parses_units():
    assert base().replace(mem_bw="4 TiB/s").hardware.mem_bw == 4 * 2.0**40


def test_static_choice_of_the_prefill_mask():
    p = base()
    with pytest.raises(
        ParameterError,
        match=r"calibration\.prefill_attention_mask = 'sparse' "
        r"is unknown; choose one of causal, full",
    ):
        dataclasses.replace(p, calibration=p.calibration.replace(prefill_attention_mask="sparse"))


def test_unknown_preset():
    with pytest.raises(ParameterError, match=r"unknown hardware preset 'tpu'; available: "):
        limits.load_params("tpu", "llama3_8b")


@pytest.mark.parametrize(
    "value, pattern",
    [
        ("jax_negative", r"hardware\.mem_bw = -4e\+12 is out of range"),
        ("jax_grid_with_a_negative", r"hardware\.mem_bw = -1 is out of range"),
        (4e12 + 1j, r"hardware\.mem_bw = .* is complex"),
        (10**400, r"hardware\.mem_bw = an integer of 401 digits is out of range"),
        (1e40, r"hardware\.mem_bw = 1e\+40 would overflow to inf in a float32 sweep"),
        ("numpy_bool", r"hardware\.mem_bw = .* is not a number"),
    ],
)
def test_python_api_validates_every_kind_of_value(value, pattern):
    import jax.numpy as jnp
    import numpy as np

    value = (
        {
            "jax_negative": jnp.asarray(-4e12),
            "jax_grid_with_a_negative": jnp.asarray([4e12, -1.0]),
            "numpy_bool": np.array([True]),
        }.get(value, value)
        if isinstance(value, str)
        else value
    )
    with pytest.raises(ParameterError, match=pattern):
        base(mem_bw=value)


def test_jax_array_parameters_are_checked_and_accepted_when_valid():
    import jax.numpy as jnp

    assert float(base(mem_bw=jnp.asarray(8e12)).hardware.mem_bw) == 8e12
    with pytest.raises(ParameterError, match=r"deployment\.tp = 12 .*heads"):
        base(tp=jnp.asarray(12.0))  # the cross-group check sees JAX values too


@pytest.mark.slow
def test_max_batch_agrees_with_feasible_in_float32_and_float64():
    """At the capacity boundary (memory sized so that exactly N users fit) both precisions
    give max_batch = N, and batch N is feasible while N + 1 is not."""
    import jax
    import numpy as np

    from limits.model.capacity import capacity
    from limits.sweep.engine import cast_params

    jax.config.update("jax_enable_x64", True)
    for tp, context, n in ((8.0, 1000.0, 1000.0), (8.0, 4096.0, 250.0), (16.0, 4096.0, 250.0)):
        p = base(tp=tp, context=context, batch=n)
        c = capacity(p)
        kv = float(c["memory_kv"])
        other = float(c["memory_required"]) - kv
        p = p.replace(mem_capacity=(other + kv) / tp)  # exactly n users fit
        for dtype in (np.float64, np.float32):
            out = capacity(cast_params(p, dtype))
            assert float(out["max_batch"]) == n, (dtype, tp, context)
            assert bool(out["feasible"])
            over = capacity(cast_params(p.replace(batch=n + 1.0), dtype))
            assert not bool(over["feasible"])
