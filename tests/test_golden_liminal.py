"""Golden tests: the LIMINAL paper's published decode figures (docs/references.md s.1)."""

import pytest

import limits


@pytest.mark.parametrize("context, published_utps", [(4096, 290), (131072, 271)])
def test_llama3_405b_hbm3_tp32_batch1(context, published_utps):
    p = limits.load_params(
        "xpu_hbm3", "llama3_405b", tp=32, batch=1, context=context, weight_bytes=1, kv_bytes=1
    )
    out = limits.evaluate(p)
    assert round(float(out["utps"])) == published_utps
    assert limits.BOUND_LABELS[int(out["bound"])] == "memory"


def test_128_hbm3_chips_reach_600_utps_on_405b():
    """Published finding: 128 HBM3 chips easily reach 600 UTPS on Llama3-405B (batch 1)."""
    for context in (4096, 131072):
        p = limits.load_params(
            "xpu_hbm3", "llama3_405b", tp=128, batch=1, context=context, weight_bytes=1, kv_bytes=1
        )
        assert float(limits.evaluate(p)["utps"]) >= 600


def test_no_hbm3_configuration_reaches_1000_utps_at_long_context():
    """Published finding: no HBM3 deployment (TP8, TP32, TP128) reaches 1000 UTPS at 128K."""
    for tp in (8, 32, 128):
        p = limits.load_params(
            "xpu_hbm3", "llama3_405b", tp=tp, batch=1, context=131072, weight_bytes=1, kv_bytes=1
        )
        out = limits.evaluate(p)
        assert bool(out["feasible"])
        assert float(out["utps"]) < 1000


@pytest.mark.parametrize("tp", [8, 32, 128])
def test_compute_utilisation_at_batch_1_is_at_most_1_percent(tp):
    """Published finding: compute utilisation at low batch is at most about 1 %."""
    p = limits.load_params(
        "xpu_hbm3", "llama3_405b", tp=tp, batch=1, context=4096, weight_bytes=1, kv_bytes=1
    )
    assert float(limits.evaluate(p)["compute_utilization"]) <= 0.01


@pytest.mark.parametrize("kv_bytes", [1, 2])
def test_deepseek_v3_mla_caches_its_latent(kv_bytes):
    """DeepSeek-V3 MLA caches kv_lora_rank + qk_rope_head_dim = 576 values per layer per token
    (docs/references.md s.4): 61 x 576 x kv_bytes B/token."""
    from limits.model.architecture import kv_bytes_per_token

    p = limits.load_params("xpu_hbm3", "deepseek_v3", kv_bytes=kv_bytes)
    assert float(kv_bytes_per_token(p.model, p.deployment)) == 61 * 576 * kv_bytes


def test_sync_time_does_not_grow_from_32_to_128_chips():
    """Paper convention: 2 all-reduces per layer at 2.25 us each on a scale-out system, the
    same for 32, 64 and 128 chips: t_sync = 126 layers x 2 x 2.25 us = 567 us."""
    t_sync = [
        float(
            limits.evaluate(
                limits.load_params(
                    "xpu_hbm3",
                    "llama3_405b",
                    tp=tp,
                    batch=1,
                    context=4096,
                    weight_bytes=1,
                    kv_bytes=1,
                )
            )["t_sync"]
        )
        for tp in (32, 64, 128)
    ]
    assert t_sync == pytest.approx([126 * 2 * 2.25e-6] * 3, rel=1e-12)
