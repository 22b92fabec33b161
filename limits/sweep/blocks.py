"""The per-block function a sweep hands to the engine: the model, its elasticities and an
optional reduction, composed and jitted once per signature.

This is the one place where the sweep meets the physics (``limits.model``) and autodiff
(``limits.autodiff``); the engine (``limits.sweep.engine``) only calls what it is given.

Lean layout (``layout="lean"``): each output is returned over only the grid axes it depends
on, found from the traced computation itself (``axis_dependence``: which axis inputs reach
which output in the jaxpr), so ``ridge_point`` (hardware only) is one number per block and
``memory_required`` has no ``sync_latency`` dim; the model knows nothing of it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from limits.autodiff.elasticities import elasticities
from limits.model import evaluate
from limits.model.params import Params
from limits.sweep.devices import block_sharding
from limits.sweep.grid import broadcast_axes
from limits.sweep.reduce import Reduction, reduce_block

__all__ = ["BlockFunction", "Band", "axis_dependence", "band_outputs", "LAYOUTS"]

LAYOUTS = ("lean", "full")  # store.layout: each output over the axes it depends on | all axes

#: a fitted calibration for "expected +/- band" figures: (names, values in SI, covariance rows)
Band = tuple[tuple[str, ...], tuple[float, ...], tuple[tuple[float, ...], ...]]


def band_outputs(variables: Sequence[str]) -> tuple[str, ...]:
    """The stored variables that get ``_expected`` and ``_band`` companions."""
    # imported here: limits.autodiff.calibrate loads scipy, which plain sweeps do not need
    from limits.autodiff.calibrate import CALIBRATED_OUTPUTS

    return tuple(v for v in variables if v in CALIBRATED_OUTPUTS)


def _expected_block(params: Params, band: Band, variables) -> dict[str, jax.Array]:
    """``<output>_expected`` (the calibrated figure) and ``<output>_band`` (one sigma from
    the fit's covariance, by jvp) for ``params`` (the ideal limit's), before any broadcast."""
    from limits.autodiff.calibrate import expected

    names, values, cov = band
    out = expected(params, dict(zip(names, values, strict=True)), cov, band_outputs(variables))
    result = {}
    for k, (value, sigma) in out.items():
        result[f"{k}_expected"] = value
        result[f"{k}_band"] = sigma
    return result


CACHE_SIZE = 8  # compiled block functions kept for reuse (sweeps run one after another)


class BlockFunction:
    """``block_fn(base, axis_values) -> {name: array over its block axes (+ wrt)}``, jitted.

    The model outputs in ``variables`` are broadcast to the block shape; when ``metrics`` is
    non-empty, ``limits.autodiff.elasticities.elasticities`` adds ``elasticity_<metric>`` arrays
    with a trailing ``wrt`` dimension. ``traces`` counts how often JAX traced (= compiled) it.
    ``devices``: the block is spread over these (``limits.sweep.devices``; default: one device).
    ``reduction``: a ``limits.sweep.reduce.Reduction``; every output is then reduced over its axes
    in the same compiled function (they are never split over devices).
    ``layout``: ``"full"`` (every output over every kept axis) or ``"lean"`` (each output over
    the axes it depends on; not with a reduction, whose outputs all keep every kept axis).
    ``output_axes(base)`` says which kept axes each output has. ``headlines``: also return
    the block's best ``utps``/``stps`` and where (``headlines``; names ``HEADLINE_PREFIX...``).
    ``band``: a fitted calibration (``Band``); the outputs stay the ideal limits and
    ``<output>_expected`` / ``<output>_band`` are added for ``band_outputs(variables)``.
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
        layout: str = "full",
        headlines: bool = False,
        band: Band | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout = {layout!r}; allowed: {', '.join(LAYOUTS)}")
        self.layout = layout
        self.headlines = headlines
        self.names = tuple(names)
        self.band = band
        self.block_shape = tuple(block_shape)
        self.variables = tuple(variables)
        self.metrics = tuple(metrics)
        self.wrt = tuple(wrt)
        self.reduction = reduction
        self.traces = 0
        keep = tuple(
            i for i, n in enumerate(self.names) if reduction is None or n not in reduction.over
        )
        self.keep = keep
        self.sharding = block_sharding(self.block_shape, tuple(devices or jax.devices()[:1]), keep)
        self.jitted = self.sharding.jit(self._fn, len(self.block_shape))
        # kept-axis positions of each output, per traced signature (structure of the params)
        self._axes: dict[Any, dict[str, tuple[int, ...]]] = {}
        self._deps: dict[Any, dict[str, frozenset[int]]] = {}  # the same, before any layout
        # signature -> the traced computation loaded or saved by the trace cache (traces.py)
        self._exported: dict[Any, Any] = {}

    def _outputs(self, base: Params, axis_values: tuple) -> dict[str, jax.Array]:
        """The stored outputs before any broadcast: model outputs, elasticities and, with a
        ``band``, the calibrated figures and their bands."""
        params = base.replace(**broadcast_axes(self.names, list(axis_values)))
        out = evaluate(params)
        result = {k: out[k] for k in self.variables}
        if self.metrics:
            result.update(elasticities(params, metrics=list(self.metrics), wrt=list(self.wrt)))
        if self.band is not None:
            result.update(_expected_block(params, self.band, self.variables))
        if self.reduction is not None:
            result.update({f"_input_{k}": out[k] for k in self.reduction.inputs})
        return result

    def _fn(self, base: Params, axis_values: tuple) -> dict[str, jax.Array]:
        self.traces += 1
        # traced once to a jaxpr, which gives both the dependence and the computation
        closed, shapes = jax.make_jaxpr(self._outputs, return_shape=True)(base, axis_values)
        tree = jax.tree_util.tree_structure(shapes)
        leaves = jax.tree_util.tree_leaves((base, axis_values))
        out = jax.tree_util.tree_unflatten(
            tree, jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *leaves)
        )
        deps = dict(  # output -> the axes its values depend on (leaves: sorted keys)
            zip(
                sorted(out),
                axis_dependence(
                    closed.jaxpr, len(jax.tree_util.tree_leaves(base)), len(self.names)
                ),
            )
        )
        self._deps[_signature(base)] = deps
        extra = {k: tuple(v.shape[len(self.names) :]) for k, v in out.items()}
        full = {k: jnp.broadcast_to(v, self.block_shape + extra[k]) for k, v in out.items()}
        if self.reduction is not None:  # every output over every kept axis
            inputs = {k: full.pop(f"_input_{k}") for k in self.reduction.inputs}
            result = reduce_block(self.reduction, self.names, full, inputs)
            axes = {k: tuple(range(len(self.keep))) for k in result}
        elif self.layout == "full":
            result, axes = full, {k: tuple(range(len(self.names))) for k in full}
        else:  # each output over its own axes: index 0 along the others (no copy in XLA)
            axes = {k: tuple(sorted(d)) for k, d in deps.items()}
            result = {
                k: v[tuple(slice(None) if i in axes[k] else 0 for i in range(len(self.names)))]
                for k, v in full.items()
            }
        if self.headlines:
            kept = tuple(self.block_shape[i] for i in self.keep)
            whole = {
                k: jnp.broadcast_to(
                    jnp.reshape(v, [kept[i] if i in axes[k] else 1 for i in range(len(kept))]),
                    kept,
                )
                for k, v in result.items()
                if k in HEADLINES or k == "feasible"
            }
            for k, v in headlines(whole).items():
                result[k], axes[k] = v, ()
        self._axes[_signature(base)] = {k: axes[k] for k in result}
        return {k: self.sharding.constrain(v, axes[k]) for k, v in result.items()}

    def output_axes(self, base: Params) -> dict[str, tuple[int, ...]]:
        """For each output, the positions (among the kept axes) of the axes it is stored over,
        for params of ``base``'s structure (after ``output_shapes`` or a call traced it)."""
        return dict(self._axes[_signature(base)])

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
        layout: str = "full",
        headlines: bool = False,
        band: Band | None = None,
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
            layout,
            headlines,
            band,
        )
        if key in _CACHE:
            _CACHE.move_to_end(key)
        else:
            _CACHE[key] = cls(*key)
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        return _CACHE[key]

    def __call__(self, base: Params, axis_values: tuple) -> dict[str, jax.Array]:
        exported = self._exported.get(_signature(base)) if self._exported else None
        if exported is not None:
            return exported(*jax.tree_util.tree_leaves((base, axis_values)))
        return self.jitted(base, axis_values)

    def output_shapes(self, base: Params, dtype: Any) -> dict[str, jax.ShapeDtypeStruct]:
        """Shapes and dtypes of the outputs, by tracing only (no compile, no evaluation). The
        trace is the jitted function's own, so the first block call reuses it (one trace per
        sweep instead of two: ~0.2 s of start-up). With the trace cache on
        (``limits.compile_cache.trace_cache_dir``; one device), the trace is loaded from it or
        made through ``jax.export`` and saved there, and block calls run the exported module."""
        from limits.compile_cache import trace_cache_dir

        probe = tuple(jax.ShapeDtypeStruct((c,), dtype) for c in self.block_shape)
        directory = trace_cache_dir()
        if directory is not None and self.sharding.axis is None:
            shapes = self._export(directory, base, probe)
            if shapes is not None:
                return shapes
        return self.jitted.eval_shape(base, probe)

    def _settings(self) -> tuple:
        return (
            type(self).__name__,
            self.names,
            self.block_shape,
            self.variables,
            self.metrics,
            self.wrt,
            self.reduction,
            self.layout,
            self.headlines,
            self.band,
        )

    def _export(self, directory: Any, base: Params, probe: tuple) -> dict | None:
        """The outputs' shapes from the trace cache (``limits.sweep.traces``), tracing through
        ``jax.export`` and saving on a miss; ``None`` where export fails (then the caller
        traces as without the cache)."""
        from limits.sweep import traces

        specs = jax.eval_shape(lambda tree: tree, (base, probe))  # shapes, dtypes, weak types
        leaves, tree = jax.tree_util.tree_flatten(specs)
        key = traces.cache_key(self._settings(), specs)
        sig = _signature(base)
        saved = traces.load(directory, key)
        if saved is not None:
            exported, meta = saved
            self._axes[sig] = {k: tuple(v) for k, v in meta["axes"].items()}
            self._deps[sig] = {k: frozenset(v) for k, v in meta["deps"].items()}
        else:

            def flat(*args: Any) -> dict[str, jax.Array]:
                return self._fn(*jax.tree_util.tree_unflatten(tree, args))

            try:
                exported = jax.export.export(jax.jit(flat))(*leaves)
            except Exception as err:  # a computation export cannot hold: trace as before
                traces.LOG.debug("limits.sweep: block function not exported: %s", err)
                return None
            meta = {
                "axes": {k: list(v) for k, v in self._axes[sig].items()},
                "deps": {k: sorted(v) for k, v in self._deps[sig].items()},
            }
            traces.save(directory, key, exported, meta)
        with traces.without_lapack(exported):  # lowered and compiled (or loaded) now
            self._exported[sig] = jax.jit(exported.call).lower(*leaves).compile()
        out = jax.tree_util.tree_unflatten(exported.out_tree, exported.out_avals)
        return {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in out.items()}

    def idle_axes(self, base: Params) -> list[str]:
        """The axes no output of this function depends on at all (sweeping one only repeats
        the same numbers), from the dependence found in its trace (``axis_dependence``; after
        ``output_shapes`` or a call traced it for params of ``base``'s structure)."""
        used = frozenset().union(*self._deps[_signature(base)].values())
        return [n for i, n in enumerate(self.names) if i not in used]


