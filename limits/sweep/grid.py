"""Grid axes: named 1-D arrays of parameter values (never the cartesian product).

A grid is an ordered mapping ``parameter name -> 1-D array of SI values``. The order is the
order of the dataset's dimensions. Each axis is written in the config either as an explicit
list (``grid.tp=[8,16,32]``, values may carry units: ``grid.mem_bw=[4TiB/s,8TiB/s]``) or as
a range mapping ``{start: 1024, stop: 131072, num: 8, scale: log}`` (``scale``: ``lin`` or
``log``; both ends included; whole-number parameters are rounded).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from limits.model.params import ParameterError, Params, parameter_index
from limits.units import UNIT_KINDS, parse_quantity

__all__ = ["Grid", "parse_axis", "parse_grid", "validate_grid"]

_RANGE_KEYS = {"start", "stop", "num", "scale"}


@dataclass(frozen=True)
class Grid:
    """Named axes in dimension order. ``axes[name]`` is a float64 array in SI units."""

    axes: dict[str, np.ndarray]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def units(self, name: str) -> str:
        """SI unit of axis ``name`` as written in attrs."""
        kind = parameter_index()[name][1].unit
        return UNIT_KINDS[kind][1] if kind != "1" else "1"

    def long_name(self, name: str) -> str:
        return parameter_index()[name][1].doc

    def coord(self, name: str) -> np.ndarray:
        """Axis ``name`` as stored: int64 for a whole-number parameter (``tp``, ``batch``,
        ``context``...; its values are checked whole by then), else the float64 SI values."""
        values = self.axes[name]
        if parameter_index()[name][1].integer and np.all(np.isfinite(values)):
            return np.rint(values).astype(np.int64)
        return values


def _valid_names() -> str:
    return ", ".join(parameter_index())


def parse_axis(name: str, spec: Any) -> np.ndarray:
    """One axis from its config value: a list of values, one value, or a range mapping.

    **Arguments:** ``name``: flat parameter name; ``spec``: list / scalar / mapping.

    **Returns:** 1-D float64 array of SI values. Raises ``ParameterError`` naming the axis.
    """
    index = parameter_index()
    if name not in index:
        raise ParameterError(f"grid.{name}: unknown parameter; valid axis names: {_valid_names()}")
    fspec = index[name][1]
    where = f"grid.{name}"
    if isinstance(spec, Mapping):
        unknown = set(spec) - _RANGE_KEYS
        if unknown or not {"start", "stop", "num"} <= set(spec):
            raise ParameterError(
                f"{where}: a range needs keys start, stop, num (and optional "
                f"scale: lin|log); got {', '.join(map(str, spec))}"
            )
        start = parse_quantity(spec["start"], fspec.unit, where + ".start")
        stop = parse_quantity(spec["stop"], fspec.unit, where + ".stop")
        num = spec["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ParameterError(f"{where}.num = {num!r} must be a whole number >= 1")
        scale = str(spec.get("scale", "lin"))
        if scale not in ("lin", "log"):
            raise ParameterError(f"{where}.scale = {scale!r}; allowed: lin, log")
        if scale == "log":
            if start <= 0 or stop <= 0:
                raise ParameterError(f"{where}: a log range needs start and stop > 0")
            values = np.geomspace(start, stop, num)
        else:
            values = np.linspace(start, stop, num)
        if fspec.integer:
            values = np.round(values)
    else:
        items = list(spec) if isinstance(spec, (list, tuple)) else [spec]
        values = np.array([parse_quantity(v, fspec.unit, where) for v in items], dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ParameterError(f"{where} is empty; give at least one value")
    if len(np.unique(values)) != values.size:
        raise ParameterError(
            f"{where} has repeated values {values.tolist()}; axis values must "
            f"be distinct (a rounded range may need a smaller num)"
        )
    return values


def axis_lengths(spec: Mapping[str, Any] | None) -> dict[str, int]:
    """Number of values of each axis, read from the config without building any axis (a
    range's ``num``; 0 where it is not a whole number: ``parse_axis`` refuses it)."""
    out = {}
    for name, value in (spec or {}).items():
        if isinstance(value, Mapping):
            num = value.get("num")
            out[name] = num if isinstance(num, int) and not isinstance(num, bool) else 0
        else:
            out[name] = len(value) if isinstance(value, (list, tuple)) else 1
    return out


def parse_grid(spec: Mapping[str, Any] | None) -> Grid:
    """All axes of a ``grid`` config node, in the order given."""
    return Grid({name: parse_axis(name, value) for name, value in (spec or {}).items()})


def validate_grid(base: Params, grid: Grid) -> None:
    """Check every axis value against ``base`` before anything is compiled.

    Each axis is tried alone as a whole 1-D array (message names that axis), then all axes
    together, each reshaped to broadcast against the others, so that cross-parameter rules
    (e.g. ``tp`` must divide ``n_heads``) see every combination. Only pairs of axes are ever
    broadcast by the checks, never the whole product.
    """
    for name, values in grid.axes.items():
        base.replace(**{name: values})
    base.replace(**broadcast_axes(grid.names, list(grid.axes.values())))


def broadcast_axes(names: tuple[str, ...], values: list[Any]) -> dict[str, Any]:
    """``{name: values reshaped to (1,..,n_i,..,1)}`` so the axes broadcast to a grid."""
    ndim = len(names)
    out = {}
    for i, (name, v) in enumerate(zip(names, values)):
        shape = [1] * ndim
        shape[i] = v.shape[0]
        out[name] = v.reshape(shape)
    return out
