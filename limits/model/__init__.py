"""The limit model: pure, elementwise JAX functions of a ``Params`` pytree.

``evaluate(params)`` returns every output of ``limits.model.outputs.OUTPUTS``; numeric fields of the
parameters may be arrays that broadcast against each other (a grid).
"""

from __future__ import annotations

import jax.numpy as jnp

from limits.model.capacity import capacity
from limits.model.decode import decode_step, expected_tokens_per_step, no_cache_step
from limits.model.economics import economics
from limits.model.outputs import BOUND_LABELS
from limits.model.params import Params
from limits.model.prefill import prefill
from limits.model.serving import serving

__all__ = [
    "evaluate",
    "bound_of",
    "decode_step",
    "prefill",
    "serving",
    "capacity",
    "economics",
    "no_cache_step",
    "expected_tokens_per_step",
]


def bound_of(t_mem, t_compute, t_sync, feasible):
    """Index into ``BOUND_LABELS``: capacity if infeasible, else the largest of the three
    walls (ties go to memory, then compute; sync binds only when strictly largest)."""
    roof = jnp.maximum(t_mem, t_compute)
    wall = jnp.where(t_sync > roof, 2, jnp.where(t_compute > t_mem, 1, 0))
    return jnp.where(feasible, wall, BOUND_LABELS.index("capacity")).astype(jnp.int8)


def evaluate(p: Params) -> dict:
    """Every model output for ``p`` (see ``limits.model.outputs.OUTPUTS`` for names and units)."""
    out = decode_step(p)
    out.update(no_cache_step(p))
    out.update(prefill(p))
    out["request_latency"] = out["ttft"] + (p.deployment.output_len - 1.0) * out["tbt"]
    out.update(capacity(p))
    out.update(economics(p, out["stps"]))
    out["bound"] = bound_of(out["t_mem"], out["t_compute"], out["t_sync"], out["feasible"])
    out.update(serving(p))
    serving_money = economics(p, out["output_tps"], chips=out["serving_chips"])
    out["serving_energy_per_token"] = serving_money["energy_per_token"]
    out["serving_cost_per_mtok"] = serving_money["cost_per_mtok"]
    out["serving_bound"] = bound_of(
        out["serving_t_mem"],
        out["serving_t_compute"],
        out["serving_t_sync"],
        out["serving_feasible"],
    )
    return out
