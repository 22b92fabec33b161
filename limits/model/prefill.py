"""Prefill of one prompt: time to first token (compute-bound GEMMs + attention, weight and KV
traffic, sync), with the whole replica working on that one request."""

from __future__ import annotations

import jax.numpy as jnp

from limits.model import architecture as arch
from limits.model.decode import bandwidth, pass_overhead, prefill_flop_rate
from limits.model.params import Params
from limits.model.sync import sync_time


def prefill(p: Params) -> dict:
    """TTFT and the prefill's FLOPs and bytes for a prompt of ``prompt_len`` tokens."""
    m, d, c = p.model, p.deployment, p.calibration
    n = d.prompt_len
    linear = 2.0 * arch.active_params(m) * n
    attention = arch.prefill_mixer_flops(m, n, c.prefill_attention_mask)
    flops = linear + attention
    kv_written = arch.kv_bytes_stored(m, d, n)
    bytes_moved = arch.weight_bytes_read(m, d, n) + kv_written
    t_compute = flops / prefill_flop_rate(p)
    t_mem = bytes_moved / bandwidth(p)
    ttft = jnp.maximum(t_compute, t_mem) + sync_time(p, n) + pass_overhead(p) + c.request_overhead
    return {
        "prefill_flops": flops,
        "prefill_attention_flops": attention,
        "prefill_bytes": bytes_moved,
        "prefill_intensity": flops / bytes_moved,
        "ttft": ttft,
    }
