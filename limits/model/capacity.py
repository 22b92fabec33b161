"""Memory capacity: weights + KV of every in-flight user + workspace, against what the chips
of one replica hold; the largest batch that fits."""

from __future__ import annotations

import jax.numpy as jnp

from limits.model import architecture as arch
from limits.model.params import Params


def capacity(p: Params, context=None, chips=None, microbatches=None, batch=None, dp=None) -> dict:
    """``memory_required``, ``memory_available``, ``feasible`` and ``max_batch`` per replica.

    Defaults (the decode step): KV of ``context`` tokens for ``pp`` microbatches of ``batch``
    users in each of ``dp`` attention replicas on ``tp x dp x pp`` chips; serving passes its
    mean KV length, the prefill pool its own (``dp = 1``).
    """
    m, d, c, hw = p.model, p.deployment, p.calibration, p.hardware
    context = d.context if context is None else context
    dp = d.dp if dp is None else dp
    chips = d.tp * dp * d.pp if chips is None else chips
    microbatches = d.pp if microbatches is None else microbatches
    batch = d.batch if batch is None else batch
    # dp attention replicas each hold the non-routed weights; experts (and their redundant
    # copies) are held once per stage
    replicated = (dp - 1.0) * arch.non_routed_params(m) * d.weight_bytes
    weights = (
        arch.weight_bytes_stored(m, d)
        + replicated
        + arch.redundant_expert_bytes(m, d)
        + d.draft_params * d.weight_bytes
    )
    kv_per_user = arch.kv_bytes_stored(m, d, context + d.draft_len)
    kv = microbatches * dp * batch * kv_per_user  # microbatches of dp replicas in flight
    workspace = chips * c.workspace_bytes
    required = weights + kv + workspace
    available = chips * hw.mem_capacity
    room = available - weights - workspace
    max_batch = jnp.where(room > 0, jnp.floor(room / (microbatches * dp * kv_per_user)), 0.0)
    return {
        "memory_weights": weights,
        "memory_kv": kv,
        "memory_required": required,
        "memory_available": available,
        "feasible": required <= available,
        "max_batch": max_batch,
    }