_CACHE: OrderedDict[tuple, BlockFunction] = OrderedDict()


def _signature(base: Params) -> Any:
    """What a jitted function is traced again for: the params' structure, shapes, dtypes."""
    leaves, tree = jax.tree_util.tree_flatten(base)
    return tree, tuple((tuple(np.shape(x)), np.dtype(x.dtype)) for x in leaves)


#: outputs whose best value (among feasible points) a sweep reports
HEADLINES = ("utps", "stps")
#: prefix of the per-block headline outputs (``headlines=True``; never stored)
HEADLINE_PREFIX = "_headline_"  # = limits.sweep.job.HEADLINE_PREFIX (a test checks)


def headlines(block: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per block, on the device in the same compiled pass (so the writer never re-reads the
    block): for each of ``HEADLINES`` present, the largest value among feasible points
    (``feasible`` if present), NaN ignored (``-inf`` when none), and the flat C-order index
    of its first occurrence. A padded block repeats its edge values, and a padded point comes
    after its real twin in C order, so the first best point is a real one."""
    mask = block.get("feasible")
    out = {}
    for name in HEADLINES:
        if name not in block:
            continue
        v = block[name]
        ok = ~jnp.isnan(v) if mask is None else mask & ~jnp.isnan(v)
        candidates = jnp.where(ok, v, jnp.asarray(-jnp.inf, v.dtype)).ravel()
        top = jnp.max(candidates)
        out[f"{HEADLINE_PREFIX}{name}"] = top
        out[f"{HEADLINE_PREFIX}{name}_at"] = jnp.argmax(candidates == top).astype(jnp.int32)
    return out


#: primitives whose outputs vary along their own dims whatever their inputs (an index)
_INDEX_PRIMITIVES = frozenset({"iota"})


def axis_dependence(jaxpr: Any, n_base: int, n_axes: int) -> list[frozenset[int]]:
    """For each output of ``jaxpr`` (inputs: ``n_base`` parameter leaves, then ``n_axes`` axis
    value arrays), the set of axes whose values it depends on: forward propagation of input
    sets through the equations (an output depends on every input of its equation; calls with
    a sub-jaxpr are followed inside; any other higher-order primitive is taken whole, which
    can only add axes). An index-valued primitive (``iota``) counts as depending on every
    axis, so an output without an axis truly is constant along it."""
    every = frozenset(range(n_axes))
    inputs: list[frozenset[int]] = [frozenset()] * n_base + [frozenset([i]) for i in range(n_axes)]
    return _propagate(jaxpr, inputs, every)


def _propagate(jaxpr: Any, inputs: list[frozenset[int]], every: frozenset[int]) -> list:
    from jax.extend.core import Literal

    env: dict[Any, frozenset[int]] = dict(zip(jaxpr.invars, inputs))

    def get(x: Any) -> frozenset[int]:
        return frozenset() if isinstance(x, Literal) else env.get(x, frozenset())

    for eqn in jaxpr.eqns:
        ins = [get(x) for x in eqn.invars]
        sub = eqn.params.get("jaxpr")
        inner = getattr(sub, "jaxpr", sub)
        if inner is not None and hasattr(inner, "eqns") and len(inner.invars) == len(ins):
            outs = _propagate(inner, ins, every)
        else:
            deps = every if eqn.primitive.name in _INDEX_PRIMITIVES else frozenset().union(*ins)
            outs = [deps] * len(eqn.outvars)
        env.update(zip(eqn.outvars, outs))
    return [get(x) for x in jaxpr.outvars]
