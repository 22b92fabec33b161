"""On-device reductions: keep only the best point along chosen block axes.

A ``Reduction`` names grid axes to reduce away (``over``), an output to optimise
(``objective``, ``mode`` max or min) and conditions a point must meet to count
(``constraints``: ``output op value``; ``feasible_only`` adds ``feasible == 1``). Inside the
jitted block function, ``reduce_block`` computes for every combination of the other axes the
first (lowest flat C-order index over the reduced axes) valid point whose objective is best,
and gathers every stored array there with ``take_along_axis``. NaN objectives never win.
Where no point is valid, floats are NaN, bools False, integers -1, and ``reduce_found`` is
False. The chosen axis positions come back as ``reduce_index_<axis>`` (int32); ``finish_host``
turns them into ``best_<axis>`` coordinate values (float64, NaN where none was found).

The module is generic: it knows array names and operators, not what they mean.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from limits.errors import ReduceError
from limits.units import UNIT_KINDS, UnitError, parse_quantity

__all__ = [
    "Reduction",
    "ReduceError",
    "parse_reduction",
    "reduce_block",
    "finish_host",
    "FOUND",
    "INDEX_PREFIX",
    "BEST_PREFIX",
    "OPS",
]

FOUND = "reduce_found"
INDEX_PREFIX = "reduce_index_"
BEST_PREFIX = "best_"
FEASIBLE = "feasible"
#: constraint operators (``output op value``)
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
MODES = ("max", "min")


@dataclasses.dataclass(frozen=True)
class Reduction:
    """Reduce ``over`` (block axis names) to the point of best ``objective`` (``mode``) among
    points meeting every ``(output, op, value)`` in ``constraints`` (values in SI units)."""

    over: tuple[str, ...]
    objective: str
    mode: str = "max"
    constraints: tuple[tuple[str, str, float], ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        """Outputs the reduction reads (objective and constrained outputs)."""
        return tuple(dict.fromkeys((self.objective, *(c[0] for c in self.constraints))))

    def describe(self, units: Mapping[str, str] | None = None) -> str:
        """One human-readable line, e.g. ``max stps over batch where utps >= 50 tok/s/user``."""
        units = units or {}
        conds = [
            f"{n} {op} {v:g}" + (f" {units[n]}" if units.get(n, "1") != "1" else "")
            if n != FEASIBLE
            else "feasible"
            for n, op, v in self.constraints
        ]
        where = f" where {' and '.join(conds)}" if conds else ""
        return (
            f"{self.mode} {self.objective} over {', '.join(self.over)}{where}; ties: first "
            f"index; none valid: NaN, False, -1, {FOUND} False"
        )


def _value(name: str, raw: Any, unit: str) -> float:
    """A constraint's value in SI: units allowed where ``unit`` is a known unit kind."""
    key = f"reduce.constraints.{name}"
    if unit in UNIT_KINDS:
        value = parse_quantity(raw, unit, key)
    else:
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        except (TypeError, ValueError):
            raise UnitError(f"{key}: expected a plain number in {unit}, got {raw!r}") from None
    if math.isnan(value):  # every comparison with NaN is False: nothing would ever be valid
        raise ReduceError(f"{key}: the value is NaN; give a number in {unit}")
    return value


def parse_reduction(
    node: Mapping[str, Any], axes: Sequence[str], outputs: Mapping[str, tuple[str, str]]
) -> Reduction | None:
    """The ``Reduction`` of a ``reduce`` config node (``None`` when ``over`` is empty), checked
    against the grid ``axes`` and ``outputs`` (name -> (units, long_name))."""
    over = [str(a) for a in (node.get("over") or [])]
    unknown = [a for a in over if a not in axes]
    if unknown:
        raise ReduceError(
            f"reduce.over: {', '.join(unknown)} not a grid axis; grid axes: "
            f"{', '.join(axes) or '(none)'}"
        )
    twice = sorted({a for a in over if over.count(a) > 1})
    if twice:
        raise ReduceError(f"reduce.over: axis {', '.join(twice)} given more than once")
    objective = str(node.get("objective"))
    if objective not in outputs:
        raise ReduceError(
            f"reduce.objective = {objective!r} is not a model output; valid: {', '.join(outputs)}"
        )
    mode = str(node.get("mode"))
    if mode not in MODES:
        raise ReduceError(f"reduce.mode = {mode!r}; allowed: {', '.join(MODES)}")
    constraints = []
    for name, spec in dict(node.get("constraints") or {}).items():
        name = str(name)
        if name not in outputs:
            raise ReduceError(
                f"reduce.constraints: {name!r} is not a model output; valid: {', '.join(outputs)}"
            )
        if not isinstance(spec, (list, tuple)) or len(spec) != 2 or str(spec[0]) not in OPS:
            raise ReduceError(
                f"reduce.constraints.{name} = {spec!r}; write [op, value] with "
                f"op one of {' '.join(OPS)}, e.g. ['>=', 50]"
            )
        constraints.append((name, str(spec[0]), _value(name, spec[1], outputs[name][0])))
    feasible_only = node.get("feasible_only", True)
    if not isinstance(feasible_only, bool):
        raise ReduceError(f"reduce.feasible_only = {feasible_only!r}; allowed: true, false")
    if feasible_only:
        if FEASIBLE not in outputs:
            raise ReduceError(f"reduce.feasible_only needs a {FEASIBLE!r} output")
        constraints.append((FEASIBLE, "==", 1.0))
    if not over:
        return None
    return Reduction(tuple(over), objective, mode, tuple(constraints))


