"""One decode step: bytes, FLOPs, the three walls, speculative decoding, throughput.

With ``pp`` pipeline stages of ``tp`` chips, a token passes every stage in turn, so the step
(the per-token latency) sums the stages: weights and one microbatch's KV are read over the
bandwidth of ``tp`` chips. ``pp`` microbatches are in flight, so ``stps`` counts ``pp x batch``
users. With ``pp = 1`` this is exactly the LIMINAL model (docs/model.md).
"""

from __future__ import annotations

import jax.numpy as jnp

from limits.model import architecture as arch
from limits.model.params import Params
from limits.model.sync import sync_time


def expected_tokens_per_step(p: Params):
    """Tokens a user gains per step with ``draft_len`` drafted tokens accepted i.i.d. with
    probability ``a``: ``1 + a + ... + a^k`` (the verified token always counts)."""
    d = p.deployment
    a, k = d.acceptance_rate, d.draft_len
    safe_a = jnp.where(a < 1.0, a, 0.5)
    geometric = (1.0 - jnp.power(safe_a, k + 1.0)) / (1.0 - safe_a)
    return jnp.where(a < 1.0, geometric, k + 1.0)


def bandwidth(p: Params, chips=None):
    """Achieved memory bandwidth of one pipeline stage (``tp`` chips, or ``chips``) [B/s]."""
    chips = p.deployment.tp if chips is None else chips
    return chips * p.hardware.mem_bw * p.calibration.mem_efficiency


def memory_time(p: Params, stream_bytes, kv_read_bytes, chips=None):
    """Time to move ``stream_bytes`` (weights, KV writes) at ``mem_efficiency`` and read
    ``kv_read_bytes`` of KV cache at ``mem_efficiency x kv_mem_efficiency`` over one stage
    (``tp`` chips, or ``chips``) [s]: scattered KV pages stream less well than weights."""
    kv_stream = kv_read_bytes / p.calibration.kv_mem_efficiency
    return (stream_bytes + kv_stream) / bandwidth(p, chips)


def compute_bytes(p: Params):
    """Bytes per GEMM input element [B]: ``compute_bytes``, or ``weight_bytes`` where it is 0."""
    d = p.deployment
    return jnp.where(d.compute_bytes > 0, d.compute_bytes, d.weight_bytes)


def tensor_peak(p: Params):
    """Dense tensor peak of one chip at the GEMM input precision [FLOP/s].

    Precision classes by ``compute_bytes`` (b): b < 1 is 4-bit, 1 <= b < 2 is 8-bit, b >= 2 is
    16-bit (wider inputs run at the 16-bit peak: optimistic, so still a limit). A part without
    a 4-bit path (``peak_flops_4bit = 0``) runs 4-bit GEMMs at its 8-bit rate, and one without
    an 8-bit path at ``peak_flops``. Chosen elementwise, so ``compute_bytes`` is a grid axis.
    Derivatives flow to the selected peak only: the elasticity w.r.t. ``peak_flops`` is 0
    where an 8-bit peak is used; ``flops_efficiency`` scales whichever peak is selected.
    """
    hw = p.hardware
    b = compute_bytes(p)
    peak_8 = jnp.where(hw.peak_flops_8bit > 0, hw.peak_flops_8bit, hw.peak_flops)
    peak_4 = jnp.where(hw.peak_flops_4bit > 0, hw.peak_flops_4bit, peak_8)
    return jnp.where(b < 1.0, peak_4, jnp.where(b < 2.0, peak_8, hw.peak_flops))


def flop_rate(p: Params, chips=None):
    """Achieved tensor FLOP rate of one pipeline stage (``tp`` chips, or ``chips``) [FLOP/s]."""
    chips = p.deployment.tp if chips is None else chips
    return chips * tensor_peak(p) * p.calibration.flops_efficiency


def prefill_flop_rate(p: Params, chips=None):
    """Achieved tensor FLOP rate on prompt (prefill) tokens of ``tp`` chips, or ``chips``
    [FLOP/s]: prefill GEMMs are large, so their efficiency is calibrated on its own."""
    chips = p.deployment.tp if chips is None else chips
    return chips * tensor_peak(p) * p.calibration.prefill_flops_efficiency


def pass_overhead(p: Params):
    """Fixed engine cost of one forward pass (decode step, prefill, serving iteration) [s]:
    ``n_layers x layer_overhead + iteration_overhead`` (both 0 in the ideal limit)."""
    c = p.calibration
    return p.model.n_layers * c.layer_overhead + c.iteration_overhead


