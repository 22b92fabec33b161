"""Parameter counts, KV-cache size and FLOPs of one transformer, from its architecture.

All functions are elementwise in the numeric fields of ``Model``/``Deployment`` and branch only
on static fields (attention kind, FFN kind). Counts are floats (no integer overflow).
"""

from __future__ import annotations

import jax.numpy as jnp

from limits.model.params import Deployment, Model


def attention_params_per_layer(m: Model):
    """Weights of one attention block [params]."""
    if m.attention == "mla":
        qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = jnp.where(
            m.q_lora_rank > 0,
            m.d_model * m.q_lora_rank + m.q_lora_rank * m.n_heads * qk_dim,
            m.d_model * m.n_heads * qk_dim,
        )
        kv = m.d_model * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * m.n_heads * (
            m.qk_nope_head_dim + m.v_head_dim
        )
        out = m.n_heads * m.v_head_dim * m.d_model
        return q + kv + out
    q_and_out = 2.0 * m.d_model * m.n_heads * m.d_head
    k_and_v = 2.0 * m.d_model * m.n_kv_heads * m.d_head
    return q_and_out + k_and_v


def expert_params(m: Model):
    """Weights of one routed (or shared) expert [params]."""
    return m.ffn_matrices * m.d_model * m.d_ff_expert


def n_moe_layers(m: Model):
    """Layers with a MoE feed-forward block."""
    return m.n_layers - m.n_dense_layers if m.ffn == "moe" else 0.0 * m.n_layers


def routed_expert_params_total(m: Model):
    """All routed-expert weights of the model [params]."""
    return n_moe_layers(m) * m.n_experts * expert_params(m) if m.ffn == "moe" else 0.0 * m.d_model


def embedding_params(m: Model):
    """Input embedding and LM head weights; tied embeddings count once [params]."""
    return m.vocab * m.d_model * (1.0 if m.tied_embeddings == "true" else 2.0)


def embedding_params_read(m: Model, tokens):
    """Embedding weights a forward pass over ``tokens`` tokens reads, as engines do [params]:
    the LM head is streamed once; an untied input embedding is a gather of ``tokens`` rows
    (at most the whole table); a tied table is read once, as the head."""
    head = m.vocab * m.d_model
    if m.tied_embeddings == "true":
        return head
    return head + jnp.minimum(tokens, m.vocab) * m.d_model


def architecture_params(m: Model):
    """Total parameters counted from the architecture [params]."""
    embeddings = embedding_params(m)
    dense_ffn = m.ffn_matrices * m.d_model * m.d_ff
    if m.ffn == "moe":
        moe_layer = (m.n_experts + m.n_shared_experts) * expert_params(
            m
        ) + m.d_model * m.n_experts  # router
        ffn = m.n_dense_layers * dense_ffn + n_moe_layers(m) * moe_layer
    else:
        ffn = m.n_layers * dense_ffn
    return embeddings + m.n_layers * attention_params_per_layer(m) + ffn


def total_params(m: Model):
    """Nominal total parameters when given (``n_params > 0``), else the architecture count."""
    return jnp.where(m.n_params > 0, m.n_params, architecture_params(m))


def active_params(m: Model):
    """Parameters used by one token [params]: all but the unrouted experts."""
    if m.ffn != "moe":
        return total_params(m)
    routed_active = n_moe_layers(m) * m.top_k * expert_params(m)
    return total_params(m) - routed_expert_params_total(m) + routed_active


def distinct_experts(m: Model, tokens):
    """Expected distinct routed experts per MoE layer touched by ``tokens`` tokens, under
    uniform independent top-k routing: ``E * (1 - (1 - k/E)^tokens)``."""
    return m.n_experts * (1.0 - jnp.power(1.0 - m.top_k / m.n_experts, tokens))


def weight_bytes_read(m: Model, d: Deployment, tokens):
    """Weight bytes read to process ``tokens`` tokens in one forward pass [B].

    With a nominal count (``n_params > 0``, the LIMINAL convention) every parameter is read.
    With the architecture count (``n_params = 0``) the embeddings are read as engines do
    (``embedding_params_read``). MoE layers read only the experts the tokens touch.
    """
    engine_saving = embedding_params(m) - embedding_params_read(m, tokens)
    dense_read = total_params(m) - jnp.where(m.n_params > 0, 0.0, engine_saving)
    if m.ffn != "moe":
        return dense_read * d.weight_bytes
    non_routed = dense_read - routed_expert_params_total(m)
    routed = n_moe_layers(m) * distinct_experts(m, tokens) * expert_params(m)
    return (non_routed + routed) * d.weight_bytes


def weight_bytes_stored(m: Model, d: Deployment):
    """Bytes of all weights held in memory [B]."""
    return total_params(m) * d.weight_bytes


def kv_bytes_per_token(m: Model, d: Deployment):
    """KV-cache bytes one token adds across all layers [B/token]; MLA caches its latent."""
    if m.attention == "mla":
        per_layer = m.kv_lora_rank + m.qk_rope_head_dim
    else:
        per_layer = 2.0 * m.n_kv_heads * m.d_head
    return m.n_layers * per_layer * d.kv_bytes


def effective_context(m: Model, context):
    """Mean attended length over layers when a fraction of them use a sliding window [tok]."""
    windowed = jnp.minimum(context, m.sliding_window)
    f = m.sliding_window_layer_fraction
    return f * windowed + (1.0 - f) * context


def attention_flops_per_pair(m: Model):
    """FLOPs of one query attending to one cached position in one layer (QK^T and AV)."""
    if m.attention == "mla":  # absorbed form: scores and values in the latent space
        return (
            2.0 * m.n_heads * (m.kv_lora_rank + m.qk_rope_head_dim)
            + 2.0 * m.n_heads * m.kv_lora_rank
        )
    return 4.0 * m.n_heads * m.d_head


def prefill_attention_flops_per_pair(m: Model):
    """FLOPs per (query, key) pair in one layer during prefill (MLA non-absorbed)."""
    if m.attention == "mla":
        return (
            2.0 * m.n_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim)
            + 2.0 * m.n_heads * m.v_head_dim
        )
    return 4.0 * m.n_heads * m.d_head


def attended_pairs(m: Model, n, mask: str):
    """(query, key) pairs attended by a sequence of ``n`` tokens, averaged over layers."""
    full = n * effective_context(m, n)
    if mask == "full":
        return full
    causal_full = n * (n + 1.0) / 2.0
    # causal with a window w: the first w queries see 1..w keys, the rest w keys each; with
    # w = min(window, n) this is one formula (no inf * 0 in a discarded branch: finite grads)
    w = jnp.minimum(m.sliding_window, n)
    causal_window = w * (w + 1.0) / 2.0 + (n - w) * w
    f = m.sliding_window_layer_fraction
    return f * causal_window + (1.0 - f) * causal_full
