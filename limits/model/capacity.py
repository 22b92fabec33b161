"""Memory capacity: weights + KV of every in-flight user + workspace, against what the chips
of one replica hold; the largest batch that fits."""

from __future__ import annotations

import jax.numpy as jnp

from limits.model import architecture as arch
from limits.model.params import Params


def capacity(p: Params) -> dict:
    """``memory_required``, ``memory_available``, ``feasible`` and ``max_batch`` per replica."""
    m, d, c, hw = p.model, p.deployment, p.calibration, p.hardware
    chips = d.tp * d.pp
    weights = arch.weight_bytes_stored(m, d) + d.draft_params * d.weight_bytes
    kv_per_user = arch.effective_context(m, d.context + d.draft_len) * arch.kv_bytes_per_token(m, d)
    workspace = chips * c.workspace_bytes
    available = chips * hw.mem_capacity

    def required_at(batch):  # the one rule: max_batch agrees with feasible in any precision
        return weights + d.pp * batch * kv_per_user + workspace  # pp microbatches in flight

    required = required_at(d.batch)
    kv = d.pp * d.batch * kv_per_user
    room = available - weights - workspace
    # floor(room / per-user bytes) can be one off where the division rounds across an
    # integer (float32): step to the largest whole batch that `fits` accepts
    n = jnp.maximum(jnp.floor(room / (d.pp * kv_per_user)), 0.0)
    fits_n = (required_at(n) <= available) | (n == 0.0)
    n = jnp.where(required_at(n + 1.0) <= available, n + 1.0, jnp.where(fits_n, n, n - 1.0))
    max_batch = jnp.where(room > 0, n, 0.0)
    return {
        "memory_weights": weights,
        "memory_kv": kv,
        "memory_required": required,
        "memory_available": available,
        "feasible": required <= available,
        "max_batch": max_batch,
    }
