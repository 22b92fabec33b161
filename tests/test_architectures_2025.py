"""2025-26 architecture features, each against a count worked by hand from the public config
(tests/data/hf, copied from the Hugging Face repositories named in tests/data/hf/README.md):
interleaved MoE layers, sparse attention with an indexer, linear-attention and Mamba2 layers
with a constant state, latent MoE, multi-token prediction, alternating sliding windows."""

from pathlib import Path

import numpy as np
import pytest

from limits.model import architecture as arch
from limits.model import evaluate
from limits.model.params import Deployment, Model, ParameterError
from limits.presets import load_params, load_preset
from limits.presets.hf import model_from_hf_config

DATA = Path(__file__).parent / "data" / "hf"
FP8 = Deployment(kv_bytes=1.0, weight_bytes=1.0)
BF16 = Deployment(kv_bytes=2.0, weight_bytes=2.0)


def preset(name: str) -> Model:
    return Model.from_mapping(load_preset("model", name))


def test_interleaved_moe_layers_llama4_maverick():
    """48 layers, interleave_moe_layer_step 2: 24 dense (16384 wide) and 24 MoE layers
    (128 routed + 1 shared expert, 8192 wide, router 5120 x 128)."""
    m = preset("llama4_maverick")
    assert (m.n_layers, m.n_dense_layers, m.n_experts, m.n_shared_experts) == (48, 24, 128, 1)
    embeddings = 202048 * 5120 * 2
    attention = 48 * (2 * 5120 * 40 * 128 + 2 * 5120 * 8 * 128)
    dense = 24 * 3 * 5120 * 16384
    moe = 24 * ((128 + 1) * 3 * 5120 * 8192 + 5120 * 128)
    assert float(arch.architecture_params(m)) == embeddings + attention + dense + moe
    assert embeddings + attention + dense + moe == 400_711_352_320
    # one routed + one shared expert per MoE layer are active: Meta's "17B active"
    assert float(arch.active_params(m.replace(n_params=0))) == pytest.approx(17e9, rel=0.02)


def test_sparse_attention_reads_at_most_index_topk_entries():
    """DeepSeek-V3.2 at 32K context, FP8 cache: MLA reads 2048 latents (576 values) per layer,
    the indexer one 128-value key per cached token per layer."""
    m = preset("deepseek_v3_2")
    ctx = 32768.0
    assert float(arch.kv_bytes_read(m, FP8, ctx)) == 61 * 576 * 2048 + 61 * 128 * 32768
    assert float(arch.kv_bytes_per_token(m, FP8)) == 61 * (576 + 128)
    dense = preset("deepseek_v3")
    assert float(arch.kv_bytes_read(dense, FP8, ctx)) == 61 * 576 * 32768
    # below index_topk nothing is skipped: only the indexer keys are added
    assert float(arch.kv_bytes_read(m, FP8, 1024.0)) == 61 * (576 + 128) * 1024
    per_pair = 2 * 128 * (512 + 64) + 2 * 128 * 512  # absorbed MLA scores and values
    indexer = 2 * 64 * 128  # one score per indexer head over a 128-wide key
    flops = float(arch.mixer_flops_per_query(m, ctx))
    assert flops == 61 * 2048 * per_pair + 61 * 32768 * indexer


def test_sparse_attention_indexer_weights():
    """Indexer per layer: q_lora_rank -> 64 heads x 128, hidden -> one 128 key, hidden -> 64
    head weights; the only difference between the V3.2 and V3 parameter counts."""
    per_layer = 1536 * 64 * 128 + 7168 * 128 + 7168 * 64
    extra = float(arch.architecture_params(preset("deepseek_v3_2"))) - float(
        arch.architecture_params(preset("deepseek_v3"))
    )
    assert extra == 61 * per_layer == 851_509_248


def test_sparse_attention_caps_prefill_pairs():
    """A causal prefill of n tokens with top-k k attends k(k+1)/2 + (n-k)k pairs per layer."""
    m = preset("deepseek_v3_2")
    n, k = 8192.0, 2048.0
    assert float(arch.attended_pairs(m, n, "causal")) == k * (k + 1) / 2 + (n - k) * k
    assert float(arch.attended_pairs(m, n, "full")) == n * k


def test_linear_attention_layers_qwen3_5():
    """Qwen3.5-397B-A17B: 45 Gated DeltaNet layers (16 key heads x 128, 64 value heads x 128,
    conv width 4) and 15 full-attention layers (2 KV heads x 256) in bf16."""
    m = preset("qwen3_5_397b_a17b")
    assert (m.n_layers, m.n_linear_layers) == (60, 45)
    state = 64 * 128 * 128 + (4 - 1) * (2 * 16 * 128 + 64 * 128)  # matrix per head + conv
    assert float(arch.linear_state_elements(m)) == state == 1_085_440
    assert float(arch.state_bytes_per_sequence(m, BF16)) == 45 * state * 2
    assert float(arch.kv_bytes_per_token(m, BF16)) == 15 * 2 * 2 * 256 * 2
    ctx = 4096.0
    assert float(arch.kv_bytes_read(m, BF16, ctx)) == 15 * 1024 * 2 * ctx + 45 * state * 2
    # q, k (2048 each), v and output gate z (8192 each), two per-head gates, conv, output
    mixer = 4096 * (2 * 2048 + 2 * 8192 + 2 * 64) + 4 * (2 * 2048 + 8192) + 8192 * 4096
    assert float(arch.linear_mixer_params_per_layer(m)) == mixer == 118_013_952


