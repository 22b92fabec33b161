"""Plots of sensitivities: a tornado chart at one point, an elasticity heatmap over two axes with
the regions of the binding wall (``bound``) outlined. Figures are made without pyplot (no
backend is switched)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from limits.model.outputs import BOUND_LABELS
from limits.plots.figure import figure_and_axes

__all__ = ["tornado", "elasticity_heatmap"]


def _point_elasticities(source: Any, metric: str, wrt: Sequence[str] | None) -> dict[str, float]:
    key = f"elasticity_{metric}"
    if isinstance(source, (xr.Dataset, xr.DataArray)):
        da = source[key] if isinstance(source, xr.Dataset) else source
        da = da.squeeze(drop=True)
        if da.dims != ("wrt",):
            raise ValueError(
                f"tornado: {key} must have the single dimension 'wrt' at one point; "
                f"it has {da.dims} (select one point first, e.g. ds.sel(...))"
            )
        return {str(k): float(v) for k, v in zip(da["wrt"].values, da.values)}
    if key in source:
        if wrt is None:
            raise ValueError(
                "tornado: pass wrt= (the names along the last axis of "
                f"{key}) with the output of elasticities()"
            )
        values = np.asarray(source[key]).reshape(-1, len(wrt))
        if values.shape[0] != 1:
            raise ValueError(f"tornado: {key} holds {values.shape[0]} points; give one point")
        return dict(zip(wrt, map(float, values[0])))
    return {str(k): float(v) for k, v in source.items()}


def tornado(source: Any, metric: str, ax=None, *, wrt: Sequence[str] | None = None):
    """Horizontal bars of the elasticities of ``metric`` at one point, largest on top.

    **Arguments:** ``source``: a Dataset (or DataArray) selected to one point with
    ``elasticity_<metric>`` along ``wrt``; or the dict returned by ``elasticities`` (with
    ``wrt=``); or a plain mapping parameter -> elasticity.

    **Returns:** the ``Axes``.
    """
    values = _point_elasticities(source, metric, wrt)
    order = sorted(values, key=lambda k: abs(values[k]))
    _, ax = figure_and_axes(ax, 6, 0.4 * len(order) + 1.2)
    e = np.array([values[k] for k in order])
    ax.barh(order, e, color=np.where(e >= 0, "tab:blue", "tab:red"))
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"elasticity of {metric}  (d ln {metric} / d ln x)")
    ax.set_title(f"{metric}: +1 % of x gives E % of {metric}")
    return ax


def _log_axis(coord: np.ndarray) -> bool:
    """Log scale for a positive axis spanning a decade or more (sweep axes are mostly
    geometric: 1 us ... 10 us, 4 ... 64 TiB/s)."""
    finite = coord[np.isfinite(coord)]
    return finite.size > 1 and (finite > 0).all() and finite.max() / finite.min() >= 10


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres: geometric midpoints on a log axis (so cells do not
    cross zero), arithmetic ones otherwise; a single value gets a cell of +-50 %."""
    if centres.size == 1:
        return np.array([centres[0] * 0.5, centres[0] * 1.5])
    t = np.log(centres) if _log_axis(centres) else centres
    mid = (t[1:] + t[:-1]) / 2.0
    edges = np.concatenate([[2.0 * t[0] - mid[0]], mid, [2.0 * t[-1] - mid[-1]]])
    return np.exp(edges) if _log_axis(centres) else edges


#: SI unit -> (factor, unit shown) for axis labels people read (binary for bytes, as the presets)
_SHOWN_UNITS = {
    "B/s": (2.0**40, "TiB/s"),
    "B": (2.0**30, "GiB"),
    "FLOP/s": (1e12, "TFLOP/s"),
    "W": (1e3, "kW"),
}
_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))


def _shown(ds: xr.Dataset, dim: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """An axis in the units a reader uses (``TiB/s``, ``us``) and its label."""
    units = str(ds[dim].attrs.get("units", "")) if dim in ds.coords else ""
    factor, shown = _SHOWN_UNITS.get(units, (1.0, units))
    finite = np.abs(values[np.isfinite(values)])
    if units == "s" and finite.size:
        factor, shown = next(((f, u) for f, u in _TIME_UNITS if finite.max() >= f), _TIME_UNITS[-1])
    label = f"{dim} [{shown}]" if shown not in ("", "1") else dim
    return values / factor, label


def elasticity_heatmap(ds: xr.Dataset, metric: str, wrt: str, x: str, y: str, ax=None):
    """Heatmap of the elasticity of ``metric`` w.r.t. ``wrt`` over dims ``x`` and ``y``, with
    the boundaries between ``bound`` regions (memory/compute/sync/capacity) drawn as contours.

    All other dims of ``ds`` must already be selected away. **Returns:** the ``Axes``.
    """
    da = ds[f"elasticity_{metric}"].sel(wrt=wrt, drop=True).squeeze(drop=True)
    if set(da.dims) != {x, y}:
        raise ValueError(
            f"elasticity_heatmap: after selecting wrt={wrt!r}, elasticity_{metric} "
            f"has dims {da.dims}; select all but {x!r} and {y!r} first"
        )
    da = da.transpose(y, x)
    xs, x_label = _shown(ds, x, np.asarray(da[x].values, dtype=float))
    ys, y_label = _shown(ds, y, np.asarray(da[y].values, dtype=float))
    _, ax = figure_and_axes(ax, 6.5, 4.5)
    limit = float(np.nanmax(np.abs(da.values))) if np.isfinite(da.values).any() else 1.0
    limit = limit or 1.0
    mesh = ax.pcolormesh(
        _edges(xs), _edges(ys), da.values, cmap="RdBu_r", vmin=-limit, vmax=limit, shading="flat"
    )
    ax.figure.colorbar(mesh, ax=ax, label=f"elasticity of {metric} w.r.t. {wrt}")
    if "bound" in ds:
        bound = ds["bound"].squeeze(drop=True).transpose(y, x).values.astype(float)
        present = np.unique(bound)
        if present.size > 1:  # contour the rank of each present code: one line per boundary
            # between neighbouring ranks (codes 0 and 2 would otherwise cross levels 0.5, 1.5)
            ax.contour(
                xs,
                ys,
                np.searchsorted(present, bound).astype(float),
                levels=np.arange(present.size - 1) + 0.5,
                colors="black",
                linewidths=1.2,
            )
        for code in present.astype(int):
            rows, cols = np.nonzero(bound == code)
            ax.text(
                xs[int(np.median(cols))],
                ys[int(np.median(rows))],
                BOUND_LABELS[code],
                ha="center",
                va="center",
                fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.6, "linewidth": 0},
            )
    if _log_axis(xs):
        ax.set_xscale("log")
    if _log_axis(ys):
        ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(f"d ln {metric} / d ln {wrt}; lines: boundaries of the binding wall")
    return ax
