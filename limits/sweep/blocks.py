"""The per-block function a sweep hands to the engine: the model, its elasticities and an
optional reduction, composed and jitted once per signature.

This is the one place where the sweep meets the physics (``limits.model``) and autodiff
(``limits.autodiff``); the engine (``limits.sweep.engine``) only calls what it is given.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from limits.autodiff.elasticities import elasticities
from limits.model import evaluate
from limits.model.params import Params
from limits.sweep.devices import block_sharding
from limits.sweep.grid import broadcast_axes
from limits.sweep.reduce import Reduction, reduce_block

__all__ = ["BlockFunction"]

CACHE_SIZE = 8  # compiled block functions kept for reuse (sweeps run one after another)


class BlockFunction:
    """``block_fn(base, axis_values) -> {name: array of block shape (+ wrt)}``, jitted.

    The model outputs in ``variables`` are broadcast to the block shape; when ``metrics`` is
    non-empty, ``limits.autodiff.elasticities.elasticities`` adds ``elasticity_<metric>`` arrays
    with a trailing ``wrt`` dimension. ``traces`` counts how often JAX traced (= compiled) it.
    ``devices``: the block is spread over these (``limits.sweep.devices``; default: one device).
    ``reduction``: a ``limits.sweep.reduce.Reduction``; every output is then reduced over its axes
    in the same compiled function (they are never split over devices).
    """

    def __init__(
        self,
        names: Sequence[str],
        block_shape: tuple[int, ...],
        variables: Sequence[str],
        metrics: Sequence[str] = (),
        wrt: Sequence[str] = (),
        devices: Sequence[Any] | None = None,
        reduction: Reduction | None = None,
    ) -> None:
        self.names = tuple(names)
        self.block_shape = tuple(block_shape)
        self.variables = tuple(variables)
        self.metrics = tuple(metrics)
        self.wrt = tuple(wrt)
        self.reduction = reduction
        self.traces = 0
        keep = tuple(
            i for i, n in enumerate(self.names) if reduction is None or n not in reduction.over
        )
        self.sharding = block_sharding(self.block_shape, tuple(devices or jax.devices()[:1]), keep)
        self.jitted = self.sharding.jit(self._fn, len(self.block_shape))

    def _fn(self, base: Params, axis_values: tuple) -> dict[str, jax.Array]:
        self.traces += 1
        params = base.replace(**broadcast_axes(self.names, list(axis_values)))
        out = evaluate(params)
        result = {k: jnp.broadcast_to(out[k], self.block_shape) for k in self.variables}
        if self.metrics:
            extra = elasticities(params, metrics=list(self.metrics), wrt=list(self.wrt))
            for k, v in extra.items():
                result[k] = jnp.broadcast_to(v, self.block_shape + (len(self.wrt),))
        if self.reduction is not None:
            inputs = {k: jnp.broadcast_to(out[k], self.block_shape) for k in self.reduction.inputs}
            result = reduce_block(self.reduction, self.names, result, inputs)
        return result

    @classmethod
    def cached(
        cls,
        names: Sequence[str],
        block_shape: tuple[int, ...],
        variables: Sequence[str],
        metrics: Sequence[str] = (),
        wrt: Sequence[str] = (),
        devices: Sequence[Any] | None = None,
        reduction: Reduction | None = None,
    ) -> BlockFunction:
        """A shared instance per signature, so that sweeps run one after another in one
        process (Hydra's default launcher, notebooks) reuse the compiled function."""
        key = (
            tuple(names),
            tuple(block_shape),
            tuple(variables),
            tuple(metrics),
            tuple(wrt),
            tuple(devices or jax.devices()[:1]),
            reduction,
        )
        if key in _CACHE:
            _CACHE.move_to_end(key)
        else:
            _CACHE[key] = cls(*key)
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        return _CACHE[key]

    def __call__(self, base: Params, axis_values: tuple) -> dict[str, jax.Array]:
        return self.jitted(base, axis_values)

    def output_shapes(self, base: Params, dtype: Any) -> dict[str, jax.ShapeDtypeStruct]:
        """Shapes and dtypes of the outputs, by tracing only (no compile, no evaluation). The
        trace is the jitted function's own, so the first block call reuses it (one trace per
        sweep instead of two: ~0.2 s of start-up)."""
        probe = tuple(jax.ShapeDtypeStruct((c,), dtype) for c in self.block_shape)
        return self.jitted.eval_shape(base, probe)

    def idle_axes(self, base: Params, dtype: Any) -> list[str]:
        """The axes no output of this function depends on at all (sweeping one only repeats
        the same numbers), read from the jitted function's own trace (no second trace): an
        axis counts as used when any stored output is computed from it."""
        probe = tuple(jax.ShapeDtypeStruct((c,), dtype) for c in self.block_shape)
        closed = self.jitted.trace(base, probe).jaxpr
        n_base = len(jax.tree_util.tree_leaves(base))
        used = set().union(*_output_sources(closed.jaxpr))
        return [n for i, n in enumerate(self.names) if n_base + i not in used]


def _output_sources(jaxpr: Any) -> list[set[int]]:
    """For each output of ``jaxpr``, the indices of the inputs it depends on: nested ``jit``
    calls are followed, any other primitive ties each of its outputs to all its inputs
    (so an input may be counted as used when it is not, never the reverse)."""
    from jax.extend.core import Var

    reach: dict[Any, set[int]] = {v: {i} for i, v in enumerate(jaxpr.invars)}

    def of(v: Any) -> set[int]:
        return reach.get(v, set()) if isinstance(v, Var) else set()

    for eqn in jaxpr.eqns:
        inner = eqn.params.get("jaxpr") if eqn.primitive.name in ("pjit", "jit") else None
        if inner is not None:
            sub = _output_sources(inner.jaxpr)
            for out, sources in zip(eqn.outvars, sub):
                reach[out] = set().union(*(of(eqn.invars[j]) for j in sources))
            continue
        every = set().union(*(of(v) for v in eqn.invars))
        for out in eqn.outvars:
            reach[out] = every
    return [of(v) for v in jaxpr.outvars]


_CACHE: OrderedDict[tuple, BlockFunction] = OrderedDict()
