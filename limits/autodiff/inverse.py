"""Inverse design: the least hardware (or the most slack) that still reaches a throughput target.

Every function is elementwise over a grid (numeric leaves of ``params`` may be broadcasting
arrays), jittable, and returns a dict of arrays plus an ``int8`` ``reason`` indexing
``REASON_LABELS``: ``reached`` where the target is met, otherwise why it cannot be:

- ``memory`` / ``compute``: that roofline wall alone (with the fixed latencies) exceeds the step
  budget; ``sync``: the fixed latencies (sync, overhead, draft sync) alone exceed it;
- ``capacity``: weights + KV + workspace do not fit in the chips' memory.

Unreachable points are NaN. Targets: ``target_utps`` [tok/s/user], or ``target_stps`` [tok/s]
(optionally with ``max_tbt`` [s]); both reduce to a per-user rate (``required_utps``) and hence to
a step-time budget ``T = tokens_per_step / utps_needed``. Formulas: docs/sensitivity.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from limits.autodiff.elasticities import block_shape, derivatives
from limits.model import evaluate
from limits.model.decode import bandwidth, draft_step, flop_rate
from limits.model.params import ParameterError, Params, is_concrete
from limits.model.sync import collective_tier

__all__ = [
    "REASON_LABELS",
    "required_utps",
    "min_mem_bw",
    "max_sync_latency",
    "min_chips",
    "tp_candidates",
    "LATENCY_PARAMS",
]

#: index -> label of the ``reason`` outputs of inverse design.
REASON_LABELS = ("reached", "memory", "compute", "sync", "capacity")
#: index -> parameter of the ``latency_param`` output of ``max_sync_latency``.
LATENCY_PARAMS = ("sync_latency_intra_node", "sync_latency", "sync_latency_scaleup")

_REACHED, _MEMORY, _COMPUTE, _SYNC, _CAPACITY = range(5)


def required_utps(params: Params, target_utps=None, target_stps=None, max_tbt=None):
    """Per-user rate [tok/s/user] that meets every given target: ``target_utps``;
    ``target_stps / (replicas x pp x batch)``; ``1 / max_tbt`` (``tbt = 1 / utps``)."""
    d = params.deployment
    needs = []
    if target_utps is not None:
        needs.append(jnp.asarray(target_utps, dtype=float))
    if target_stps is not None:
        needs.append(jnp.asarray(target_stps, dtype=float) / (d.replicas * d.pp * d.batch))
    if max_tbt is not None:
        needs.append(1.0 / jnp.asarray(max_tbt, dtype=float))
    if not needs:
        raise ValueError("give target_utps, or target_stps (optionally with max_tbt), or max_tbt")
    need = needs[0]
    for other in needs[1:]:
        need = jnp.maximum(need, other)
    return need


def _on_block(params: Params, result: dict) -> dict:
    """Broadcast every output to the grid block of ``params`` (so it sits beside the sweep's
    other outputs)."""
    shape = block_shape(params)
    return {
        k: jnp.broadcast_to(v, jnp.broadcast_shapes(shape, jnp.shape(v))) for k, v in result.items()
    }


def _candidates_on_block(a, block: tuple[int, ...]):
    """(K, *s) -> (K, *block); ``s`` may have fewer dims than ``block``: pad on the left."""
    k, s = a.shape[0], a.shape[1:]
    return jnp.broadcast_to(a.reshape((k,) + (1,) * (len(block) - len(s)) + s), (k,) + block)


def _code(*cases):
    """First matching (condition, code) wins; ``reached`` otherwise."""
    code = jnp.asarray(_REACHED, dtype=jnp.int8)
    for cond, value in reversed(cases):
        code = jnp.where(cond, jnp.asarray(value, dtype=jnp.int8), code)
    return code


def min_mem_bw(params: Params, target_utps=None, *, target_stps=None, max_tbt=None) -> dict:
    """Least memory bandwidth per chip ``mem_bw`` [B/s] whose step time meets the target.

    With ``u = 1 / mem_bw`` the step is ``max(B u, Tc) + k max(Dm u, Dc) + c`` (``B u = t_mem``,
    ``Tc = t_compute``, ``k`` drafted tokens whose draft step costs ``max(Dm u, Dc)``, ``c`` =
    sync + overhead + draft sync), a maximum of four affine functions of ``u``; each must fit the
    budget ``T``, which gives ``u_max`` in closed form. Without drafting this is
    ``mem_bw_min = bytes / (tp x mem_efficiency x (T - t_sync - t_overhead))`` when
    ``t_compute <= T - t_sync - t_overhead``.

    **Returns:** ``{"mem_bw", "step_time_budget", "reason"}`` (``mem_bw`` NaN when unreachable).
    """
    out = evaluate(params)
    d = params.deployment
    budget = out["tokens_per_step"] / required_utps(params, target_utps, target_stps, max_tbt)
    per_bw = bandwidth(params) / params.hardware.mem_bw  # bytes / (per_bw * mem_bw) = time
    k = jnp.where(d.draft_len > 0, d.draft_len, 0.0)
    draft = draft_step(params)
    b = out["t_mem"] * params.hardware.mem_bw  # t_mem = b u (KV reads at their own rate)
    dm = k * draft["bytes"] / per_bw
    dc = k * draft["flops"] / flop_rate(params)
    fixed = out["t_sync"] + out["t_overhead"] + k * draft["sync"]
    inf = jnp.full_like(budget * b, jnp.inf)
    u_max = jnp.minimum(
        jnp.minimum((budget - fixed) / (b + dm), (budget - fixed - dc) / b),
        jnp.where(dm > 0, (budget - fixed - out["t_compute"]) / jnp.where(dm > 0, dm, 1.0), inf),
    )
    u_max = jnp.where(out["t_compute"] + dc + fixed <= budget, u_max, -inf)
    reason = _code((~out["feasible"], _CAPACITY), (fixed >= budget, _SYNC), (u_max <= 0, _COMPUTE))
    reached = reason == _REACHED
    mem_bw = jnp.where(reached, 1.0 / jnp.where(reached, u_max, 1.0), jnp.nan)
    return _on_block(params, {"mem_bw": mem_bw, "step_time_budget": budget, "reason": reason})


def max_sync_latency(
    params: Params, target_utps=None, *, target_stps=None, max_tbt=None, latency: str = "auto"
) -> dict:
    """Largest collective latency [s] whose step time still meets the target.

    The step time is affine in each latency (``t_sync`` is a sum of ``alpha + bytes/link_bw``
    terms; the draft model's sync too), so with ``s = d step_time / d L`` (exact, by autodiff)
    ``L_max = L + (T - step_time) / s``. ``latency="auto"`` solves, per point, for the latency the
    tensor-parallel group uses: ``sync_latency_intra_node`` when ``tp <= node_size``,
    ``sync_latency_scaleup`` inside a scale-up domain, else ``sync_latency`` (the others and
    ``pipeline_latency`` stay fixed); or name one of
    ``LATENCY_PARAMS``. Where the latency does not enter the step (e.g. ``tp = 1``) and the
    target is met, ``L_max = inf``.

    **Returns:** ``{"sync_latency_max", "latency_param" (index into LATENCY_PARAMS),
    "step_time_budget", "reason"}``.
    """
    if latency not in ("auto",) + LATENCY_PARAMS:
        raise ParameterError(
            f"latency = {latency!r} is unknown; choose auto or one of {', '.join(LATENCY_PARAMS)}"
        )
    out = evaluate(params)
    hw, d = params.hardware, params.deployment
    budget = out["tokens_per_step"] / required_utps(params, target_utps, target_stps, max_tbt)
    slopes = derivatives(params, ["step_time"], list(LATENCY_PARAMS))["derivative_step_time"]
    if latency == "auto":
        tier = collective_tier(hw, d.tp)  # node, scale-up, scale-out -> index in LATENCY_PARAMS
        which = jnp.where(tier == 0, 0, jnp.where(tier == 1, 2, 1)).astype(jnp.int8)
    else:
        which = jnp.asarray(LATENCY_PARAMS.index(latency), dtype=jnp.int8)
    shape = slopes.shape[:-1]
    which = jnp.broadcast_to(which, shape)
    slope = jnp.choose(which, [slopes[..., i] for i in range(len(LATENCY_PARAMS))], mode="clip")
    current = jnp.choose(
        which,
        [jnp.broadcast_to(getattr(hw, name), shape) for name in LATENCY_PARAMS],
        mode="clip",
    )
    step_at_zero = out["step_time"] - slope * current
    roof = jnp.maximum(out["t_mem"], out["t_compute"])
    reason = _code(
        (~out["feasible"], _CAPACITY),
        ((roof >= budget) & (out["t_mem"] >= out["t_compute"]), _MEMORY),
        (roof >= budget, _COMPUTE),
        (step_at_zero > budget, _SYNC),
    )
    reached = reason == _REACHED
    safe_slope = jnp.where(slope > 0, slope, 1.0)
    solved = jnp.where(slope > 0, current + (budget - out["step_time"]) / safe_slope, jnp.inf)
    return _on_block(
        params,
        {
            "sync_latency_max": jnp.where(reached, solved, jnp.nan),
            "latency_param": which,
            "step_time_budget": budget,
            "reason": reason,
        },
    )


def tp_candidates(n_heads, max_tp: float = 1024) -> tuple[float, ...]:
    """Tensor-parallel degrees the model allows, ascending: divisors of ``n_heads`` and its
    multiples up to ``max_tp`` (union over the values of a concrete ``n_heads`` array)."""
    if not is_concrete(n_heads):
        raise ParameterError("n_heads is traced or abstract: pass candidates= to min_chips")
    values: set[float] = set()
    for h in np.unique(np.asarray(n_heads, dtype=float)):
        h = int(h)
        values.update(t for t in range(1, h + 1) if h % t == 0)
        values.update(range(h, int(max_tp) + 1, h))
    return tuple(float(t) for t in sorted(values) if t <= max_tp)


def min_chips(
    params: Params,
    target_utps=None,
    *,
    target_stps=None,
    max_tbt=None,
    candidates: Sequence[float] | None = None,
    max_tp: float = 1024,
) -> dict:
    """Fewest chips per replica (smallest ``tp`` at the given ``pp``) that reach the target.

    Every candidate ``tp`` (default ``tp_candidates(n_heads, max_tp)``; pass ``candidates`` when
    ``n_heads`` is traced) is evaluated at once (vmapped); a candidate counts where it is
    allowed (divides ``n_heads`` or is a multiple of it; a multiple of ``ep``), fits in memory
    and meets the rate; the smallest such ``tp`` wins.

    **Returns:** ``{"tp", "chips" (tp x pp x replicas), "utps" (at that tp), "reason"}``; where no
    candidate reaches the target, ``reason`` is ``capacity`` if none fits, else the wall that
    binds at the fastest fitting candidate, and the other outputs are NaN.
    """
    cands = jnp.asarray(
        candidates if candidates is not None else tp_candidates(params.model.n_heads, max_tp),
        dtype=float,
    )
    need = required_utps(params, target_utps, target_stps, max_tbt)
    m, d = params.model, params.deployment

    def at(tp):
        out = evaluate(params.replace(tp=tp))
        allowed = ((jnp.mod(m.n_heads, tp) == 0) | (jnp.mod(tp, m.n_heads) == 0)) & (
            jnp.mod(tp, d.ep) == 0
        )
        fits = allowed & out["feasible"]
        return out["utps"], fits, out["bound"]

    utps, fits, bound = jax.vmap(at)(cands)
    block = jnp.broadcast_shapes(utps.shape[1:], fits.shape[1:], bound.shape[1:], jnp.shape(need))
    utps, fits, bound = (_candidates_on_block(a, block) for a in (utps, fits, bound))
    reaches = fits & (utps >= jnp.broadcast_to(need, block)[None])
    first = jnp.argmax(reaches, axis=0)
    found = reaches.any(axis=0)
    tp = jnp.where(found, cands[first], jnp.nan)
    best = jnp.argmax(jnp.where(fits, utps, -jnp.inf), axis=0)
    best_bound = jnp.take_along_axis(bound, best[None], axis=0)[0]
    reason = jnp.where(
        found,
        jnp.int8(_REACHED),
        jnp.where(fits.any(axis=0), (best_bound + 1).astype(jnp.int8), jnp.int8(_CAPACITY)),
    )
    return _on_block(
        params,
        {
            "tp": tp,
            "chips": tp * d.pp * d.replicas,
            "utps": jnp.where(found, jnp.take_along_axis(utps, first[None], axis=0)[0], jnp.nan),
            "reason": reason,
        },
    )
