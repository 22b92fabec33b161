"""Pareto frontiers: points no other point beats on both of two metrics (maximised)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from limits.analysis._common import broadcast_to_points, feasible_mask, metric, over_dims
from limits.analysis.table import Table

__all__ = ["pareto_mask", "pareto_frontier", "non_dominated"]


def non_dominated(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated points along the last axis (maximise x and y;
    NaN points never qualify; of identical points only one is kept). Vectorised over the
    leading axes: sort by x then y descending, keep points whose y beats every earlier y."""
    bad = np.isnan(x) | np.isnan(y)
    xs = np.where(bad, -np.inf, x)
    ys = np.where(bad, -np.inf, y)
    order = np.lexsort((-ys, -xs), axis=-1)
    y_sorted = np.take_along_axis(ys, order, axis=-1)
    best_before = np.maximum.accumulate(y_sorted, axis=-1)
    best_before = np.concatenate(
        [np.full(y_sorted.shape[:-1] + (1,), -np.inf), best_before[..., :-1]], axis=-1
    )
    front_sorted = (y_sorted > best_before) & ~np.take_along_axis(bad, order, axis=-1)
    front = np.zeros_like(front_sorted)
    np.put_along_axis(front, order, front_sorted, axis=-1)
    return front


def pareto_mask(
    ds: xr.Dataset,
    x: str = "utps",
    y: str = "stps",
    over: str | Iterable[str] | None = None,
    mask: str | xr.DataArray | None = "feasible",
) -> xr.DataArray:
    """Boolean DataArray over the point dims of `ds`: True on the Pareto frontier of (x, y).

    **Arguments:**
    - `x`, `y`: variables to maximise (stored, derivable such as `tokens_per_usd`, or `-name`
      to minimise `name`).
    - `over`: dims the frontier is taken across (None: all); each combination of the other
      dims gets its own frontier.
    - `mask`: only these points compete (default: `feasible` when stored; None: all).
    """
    xv, yv, keep = broadcast_to_points(ds, metric(ds, x), metric(ds, y), feasible_mask(ds, mask))
    dims = list(xv.dims)
    over = over_dims(dims, over)
    groups = [d for d in dims if d not in over]
    order = groups + over
    xa = xv.where(keep).transpose(*order).values.astype(np.float64)
    ya = yv.where(keep).transpose(*order).values.astype(np.float64)
    gshape = xa.shape[: len(groups)]
    front = non_dominated(xa.reshape(gshape + (-1,)), ya.reshape(gshape + (-1,)))
    out = xr.DataArray(
        front.reshape(xa.shape), dims=order, coords={d: xv[d] for d in order if d in xv.coords}
    )
    return (
        out.transpose(*dims)
        .rename("pareto")
        .assign_attrs(long_name=f"on the Pareto frontier of ({x}, {y})", units="1")
    )


def pareto_frontier(
    ds: xr.Dataset,
    x: str = "utps",
    y: str = "stps",
    over: str | Iterable[str] | None = None,
    mask: str | xr.DataArray | None = "feasible",
    columns: Iterable[str] = (),
) -> Table:
    """The frontier points as a tidy table: one row per point with its coordinates, `x`, `y`
    and any extra `columns`, sorted by group then descending `x`. ``df.attrs["units"]`` maps
    columns to units; the table (a ``DataFrame``) prints them in its header.

    **Example:** ``pareto_frontier(ds, "utps", "stps_per_watt", over=["tp", "batch"])``
    """
    front = pareto_mask(ds, x, y, over, mask)
    idx = np.nonzero(front.values)
    table: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for dim, i in zip(front.dims, idx):
        coord = ds[dim] if dim in ds.coords else xr.DataArray(np.arange(ds.sizes[dim]))
        table[str(dim)] = np.asarray(coord.values)[i]
        units[str(dim)] = coord.attrs.get("units", "")
    for name in dict.fromkeys([x, y, *columns]):
        da = broadcast_to_points(ds, metric(ds, name))[0].transpose(*front.dims)
        table[name] = np.asarray(da.values)[idx]
        units[name] = da.attrs.get("units", "")
    over = over_dims(front.dims, over)
    groups = [str(d) for d in front.dims if d not in over]
    df = (
        Table(table)
        .sort_values(groups + [x], ascending=[True] * len(groups) + [False], kind="stable")
        .reset_index(drop=True)
    )
    df.attrs["units"] = units
    return df
