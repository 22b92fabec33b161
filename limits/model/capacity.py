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
    workspace = chips * c.workspace_bytes
    available = chips * hw.mem_capacity

    def required_at(users):  # the one rule: max_batch agrees with feasible in any precision
        return weights + microbatches * dp * users * kv_per_user + workspace

    required = required_at(batch)
    kv = microbatches * dp * batch * kv_per_user  # microbatches of dp replicas in flight
    room = available - weights - workspace
    # floor(room / per-user bytes) can be one off where the division rounds across an
    # integer (float32): step to the largest whole batch that `required_at` accepts
    n = jnp.maximum(jnp.floor(room / (microbatches * dp * kv_per_user)), 0.0)
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
