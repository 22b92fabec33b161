"""Memory capacity: weights + KV of every in-flight user + workspace, against what the chips
of one replica hold; the largest batch that fits."""

from __future__ import annotations

import jax.numpy as jnp

from limits.model import architecture as arch
from limits.model.params import Params


def capacity(p: Params) -> dict:
    """``memory_required``, ``memory_available``, ``feasible`` and ``max_batch`` per replica."""
    m, d, c, hw = p.model, p.deployment, p.calibration, p.hardware
    chips = d.tp * d.dp * d.pp
    # dp attention replicas each hold the non-routed weights; experts (and their redundant
    # copies) are held once per stage
    replicated = (d.dp - 1.0) * arch.non_routed_params(m) * d.weight_bytes
    weights = (
        arch.weight_bytes_stored(m, d)
        + replicated
        + arch.redundant_expert_bytes(m, d)
        + d.draft_params * d.weight_bytes
    )
    kv_per_user = arch.kv_bytes_stored(m, d, d.context + d.draft_len)
    kv = d.pp * d.dp * d.batch * kv_per_user  # pp microbatches of dp replicas in flight
    workspace = chips * c.workspace_bytes
    required = weights + kv + workspace
    available = chips * hw.mem_capacity
    room = available - weights - workspace
    max_batch = jnp.where(room > 0, jnp.floor(room / (d.pp * d.dp * kv_per_user)), 0.0)
    return {
        "memory_weights": weights,
        "memory_kv": kv,
        "memory_required": required,
        "memory_available": available,
        "feasible": required <= available,
        "max_batch": max_batch,
    }
