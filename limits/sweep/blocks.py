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

__all__ = ["BlockFunction", "Band", "band_outputs"]

#: a fitted calibration for "expected +/- band" figures: (names, values in SI, covariance rows)
Band = tuple[tuple[str, ...], tuple[float, ...], tuple[tuple[float, ...], ...]]


def band_outputs(variables: Sequence[str]) -> tuple[str, ...]:
    """The stored variables that get ``_expected`` and ``_band`` companions."""
    # imported here: limits.autodiff.calibrate loads scipy, which plain sweeps do not need
    from limits.autodiff.calibrate import CALIBRATED_OUTPUTS

    return tuple(v for v in variables if v in CALIBRATED_OUTPUTS)


def _expected_block(params: Params, band: Band, variables, shape) -> dict[str, jax.Array]:
    """``<output>_expected`` (the calibrated figure) and ``<output>_band`` (one sigma from
    the fit's covariance, by jvp) for ``params`` (the ideal limit's, block shape)."""
    from limits.autodiff.calibrate import expected

    names, values, cov = band
    out = expected(params, dict(zip(names, values, strict=True)), cov, band_outputs(variables))
    result = {}
    for k, (value, sigma) in out.items():
        result[f"{k}_expected"] = jnp.broadcast_to(value, shape)
        result[f"{k}_band"] = jnp.broadcast_to(sigma, shape)
    return result


CACHE_SIZE = 8  # compiled block functions kept for reuse (sweeps run one after another)


class BlockFunction:
    """``block_fn(base, axis_values) -> {name: array of block shape (+ wrt)}``, jitted.

    The model outputs in ``variables`` are broadcast to the block shape; when ``metrics`` is
    non-empty, ``limits.autodiff.elasticities.elasticities`` adds ``elasticity_<metric>`` arrays
    with a trailing ``wrt`` dimension. ``traces`` counts how often JAX traced (= compiled) it.
    ``devices``: the block is spread over these (``limits.sweep.devices``; default: one device).
    ``reduction``: a ``limits.sweep.reduce.Reduction``; every output is then reduced over its axes
    in the same compiled function (they are never split over devices).
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
        band: Band | None = None,
    ) -> None:
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
        if self.band is not None:
            result.update(_expected_block(params, self.band, self.variables, self.block_shape))
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
        return self.jitted(base, axis_values)

    def output_shapes(self, base: Params, dtype: Any) -> dict[str, jax.ShapeDtypeStruct]:
        """Shapes and dtypes of the outputs, by tracing only (no compile, no evaluation). The
        trace is the jitted function's own, so the first block call reuses it (one trace per
        sweep instead of two: ~0.2 s of start-up)."""
        probe = tuple(jax.ShapeDtypeStruct((c,), dtype) for c in self.block_shape)
        return self.jitted.eval_shape(base, probe)


_CACHE: OrderedDict[tuple, BlockFunction] = OrderedDict()
