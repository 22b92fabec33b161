"""Constrained optimisation over a results dataset: the best point (per group)."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from limits.analysis._common import broadcast_to_points, feasible_mask, metric, over_dims

__all__ = ["best_config", "satisfies", "OPERATORS"]

OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def satisfies(
    ds: xr.Dataset,
    constraints: Mapping[str, tuple[str, Any]] | None = None,
    feasible_only: bool = True,
) -> xr.DataArray:
    """Boolean DataArray: points meeting every ``{var: (op, value)}`` constraint (op one of
    ``>= <= > < == !=``; var stored, a coordinate or derivable) and, if asked, feasible."""
    ok = feasible_mask(ds, "feasible") if feasible_only else xr.DataArray(True)
    for name, spec in (constraints or {}).items():
        try:
            op, value = spec
            compare = OPERATORS[op]
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"constraint on {name!r} must be (op, value) with op one of "
                f"{', '.join(OPERATORS)}; got {spec!r}"
            ) from None
        ok = ok & compare(metric(ds, name), value)
    return ok


def best_config(
    ds: xr.Dataset,
    maximize: str = "stps",
    constraints: Mapping[str, tuple[str, Any]] | None = None,
    feasible_only: bool = True,
    over: str | Iterable[str] | None = None,
    minimize: str | None = None,
) -> xr.Dataset:
    """The best point: maximise `maximize` (or minimise `minimize`) subject to `constraints`.

    **Arguments:**
    - `maximize` / `minimize`: the objective (stored, coordinate or derivable variable).
    - `constraints`: ``{"utps": (">=", 50), "chips": ("<=", 64)}``.
    - `feasible_only`: only points whose `feasible` is True compete (when stored).
    - `over`: dims searched (None: all point dims); the other dims are kept, with the best
      point per combination.

    **Returns:** a computed (never lazy) Dataset holding every variable at the best point,
    the coordinates of the searched dims (as coordinates over the kept dims), the objective as
    `objective` attr and a boolean `satisfied`; where no point of a group meets the
    constraints, values are NaN and `satisfied` is False. With `over=None` and no admissible
    point, ``ValueError``.
    """
    objective = f"-{minimize}" if minimize is not None else maximize
    score, ok = broadcast_to_points(
        ds, metric(ds, objective), satisfies(ds, constraints, feasible_only)
    )
    dims = list(score.dims)
    searched = over_dims(dims, over)
    admissible = score.where(ok).fillna(-np.inf)
    where = {d: i.compute() for d, i in admissible.argmax(dim=searched).items()}  # small
    found = ok.any(searched)
    if over is None and not bool(found):
        raise ValueError(
            f"no point satisfies the constraints {dict(constraints or {})}"
            + (" among feasible points" if feasible_only else "")
        )
    best = ds.isel({d: where[d] for d in searched})
    if objective not in best and objective.lstrip("-") not in best:
        best[objective.lstrip("-")] = (
            metric(ds, objective.lstrip("-"))
            .broadcast_like(score)
            .isel({d: where[d] for d in searched})
        )
    if not bool(found.all()):
        best = best.where(found)
    best["satisfied"] = found.assign_attrs(long_name="a point meets the constraints", units="1")
    best.attrs.update(
        objective=objective,
        constraints=repr(dict(constraints or {})),
        feasible_only=str(feasible_only),
        searched=" ".join(searched),
    )
    return best.compute()  # a handful of numbers: printed as numbers, not dask placeholders
