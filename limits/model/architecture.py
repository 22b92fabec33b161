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
    """Weights of one routed expert [params]; latent-MoE experts act in ``moe_latent_dim``."""
    width = jnp.where(m.moe_latent_dim > 0, m.moe_latent_dim, m.d_model)
    return m.ffn_matrices * width * m.d_ff_expert


def shared_expert_params(m: Model):
    """Weights of one shared expert [params] (``d_ff_shared`` wide, on ``d_model``)."""
    width = jnp.where(m.d_ff_shared > 0, m.d_ff_shared, m.d_ff_expert)
    return m.ffn_matrices * m.d_model * width


def n_attention_layers(m: Model):
    """Layers with softmax attention (the others are linear-attention / state-space layers)."""
    return m.n_layers - m.n_linear_layers


def linear_mixer_params_per_layer(m: Model):
    """Weights of one linear-attention (Gated DeltaNet) or Mamba2 mixer [params]: input
    projections to keys, queries (Mamba2: B, C), values, output gate and two per-head gates,
    the causal convolution over keys, queries and values, and the output projection."""
    k = m.linear_k_heads * m.linear_k_dim
    v = m.linear_v_heads * m.linear_v_dim
    projections = m.d_model * (2.0 * k + 2.0 * v + 2.0 * m.linear_v_heads) + v * m.d_model
    return projections + m.linear_conv_kernel * (2.0 * k + v)


def linear_state_elements(m: Model):
    """Recurrent state of one linear mixer for one sequence [elements]: a ``k_dim x v_dim``
    matrix per value head plus the last ``conv_kernel - 1`` convolution inputs."""
    k = m.linear_k_heads * m.linear_k_dim
    v = m.linear_v_heads * m.linear_v_dim
    conv = jnp.maximum(m.linear_conv_kernel - 1.0, 0.0) * (2.0 * k + v)
    return m.linear_v_heads * m.linear_v_dim * m.linear_k_dim + conv


def indexer_params_per_layer(m: Model):
    """Weights of a sparse-attention indexer (DeepSeek-V3.2 DSA) [params]: queries from the
    query latent, one shared key and per-head weights from the hidden state."""
    q_in = jnp.where(m.q_lora_rank > 0, m.q_lora_rank, m.d_model)
    return (
        q_in * m.index_n_heads * m.index_head_dim
        + m.d_model * m.index_head_dim
        + m.d_model * m.index_n_heads
    )


def n_moe_layers(m: Model):
    """Layers with a MoE feed-forward block."""
    if m.ffn != "moe":
        return 0.0 * m.n_layers
    return m.n_layers - m.n_dense_layers - m.n_ffn_free_layers


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


def moe_layer_params(m: Model):
    """Weights of one MoE block [params]: routed and shared experts, router, and the
    projections into and out of the latent space of a latent MoE."""
    latent = 2.0 * m.d_model * m.moe_latent_dim
    router = m.d_model * m.n_experts
    return (
        (m.n_experts * expert_params(m) + m.n_shared_experts * shared_expert_params(m))
        + router
        + latent
    )


def mixer_params(m: Model):
    """Weights of every token mixer [params]: attention (with its indexer) and linear layers."""
    attention = attention_params_per_layer(m) + indexer_params_per_layer(m)
    return n_attention_layers(m) * attention + m.n_linear_layers * linear_mixer_params_per_layer(m)


def architecture_params(m: Model):
    """Total parameters counted from the architecture [params] (MTP modules excluded)."""
    embeddings = embedding_params(m)
    dense_ffn = m.ffn_matrices * m.d_model * m.d_ff
    if m.ffn == "moe":
        ffn = m.n_dense_layers * dense_ffn + n_moe_layers(m) * moe_layer_params(m)
    else:
        ffn = (m.n_layers - m.n_ffn_free_layers) * dense_ffn
    return embeddings + mixer_params(m) + ffn


def mtp_params(m: Model):
    """Weights of the multi-token-prediction modules [params]: each is one attention layer
    with the model's (MoE) FFN plus a ``2 d_model -> d_model`` projection; embeddings and the
    output head are shared with the main model."""
    ffn = moe_layer_params(m) if m.ffn == "moe" else m.ffn_matrices * m.d_model * m.d_ff
    layer = attention_params_per_layer(m) + indexer_params_per_layer(m) + ffn
    return m.n_mtp_layers * (layer + 2.0 * m.d_model * m.d_model)


def mtp_draft_params(m: Model):
    """Weights one MTP draft step reads per token [params]: one module's attention, shared
    and top-k experts and projection, plus the shared output head (use as ``draft_params``
    with ``draft_layers = 1`` for MTP speculative decoding)."""
    if m.ffn == "moe":
        ffn = m.top_k * expert_params(m) + m.n_shared_experts * shared_expert_params(m)
    else:
        ffn = m.ffn_matrices * m.d_model * m.d_ff
    attention = attention_params_per_layer(m) + indexer_params_per_layer(m)
    return attention + ffn + 2.0 * m.d_model * m.d_model + m.vocab * m.d_model


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


