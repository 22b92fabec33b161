"""Golden tests: the inference-bottlenecks chapter's footprints and FLOP counts for Llama 3 405B
in FP16 (docs/references.md s.3). Each figure is checked with the setting the chapter states."""

import dataclasses

import pytest

import limits
from limits.model import architecture as arch


def llama405b_fp16(**overrides):
    return limits.load_params("xpu_hbm3", "llama3_405b", weight_bytes=2, kv_bytes=2, **overrides)


def full_mask(p):
    """The chapter counts all N^2 (query, key) pairs in prefill (no causal halving)."""
    return dataclasses.replace(p, calibration=p.calibration.replace(prefill_attention_mask="full"))


def test_kv_per_token_with_full_multi_head_attention():
    """2 x 16384 x 2 B x 126 = 8,257,536 B/token; a million tokens ~8.26 TB."""
    p = llama405b_fp16()
    mha = p.model.replace(attention="mha", n_kv_heads=128)
    per_token = float(arch.kv_bytes_per_token(mha, p.deployment))
    assert per_token == 8_257_536
    assert per_token * 1e6 == pytest.approx(8.26e12, rel=1e-3)


def test_kv_per_token_with_real_gqa():
    """8 KV heads x 128: 516,096 B/token; 100,000 tokens ~51.6 GB."""
    p = llama405b_fp16()
    per_token = float(arch.kv_bytes_per_token(p.model, p.deployment))
    assert per_token == 516_096
    assert per_token * 1e5 == pytest.approx(51.6e9, rel=1e-3)


def test_prefill_of_100k_tokens():
    """Linear 2 N P = 8.1e16, attention 4 L N^2 d = 8.26e16 (full mask), total ~1.64e17 FLOPs;
    traffic 810 GB weights + 51.6 GB KV; intensity ~190,000 FLOP/B."""
    out = limits.evaluate(full_mask(llama405b_fp16(prompt_len=100_000)))
    attention = float(out["prefill_attention_flops"])
    linear = float(out["prefill_flops"]) - attention
    assert linear == pytest.approx(8.1e16, rel=1e-6)
    assert attention == pytest.approx(8.26e16, rel=1e-3)
    assert float(out["prefill_flops"]) == pytest.approx(1.64e17, rel=5e-3)
    assert float(out["prefill_bytes"]) == pytest.approx(810e9 + 51.6e9, rel=1e-3)
    assert float(out["prefill_intensity"]) == pytest.approx(190_000, rel=5e-3)


def test_causal_prefill_counts_about_half_the_attention():
    """The default causal mask counts N(N+1)/2 pairs: half the chapter's full-mask figure."""
    out = limits.evaluate(llama405b_fp16(prompt_len=100_000))
    assert float(out["prefill_attention_flops"]) == pytest.approx(8.26e16 / 2, rel=1e-3)


def test_decode_step_at_100k_context():
    """2 P = 8.1e11 + 4 L N d = 8.26e11 -> ~1.635e12 FLOPs over ~861.6 GB -> ~1.9 FLOP/B."""
    out = limits.evaluate(llama405b_fp16(context=100_000, batch=1))
    assert float(out["flops_per_step"]) == pytest.approx(1.635e12, rel=1e-3)
    assert float(out["weight_bytes_read"]) == pytest.approx(810e9, rel=1e-9)
    assert float(out["kv_bytes_read"]) == pytest.approx(51.6e9, rel=1e-3)
    assert float(out["bytes_per_step"]) == pytest.approx(861.6e9, rel=1e-3)
    assert float(out["arithmetic_intensity"]) == pytest.approx(1.9, rel=5e-3)


def test_naive_decoding_without_kv_cache_at_1000_tokens():
    """The chapter's ~2 x L x 11 x N x d^2 = 7.44e14 FLOPs per token, within 10 %.

    The chapter approximates a layer as 11 d^2 weights. The real Llama 3 405B layer has
    2 d^2 (Q, O) + d^2/8 (K, V with 8 of 128 heads) + 3 x 3.25 d^2 (SwiGLU, d_ff = 3.25 d)
    = 11.875 d^2, plus 4.2e9 embedding weights; the model counts the nominal 405e9 params,
    i.e. 8.1e14 FLOPs of GEMMs at N = 1000 plus ~4e12 of causal attention, 9.4 % above the
    chapter's figure. The model re-runs N = context + 1 tokens each step.
    """
    out = limits.evaluate(llama405b_fp16(context=999, batch=1))
    naive = float(out["flops_per_token_no_cache"])
    assert naive == pytest.approx(7.44e14, rel=0.10)
    assert naive > 7.44e14  # the real layer is larger than 11 d^2
    assert float(out["step_time_no_cache"]) > float(out["step_time"])
