"""Pareto frontiers: points no other point beats on both of two metrics (maximised)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from limits.analysis._common import (
    broadcast_to_points,
    feasible_mask,
    metric,
    over_dims,
    point_dims,
)
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


#: points read at a time (x, y, mask): bounds the memory of the frontier helpers on huge
#: stores (a few hundred MB at most) whatever the store's size
BLOCK_POINTS = 1 << 22


def _segment_front(group: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Positions of the non-dominated points of each ``group`` (the rule of
    ``non_dominated``, for groups of any sizes): sort by group, x then y descending; keep a
    point whose y beats every earlier y of its group."""
    ok = ~(np.isnan(x) | np.isnan(y))
    pos = np.nonzero(ok)[0]
    g, xs, ys = group[pos], x[pos], y[pos]
    order = np.lexsort((-ys, -xs, g))
    g, ys, pos = g[order], ys[order], pos[order]
    best = pd.Series(ys).groupby(g).cummax().groupby(g).shift(1, fill_value=-np.inf)
    return pos[ys > best.to_numpy()]


def _blocks(shape: tuple[int, ...], points: int):
    """Slices covering ``shape`` in row-major blocks of about ``points`` points."""
    step = [1] * len(shape)
    budget = max(1, points)
    for i in reversed(range(len(shape))):
        step[i] = max(1, min(shape[i], budget))
        budget = max(1, budget // step[i])
    grid = [range(0, n, s) for n, s in zip(shape, step)]
    for starts in np.ndindex(*[len(r) for r in grid]):
        yield tuple(slice(r[k], min(r[k] + s, n)) for r, k, s, n in zip(grid, starts, step, shape))


def _front_points(ds, x, y, over, mask, block_points):
    """(order, shape, flat indices in ``order`` layout) of the frontier points, computed block
    by block: a point beaten inside its block is beaten overall, so each block's frontier
    candidates are kept and merged by one last pass."""
    xv, yv, keep = broadcast_to_points(ds, metric(ds, x), metric(ds, y), feasible_mask(ds, mask))
    dims = list(xv.dims)
    over = over_dims(dims, over)
    groups = [d for d in dims if d not in over]
    order = groups + over
    xv, yv, keep = (a.transpose(*order) for a in (xv, yv, keep))
    shape = tuple(xv.shape)
    per_group = int(np.prod([xv.sizes[d] for d in over], dtype=np.int64))
    found = [np.zeros(0, np.int64)]
    cand_x, cand_y = [np.zeros(0)], [np.zeros(0)]
    for region in _blocks(shape, block_points):
        sel = dict(zip(order, region))
        ok = np.asarray(keep.isel(sel).values, bool)
        xa = np.where(ok, np.asarray(xv.isel(sel).values, np.float64), np.nan).ravel()
        ya = np.where(ok, np.asarray(yv.isel(sel).values, np.float64), np.nan).ravel()
        local = np.unravel_index(np.arange(xa.size), tuple(s.stop - s.start for s in region))
        flat = (
            np.ravel_multi_index(tuple(i + s.start for i, s in zip(local, region)), shape).astype(
                np.int64
            )
            if shape
            else np.zeros(xa.size, np.int64)
        )
        pos = _segment_front(flat // per_group, xa, ya)
        found.append(flat[pos])
        cand_x.append(xa[pos])
        cand_y.append(ya[pos])
    flat, cx, cy = (np.concatenate(a) for a in (found, cand_x, cand_y))
    sort = np.argsort(flat, kind="stable")  # first of identical points in row-major order
    flat, cx, cy = flat[sort], cx[sort], cy[sort]
    return order, shape, flat[_segment_front(flat // per_group, cx, cy)], xv


def pareto_mask(
    ds: xr.Dataset,
    x: str = "utps",
    y: str = "stps",
    over: str | Iterable[str] | None = None,
    mask: str | xr.DataArray | None = "feasible",
    block_points: int = BLOCK_POINTS,
) -> xr.DataArray:
    """Boolean DataArray over the point dims of `ds`: True on the Pareto frontier of (x, y).

    **Arguments:**
    - `x`, `y`: variables to maximise (stored, derivable such as `tokens_per_usd`, or `-name`
      to minimise `name`).
    - `over`: dims the frontier is taken across (None: all); each combination of the other
      dims gets its own frontier.
    - `mask`: only these points compete (default: `feasible` when stored; None: all).
    - `block_points`: points read at a time (memory bound; the result does not depend on it).
    """
    dims = point_dims(ds)
    order, shape, flat, xv = _front_points(ds, x, y, over, mask, block_points)
    front = np.zeros(int(np.prod(shape, dtype=np.int64)), bool)
    front[flat] = True
    out = xr.DataArray(
        front.reshape(shape), dims=order, coords={d: xv[d] for d in order if d in xv.coords}
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
    block_points: int = BLOCK_POINTS,
) -> Table:
    """The frontier points as a tidy table: one row per point with its coordinates, `x`, `y`
    and any extra `columns`, sorted by group then descending `x`. ``df.attrs["units"]`` maps
    columns to units; the table (a ``DataFrame``) prints them in its header.

    **Example:** ``pareto_frontier(ds, "utps", "stps_per_watt", over=["tp", "batch"])``
    """
    order, shape, flat, _ = _front_points(ds, x, y, over, mask, block_points)
    idx = np.unravel_index(flat, shape)
    dims = [d for d in point_dims(ds)]
    idx = tuple(idx[order.index(d)] for d in dims)  # back to the dims order of ds
    table: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for dim, i in zip(dims, idx):
        coord = ds[dim] if dim in ds.coords else xr.DataArray(np.arange(ds.sizes[dim]))
        table[str(dim)] = np.asarray(coord.values)[i]
        units[str(dim)] = coord.attrs.get("units", "")
    points = {d: xr.DataArray(i, dims="point") for d, i in zip(dims, idx)}
    for name in dict.fromkeys([x, y, *columns]):
        da = broadcast_to_points(ds, metric(ds, name))[0]
        table[name] = np.asarray(da.isel(points).values)  # only the frontier points are read
        units[name] = da.attrs.get("units", "")
    over = over_dims(dims, over)
    groups = [str(d) for d in dims if d not in over]
    df = (
        Table(table)
        .sort_values(groups + [x], ascending=[True] * len(groups) + [False], kind="stable")
        .reset_index(drop=True)
    )
    df.attrs["units"] = units
    return df