def non_routed_params(m: Model):
    """Weights every token reads [params]: all but the routed experts (embeddings, mixers,
    dense FFNs, shared experts, routers); the part each attention replica holds."""
    return total_params(m) - routed_expert_params_total(m)


def routed_weight_bytes_read(m: Model, d: Deployment, tokens):
    """Routed-expert weight bytes ``tokens`` tokens touch in one forward pass [B]."""
    if m.ffn != "moe":
        return 0.0 * m.d_model
    return n_moe_layers(m) * distinct_experts(m, tokens) * expert_params(m) * d.weight_bytes


def redundant_expert_bytes(m: Model, d: Deployment):
    """Bytes of the extra expert copies kept for load balancing [B]."""
    return n_moe_layers(m) * d.redundant_experts * expert_params(m) * d.weight_bytes


def kv_elements_per_layer(m: Model):
    """Cached elements one token adds to one attention layer (MLA: its latent)."""
    if m.attention == "mla":
        return m.kv_lora_rank + m.qk_rope_head_dim
    return 2.0 * m.n_kv_heads * m.d_head


def kv_bytes_per_token(m: Model, d: Deployment):
    """KV-cache bytes one token adds across all attention layers [B/token]; MLA caches its
    latent, a sparse-attention indexer its key."""
    per_layer = kv_elements_per_layer(m) + m.index_head_dim
    return n_attention_layers(m) * per_layer * d.kv_bytes


def state_bytes_per_sequence(m: Model, d: Deployment):
    """Constant recurrent state of the linear layers for one sequence [B] (at ``kv_bytes``)."""
    return m.n_linear_layers * linear_state_elements(m) * d.kv_bytes


def kv_bytes_stored(m: Model, d: Deployment, context):
    """Cache bytes one sequence of ``context`` tokens holds: KV (windowed layers keep their
    window) plus the linear layers' state [B]."""
    return effective_context(m, context) * kv_bytes_per_token(m, d) + state_bytes_per_sequence(m, d)


def attended_context(m: Model, context):
    """Mean cached entries one query reads per attention layer: windowed layers their window,
    sparse attention at most ``index_topk`` [tok]."""
    return jnp.minimum(effective_context(m, context), m.index_topk)


def kv_bytes_read(m: Model, d: Deployment, context):
    """Cache bytes one decode query of one sequence reads at ``context`` [B]: the attended KV
    entries, every indexer key, and the linear layers' state."""
    main = n_attention_layers(m) * kv_elements_per_layer(m) * d.kv_bytes
    index = n_attention_layers(m) * m.index_head_dim * d.kv_bytes
    return (
        main * attended_context(m, context)
        + index * effective_context(m, context)
        + state_bytes_per_sequence(m, d)
    )


def mixer_flops_per_query(m: Model, context):
    """Context-dependent FLOPs of one decode query [FLOP]: attention over the attended
    entries, the indexer's scores over every cached key, and the linear layers' state update
    and read-out (2 FLOPs per state element each)."""
    attention = n_attention_layers(m) * attended_context(m, context) * attention_flops_per_pair(m)
    indexer = (
        n_attention_layers(m)
        * effective_context(m, context)
        * 2.0
        * m.index_n_heads
        * m.index_head_dim
    )
    linear = m.n_linear_layers * 4.0 * m.linear_v_heads * m.linear_v_dim * m.linear_k_dim
    return attention + indexer + linear


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
    if mask == "full":
        return n * attended_context(m, n)
    # causal with a window w: the first w queries see 1..w keys, the rest w keys each; with
    # w = min(window, n) this is one formula (no inf * 0 in a discarded branch: finite grads)
    w = jnp.minimum(jnp.minimum(m.sliding_window, m.index_topk), n)
    causal_window = w * (w + 1.0) / 2.0 + (n - w) * w
    f = m.sliding_window_layer_fraction
    # full layers read at most index_topk entries (sparse attention): the same formula
    k = jnp.minimum(m.index_topk, n)
    causal_sparse = k * (k + 1.0) / 2.0 + (n - k) * k
    return f * causal_window + (1.0 - f) * causal_sparse


def prefill_mixer_flops(m: Model, n, mask: str):
    """Token-mixing FLOPs of a prefill of ``n`` tokens [FLOP]: attention pairs, the indexer's
    causal scores, and the linear layers (4 FLOPs per state element per token)."""
    attention = (
        n_attention_layers(m) * attended_pairs(m, n, mask) * prefill_attention_flops_per_pair(m)
    )
    indexer = n_attention_layers(m) * n * (n + 1.0) / 2.0 * 2.0 * m.index_n_heads * m.index_head_dim
    linear = n * m.n_linear_layers * 4.0 * m.linear_v_heads * m.linear_v_dim * m.linear_k_dim
    return attention + indexer + linear