def reduce_block(
    reduction: Reduction, names: Sequence[str], arrays: Mapping[str, Any], inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """Reduce block ``arrays`` (dims ``names`` then optional trailing dims) over
    ``reduction.over`` using ``inputs`` (the objective and constrained outputs, block shape).

    Returns the gathered arrays (dims: the kept names, then their trailing dims), ``FOUND``
    and ``INDEX_PREFIX + axis`` (int32 position along each reduced axis, 0 where none found).
    Traceable with JAX (call it inside ``jax.jit``).
    """
    import jax.numpy as jnp

    names = tuple(names)
    red = [names.index(a) for a in reduction.over]
    kept = [i for i in range(len(names)) if i not in red]
    shape = jnp.shape(inputs[reduction.objective])
    red_shape = tuple(shape[i] for i in red)
    n_red = math.prod(red_shape)

    def flat(x: Any) -> Any:
        """Kept dims, trailing dims, then the reduced dims flattened into one (last)."""
        x = jnp.moveaxis(x, red, list(range(x.ndim - len(red), x.ndim)))
        return x.reshape(x.shape[: x.ndim - len(red)] + (n_red,))

    objective = flat(inputs[reduction.objective])
    if objective.dtype == jnp.bool_ or jnp.issubdtype(objective.dtype, jnp.integer):
        objective = objective.astype(jnp.float64 if objective.dtype.itemsize > 4 else jnp.float32)
    valid = ~jnp.isnan(objective)
    for name, op, value in reduction.constraints:
        x = flat(inputs[name])
        if x.dtype == jnp.bool_:
            x = x.astype(objective.dtype)
        valid = valid & OPS[op](x, jnp.asarray(value, dtype=x.dtype))
    pick = jnp.max if reduction.mode == "max" else jnp.min
    fill = -jnp.inf if reduction.mode == "max" else jnp.inf
    score = jnp.where(valid, objective, jnp.asarray(fill, objective.dtype))
    best = pick(score, axis=-1, keepdims=True)
    winners = valid & (score == best)  # exact ties: argmax picks the first
    index = jnp.argmax(winners, axis=-1)
    found = jnp.any(valid, axis=-1)

    out: dict[str, Any] = {}
    for key, x in arrays.items():
        x = flat(x)
        trailing = x.ndim - 1 - len(kept)
        idx = index.reshape(index.shape + (1,) * trailing + (1,))
        got = jnp.take_along_axis(x, idx, axis=-1)[..., 0]
        mask = found.reshape(found.shape + (1,) * trailing)
        out[key] = jnp.where(mask, got, _missing(got.dtype))
    out[FOUND] = found
    for axis, pos in zip(reduction.over, jnp.unravel_index(index, red_shape)):
        out[INDEX_PREFIX + axis] = pos.astype(jnp.int32)
    return out


def _missing(dtype: Any) -> Any:
    """Fill of a point where nothing was valid: NaN, False or -1."""
    import jax.numpy as jnp

    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.asarray(jnp.nan, dtype)
    if dtype == jnp.bool_:
        return jnp.asarray(False)
    return jnp.asarray(-1, dtype)


def finish_host(
    data: Mapping[str, np.ndarray], axes: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Host side: each ``INDEX_PREFIX + axis`` array becomes ``BEST_PREFIX + axis``, the
    chosen coordinate value of ``axes[axis]`` (float64), NaN where ``FOUND`` is False."""
    out = {}
    for key, value in data.items():
        if key.startswith(INDEX_PREFIX):
            axis = key[len(INDEX_PREFIX) :]
            coords = np.asarray(axes[axis], np.float64)
            out[BEST_PREFIX + axis] = np.where(data[FOUND], coords[value], np.nan)
        else:
            out[key] = value
    return out
