"""Wide expert parallelism: dp attention replicas of tp chips share a stage's experts spread
over ep ranks; the busiest rank carries expert_imbalance x the mean; redundant experts take
memory. Checked by hand on Mixtral-8x7B and against the dp = 1 model."""

import pytest

from limits.model import architecture as arch
from limits.model import evaluate
from limits.model.params import ParameterError
from limits.presets import load_params

BASE = dict(kv_bytes=1, weight_bytes=1, act_bytes=2, context=4096, batch=16)


def params(**kw):
    return load_params("h100", "mixtral_8x7b", **{**BASE, **kw})


def test_dp_one_is_the_plain_model():
    a = evaluate(params(tp=8, ep=8))
    b = evaluate(params(tp=8, ep=8, dp=1, expert_imbalance=1.0, redundant_experts=0))
    assert all(float(a[k]) == float(b[k]) for k in ("step_time", "stps", "memory_required"))


def test_busiest_chip_by_hand():
    """tp = 1, dp = 8, ep = 8: each chip reads its replica's non-routed weights and 16 users'
    KV, plus imbalance x 1/8 of the experts the stage's 128 tokens touch."""
    p = params(tp=1, dp=8, ep=8, expert_imbalance=1.5)
    m, d = p.model, p.deployment
    own = float(arch.non_routed_params(m))  # 1 byte per weight
    routed = float(arch.routed_weight_bytes_read(m, d, 128.0))
    kv = 16 * float(arch.kv_bytes_read(m, d, 4096.0))
    out = evaluate(p)
    assert float(out["t_mem"]) == pytest.approx((own + kv + 1.5 * routed / 8) / 3.35e12)
    assert float(out["bytes_per_step"]) == pytest.approx(8 * own + routed + 8 * kv)
    assert float(out["stps"]) == pytest.approx(8 * 16 * float(out["utps"]))
    assert float(out["chips"]) == 8


def test_memory_holds_replicated_attention_and_redundant_experts():
    p = params(tp=1, dp=8, ep=8, redundant_experts=8)
    m = p.model
    expected = (
        8 * float(arch.non_routed_params(m))
        + float(arch.routed_expert_params_total(m))
        + 32 * 8 * float(arch.expert_params(m))  # 32 MoE layers x 8 extra copies
    )
    assert float(evaluate(p)["memory_weights"]) == pytest.approx(expected)


def test_imbalance_slows_the_step():
    even = evaluate(params(tp=1, dp=8, ep=8))
    skewed = evaluate(params(tp=1, dp=8, ep=8, expert_imbalance=2.0))
    assert float(skewed["t_mem"]) > float(even["t_mem"])
    assert float(skewed["t_sync"]) > float(even["t_sync"])


def test_ep_must_divide_the_stage():
    with pytest.raises(ParameterError, match=r"ep = 8 must divide deployment.tp x deployment.dp"):
        params(tp=1, dp=4, ep=8)
    with pytest.raises(ParameterError, match=r"n_experts = 8 \+ deployment.redundant_experts"):
        params(tp=1, dp=8, ep=8, redundant_experts=3)
    with pytest.raises(ParameterError, match="redundant_experts = 1 needs a MoE model"):
        load_params("h100", "llama3_8b", redundant_experts=1)