def draft_step(p: Params) -> dict:
    """One draft-model step for the microbatch: ``bytes`` [B] and ``flops`` [FLOP] it moves and
    computes, and its exposed ``sync`` [s] (the draft is dense, with ``draft_layers`` layers)."""
    d = p.deployment
    return {
        "bytes": d.draft_params * d.weight_bytes,
        "flops": 2.0 * d.draft_params * d.batch,
        "sync": sync_time(p, d.batch, d.draft_layers),
    }


def draft_time(p: Params):
    """Time the draft model spends producing ``draft_len`` tokens for the microbatch [s]."""
    d = p.deployment
    step = draft_step(p)
    one_step = (
        jnp.maximum(step["bytes"] / bandwidth(p), step["flops"] / flop_rate(p)) + step["sync"]
    )
    return jnp.where(d.draft_len > 0, d.draft_len * one_step, 0.0)


def decode_step(p: Params) -> dict:
    """All decode-step quantities for the parameters (elementwise over any grid)."""
    m, d, c, hw = p.model, p.deployment, p.calibration, p.hardware
    verify_tokens = d.draft_len + 1.0  # tokens per user processed by the target model
    tokens = d.batch * verify_tokens

    # a stage holds dp attention replicas of tp chips; its routed experts serve all dp x T
    # tokens (wide expert parallelism); with dp = 1 these are the replica's own T tokens
    stage_tokens = d.dp * tokens
    own = arch.non_routed_params(m) * d.weight_bytes  # read by every replica
    routed_read = arch.routed_weight_bytes_read(m, d, stage_tokens)
    weight_read = (
        arch.weight_bytes_read(m, d, tokens) if m.ffn != "moe" else d.dp * own + routed_read
    )
    kv_read = d.dp * d.batch * arch.kv_bytes_read(m, d, d.context)
    bytes_per_step = weight_read + kv_read
    flops_per_step = stage_tokens * (
        2.0 * arch.active_params(m) + arch.mixer_flops_per_query(m, d.context)
    )
    routed_flops = stage_tokens * 2.0 * (arch.active_params(m) - arch.non_routed_params(m))

    # the busiest chip carries expert_imbalance x the mean routed share
    extra = d.expert_imbalance - 1.0
    t_mem = memory_time(p, weight_read + extra * routed_read, kv_read) / d.dp
    t_compute = (flops_per_step + extra * routed_flops) / (d.dp * flop_rate(p))
    t_sync = sync_time(p, tokens)
    t_overhead = pass_overhead(p)
    t_draft = draft_time(p)
    step_time = jnp.maximum(t_mem, t_compute) + t_sync + t_overhead + t_draft

    tokens_per_step = expected_tokens_per_step(p)
    utps = tokens_per_step / step_time
    stps = d.replicas * d.pp * d.dp * d.batch * utps
    return {
        "weight_bytes_read": weight_read,
        "kv_bytes_read": kv_read,
        "bytes_per_step": bytes_per_step,
        "flops_per_step": flops_per_step,
        "t_mem": t_mem,
        "t_compute": t_compute,
        "t_sync": t_sync,
        "t_overhead": t_overhead,
        "t_draft": t_draft,
        "step_time": step_time,
        "tokens_per_step": tokens_per_step,
        "tbt": step_time / tokens_per_step,
        "utps": utps,
        "stps": stps,
        "arithmetic_intensity": flops_per_step / bytes_per_step,
        "ridge_point": (tensor_peak(p) * c.flops_efficiency) / (hw.mem_bw * c.mem_efficiency),
        "compute_utilization": flops_per_step / (step_time * d.dp * d.tp * tensor_peak(p)),
    }


def no_cache_step(p: Params) -> dict:
    """Naive decoding without a KV cache: every step re-runs the whole context (causal)."""
    m, d = p.model, p.deployment
    n = d.context + 1.0
    flops = d.batch * (2.0 * arch.active_params(m) * n + arch.prefill_mixer_flops(m, n, "causal"))
    weight_read = arch.weight_bytes_read(m, d, d.batch * n)
    t = (
        jnp.maximum(flops / flop_rate(p), weight_read / bandwidth(p))
        + sync_time(p, d.batch * n)
        + pass_overhead(p)
    )
    return {"flops_per_token_no_cache": flops / d.batch, "step_time_no_cache": t}