def test_state_is_constant_in_context():
    m = preset("qwen3_5_397b_a17b")
    a, b = (float(arch.kv_bytes_read(m, BF16, c)) for c in (1000.0, 2000.0))
    assert b - a == 1000.0 * float(arch.kv_bytes_per_token(m, BF16))  # only attention grows


def test_mamba2_layers_and_latent_moe_nemotron_3_super():
    """Nemotron 3 Super: 40 Mamba2 blocks (128 heads x 64, state 128, 8 groups), 8 attention
    blocks, 40 latent-MoE blocks (512 experts 1024 -> 2688 -> 1024 squared-ReLU, one 5376-wide
    shared expert on the 4096 hidden state)."""
    m = preset("nemotron_3_super")
    assert (m.n_layers, m.n_linear_layers, m.n_ffn_free_layers) == (48, 40, 8)
    state = 128 * 64 * 128 + 3 * (8192 + 2 * 8 * 128)
    assert float(arch.linear_state_elements(m)) == state == 1_079_296
    expert = 2 * 1024 * 2688
    assert float(arch.expert_params(m)) == expert
    layer = 512 * expert + 2 * 4096 * 5376 + 4096 * 512 + 2 * 4096 * 1024
    assert float(arch.moe_layer_params(m)) == layer == 2_873_098_240
    assert float(arch.n_moe_layers(m)) == 40


def test_mtp_module_counts_and_drafts():
    """DeepSeek-V3 MTP: one MLA + MoE layer and a 2 x 7168 -> 7168 projection (11.61B);
    the published 685B is 671B + the MTP module (with its own embedding/head copies)."""
    m = preset("deepseek_v3")
    mla = (7168 * 1536 + 1536 * 128 * 192) + (7168 * 576 + 512 * 128 * 256) + 128 * 128 * 7168
    moe = 257 * 3 * 7168 * 2048 + 7168 * 256
    assert float(arch.mtp_params(m)) == mla + moe + 2 * 7168 * 7168 == 11_610_030_080
    total = float(arch.architecture_params(m) + arch.mtp_params(m))
    assert total == pytest.approx(685e9, rel=0.02)  # DeepSeek-V3 model card: 685B with MTP
    draft = mla + 8 * 3 * 7168 * 2048 + 3 * 7168 * 2048 + 2 * 7168 * 7168 + 129280 * 7168
    assert float(arch.mtp_draft_params(m)) == draft
    p = load_params("h200", "deepseek_v3", tp=8, kv_bytes=1, weight_bytes=1)
    drafting = p.replace(draft_len=1, acceptance_rate=0.8, draft_params=draft, draft_layers=1)
    out = evaluate(drafting)
    assert float(out["t_draft"]) > 0 and float(out["tokens_per_step"]) == pytest.approx(1.8)


def test_alternating_sliding_window_gpt_oss_20b():
    """gpt-oss-20b: layer_types alternate 128-token windows and full attention (12 of 24);
    8 KV heads x 64. The learned attention sinks are one logit per head: no cached entries."""
    m = preset("gpt_oss_20b")
    assert (m.sliding_window, m.sliding_window_layer_fraction) == (128, 0.5)
    assert float(arch.effective_context(m, 8192.0)) == 0.5 * 128 + 0.5 * 8192
    assert float(arch.kv_bytes_read(m, FP8, 8192.0)) == 24 * 2 * 8 * 64 * (64 + 4096)


def test_defaults_leave_existing_models_unchanged():
    """With no new feature set, the cache rules reduce to the pre-2025 formulas."""
    m = preset("llama3_405b")
    ctx = 4096.0
    assert float(arch.kv_bytes_read(m, FP8, ctx)) == 126 * 2 * 8 * 128 * ctx
    assert float(arch.mixer_flops_per_query(m, ctx)) == 126 * ctx * 4 * 128 * 128


def test_linear_layers_need_an_attention_layer():
    with pytest.raises(ParameterError, match="n_linear_layers"):
        preset("qwen3_5_397b_a17b").replace(n_linear_layers=60)


@pytest.mark.parametrize(
    "model",
    [
        "qwen3_32b",
        "qwen3_30b_a3b",
        "llama4_scout",
        "llama4_maverick",
        "deepseek_r1",
        "deepseek_v3_2",
        "kimi_k2_5",
        "glm_5",
        "minimax_m2_5",
        "qwen3_5_397b_a17b",
        "gpt_oss_20b",
        "nemotron_3_super",
    ],
)
def test_new_model_presets_evaluate(model):
    out = evaluate(load_params("gb200", model, tp=8, kv_bytes=1, weight_bytes=1, context=8192))
    for key in ("step_time", "utps", "memory_required", "ttft"):
        assert np.isfinite(float(out[key])) and float(out[key]) > 0, key


def test_imported_config_equals_preset_architecture():
    fields = ("n_linear_layers", "index_topk", "n_mtp_layers", "moe_latent_dim")
    imported = model_from_hf_config(DATA / "deepseek-ai--DeepSeek-V3.2.json")
    assert all(getattr(imported, f) == getattr(preset("deepseek_v3_2"), f) for f in fields)
