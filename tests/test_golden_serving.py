"""Golden bounds: the limit is at or above published serving measurements
(docs/references.md s.6). Ideal efficiencies; GEMMs run at the dense peak of the weight
precision (``compute_bytes`` follows ``weight_bytes``: FP4 -> peak_flops_4bit, FP8 ->
peak_flops_8bit); wide expert
parallelism with one attention replica per GPU (tp = 1, dp = ep = GPUs), as deployed."""

import numpy as np
import pytest

from limits.model import evaluate
from limits.presets import load_params

BATCH = np.arange(1.0, 1025.0)


def best_per_gpu(hw, model, gpus, min_utps=0.0, **kw):
    """Output tokens/s per GPU of the largest feasible batch at >= min_utps per user."""
    p = load_params(hw, model, tp=1, dp=gpus, ep=gpus, act_bytes=1, kv_bytes=1, **kw)
    p = p.replace(batch=BATCH)
    out = evaluate(p)
    ok = np.asarray(out["feasible"]) & (np.asarray(out["utps"]) >= min_utps)
    return float(np.max(np.where(ok, np.asarray(out["stps"]), 0.0))) / gpus


@pytest.mark.slow
@pytest.mark.parametrize(
    "hw, gpus, measured",
    [
        ("gb200", 64, 4130.0),  # GB200 NVL72, wide EP inside the 72-GPU NVLink domain
        ("b200", 8, 941.0),  # B200, one 8-GPU node
    ],
)
def test_inferencex_deepseek_r1_fp4_at_125_tokens_per_user(hw, gpus, measured):
    """SemiAnalysis InferenceX (2026-05-22): DeepSeek-R1 FP4, 1k in / 1k out, 125 tok/s/user:
    GB200 NVL72 4,130 and B200 941 output tokens/s/GPU. Context 1,536 (mid-generation)."""
    limit = best_per_gpu(hw, "deepseek_r1", gpus, 125.0, weight_bytes=0.5, context=1536)
    assert limit >= measured


def test_lmsys_deepseek_v3_decode_per_node():
    """LMSYS (2025-05-05): DeepSeek-V3 on H100, decode on 9 nodes (EP72, DP72, 32 redundant
    experts), 2,000-token prompts: 22.3k output tokens/s per 8-GPU node."""
    per_gpu = best_per_gpu(
        "h100",
        "deepseek_v3",
        72,
        weight_bytes=1,
        context=2048,
        redundant_experts=32,
    )
    assert 8 * per_gpu >= 22.3e3


def test_lmsys_deepseek_v3_prefill_per_node():
    """LMSYS: prefill on 4 nodes (EP32, DP32): 52.3k input tokens/s per node. The limit's
    prefill is one 2,000-token prompt alone on one GPU (it reads every weight): a bound on
    batched prefill too, as each GPU of a node can prefill its own prompt."""
    p = load_params("h100", "deepseek_v3", tp=1, dp=32, ep=32, prompt_len=2000, weight_bytes=1)
    assert 8 * 2000.0 / float(evaluate(p)["ttft"]) >= 52.3e3
