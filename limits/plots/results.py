"""One-call figures of a results dataset (matplotlib, no pyplot state: each function builds a
`matplotlib.figure.Figure`, renderable with the Agg backend, and returns it).

Axis labels carry units from the variables' `units`/`long_name` attrs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from limits.analysis._common import (
    broadcast_to_points,
    feasible_mask,
    label,
    metric,
    parameter,
)
from limits.analysis.frontier import pareto_mask
from limits.analysis.open import MISSING_BOUND, bound_labels
from limits.model.outputs import BOUND_LABELS
from limits.plots.figure import figure_and_axes
from limits.units import parse_quantity

__all__ = [
    "roofline",
    "frontier_plot",
    "serving_frontier_plot",
    "bound_map",
    "memory_breakdown",
    "time_breakdown",
    "BOUND_COLORS",
]

#: colour of each binding wall (and of points no job computed)
BOUND_COLORS = {
    "memory": "#1f77b4",
    "compute": "#d62728",
    "sync": "#2ca02c",
    "capacity": "#7f7f7f",
    MISSING_BOUND: "#ffffff",
}


def _log_if_wide(ax: Any, values: np.ndarray, axis: str) -> None:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 10:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _only_dims(da: xr.DataArray, allowed: list[str], what: str) -> xr.DataArray:
    da = da.squeeze(drop=True)
    extra = [d for d in da.dims if d not in allowed]
    if extra:
        raise ValueError(
            f"{what} needs data over {', '.join(allowed)} only; select or reduce "
            f"the other dims first (ds.sel/isel/max): {', '.join(map(str, extra))}"
        )
    return da


def _fmt(value: Any) -> str:
    if isinstance(value, (str, bytes)) or not np.issubdtype(np.asarray(value).dtype, np.number):
        return str(value)
    value = float(value)
    for step, suffix in ((2.0**40, "Ti"), (2.0**30, "Gi"), (2.0**20, "Mi"), (2.0**10, "Ki")):
        if abs(value) >= step and value % (step / 4) == 0:
            return f"{value / step:g} {suffix}"
    return f"{value:.3g}"


def _scalar(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, xr.DataArray):
        unique = np.unique(np.asarray(value.values, dtype=float))
        if unique.size != 1:
            raise ValueError(
                f"{name} varies over the dataset ({unique.size} values): select "
                f"one with ds.sel({name}=...) or pass {name}="
            )
        return float(unique[0])
    return float(value)


def _hardware_value(ds: xr.Dataset, name: str, given: Any) -> float:
    """A per-chip hardware number: given, else what the store records (a coordinate or its
    provenance; preset files are never read, they may have changed since the run)."""
    if given is not None:
        return parse_quantity(given, {"peak_flops": "FLOP/s", "mem_bw": "B/s"}[name], name)
    value = _scalar(parameter(ds, name), name)
    if value is None:
        raise ValueError(
            f"roofline needs the chip's {name}: not swept and not in the store's "
            f"provenance; pass {name}="
        )
    return value


def roofline(
    ds: xr.Dataset,
    *,
    peak_flops: Any = None,
    mem_bw: Any = None,
    mask: str | None = "feasible",
    ax: Any = None,
) -> Figure:
    """Decode roofline of one chip: arithmetic intensity against attained FLOP/s per chip,
    points coloured by the binding wall, with the roof ``min(peak, intensity x bandwidth)``.

    Intensity is `arithmetic_intensity` if stored, else `flops_per_step / bytes_per_step`,
    else ``(t_compute x peak x flops_efficiency) / (t_mem x mem_bw x mem_efficiency)``.
    Attained FLOP/s per chip is `compute_utilization x peak` if stored, else
    `flops_per_step / (step_time x tp)`, else `t_compute x peak x flops_efficiency /
    step_time`. Efficiencies and `tp` come from coordinates or provenance (default 1).
    `peak_flops`/`mem_bw` (per chip) default to the stored/provenance/preset values.
    """
    peak = _hardware_value(ds, "peak_flops", peak_flops)
    bw = _hardware_value(ds, "mem_bw", mem_bw)
    eff_f = parameter(ds, "flops_efficiency", 1.0)
    eff_m = parameter(ds, "mem_efficiency", 1.0)
    tp = parameter(ds, "tp", 1.0)
    have = set(map(str, ds.variables))
    if "arithmetic_intensity" in have:
        intensity = ds["arithmetic_intensity"]
    elif {"flops_per_step", "bytes_per_step"} <= have:
        intensity = ds["flops_per_step"] / ds["bytes_per_step"]
    elif {"t_compute", "t_mem"} <= have:
        intensity = (ds["t_compute"] * peak * eff_f) / (ds["t_mem"] * bw * eff_m)
    else:
        raise ValueError(
            "roofline needs arithmetic_intensity, or flops_per_step and "
            "bytes_per_step, or t_compute and t_mem stored"
        )
    if "compute_utilization" in have:
        attained = ds["compute_utilization"] * peak
    elif {"flops_per_step", "step_time"} <= have:
        attained = ds["flops_per_step"] / (ds["step_time"] * tp)
    elif {"t_compute", "step_time"} <= have:
        attained = ds["t_compute"] * peak * eff_f / ds["step_time"]
    else:
        raise ValueError(
            "roofline needs compute_utilization, or flops_per_step and step_time, "
            "or t_compute and step_time stored to compute attained FLOP/s"
        )
    keep = feasible_mask(ds, mask)
    walls = bound_labels(ds) if "bound" in ds else xr.DataArray("memory")
    intensity, attained, keep, walls = broadcast_to_points(ds, intensity, attained, keep, walls)
    ok = np.asarray(keep.values, bool)
    x, y, w = (np.asarray(a.values)[ok] for a in (intensity, attained, walls))
    fig, ax = figure_and_axes(ax)
    for wall in [b for b in BOUND_LABELS if b in set(w)]:
        ax.scatter(
            x[w == wall], y[w == wall], s=14, color=BOUND_COLORS[wall], label=f"{wall}-bound"
        )
    lo = min(np.nanmin(x) if x.size else 1.0, peak / bw) / 4
    hi = max(np.nanmax(x) if x.size else 1.0, peak / bw) * 4
    grid = np.geomspace(lo, hi, 200)
    ax.plot(grid, np.minimum(peak, grid * bw), color="k", label="roof (peak, bandwidth)")
    ax.axvline(peak / bw, color="k", linestyle=":", label=f"ridge point {peak / bw:.3g} FLOP/B")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity [FLOP/B]")
    ax.set_ylabel("attained FLOP/s per chip [FLOP/s]")
    ax.set_title(f"roofline: peak {peak:.3g} FLOP/s, bandwidth {bw:.3g} B/s per chip")
    ax.legend(fontsize="small")
    return fig


def frontier_plot(
    ds: xr.Dataset,
    x: str = "utps",
    y: str = "stps",
    color_by: str = "chips",
    mask: str | None = "feasible",
    ax: Any = None,
) -> Figure:
    """`y` against `x` for every admissible point, coloured by `color_by` (a numeric variable
    such as `chips`: colour bar; a string coordinate such as `hardware`: legend), with the
    Pareto frontier over all points drawn as a line."""
    xv, yv, keep, cv = broadcast_to_points(
        ds, metric(ds, x), metric(ds, y), feasible_mask(ds, mask), metric(ds, color_by)
    )
    ok = np.asarray(keep.values, bool)
    xs, ys, cs = (np.asarray(a.values)[ok] for a in (xv, yv, cv))
    fig, ax = figure_and_axes(ax)
    if cs.dtype.kind in "OUSTb":
        for value in dict.fromkeys(cs.tolist()):
            pick = cs == value
            ax.scatter(xs[pick], ys[pick], s=14, label=f"{color_by}={value}")
        ax.legend(fontsize="small", title=color_by)
    else:
        cs = cs.astype(float)
        positive = cs[np.isfinite(cs) & (cs > 0)]
        norm = (
            LogNorm(positive.min(), positive.max())
            if positive.size == cs.size and positive.size and positive.max() > 4 * positive.min()
            else Normalize()
        )
        points = ax.scatter(xs, ys, c=cs, s=14, cmap="viridis", norm=norm)
        fig.colorbar(points, ax=ax, label=label(cv, color_by))
    front = np.asarray(pareto_mask(ds, x, y, mask=mask).values, bool)
    fx, fy = np.asarray(xv.values)[front], np.asarray(yv.values)[front]
    order = np.argsort(fx)
    ax.plot(fx[order], fy[order], color="k", drawstyle="steps-post", label="Pareto frontier")
    _log_if_wide(ax, xs, "x")
    _log_if_wide(ax, ys, "y")
    ax.set_xlabel(label(xv, x))
    ax.set_ylabel(label(yv, y))
    return fig


def serving_frontier_plot(ds: xr.Dataset, color_by: str = "tp", ax: Any = None) -> Figure:
    """Output tokens/s/chip against tokens/s/user for every point that fits in memory at its
    serving context, with the Pareto frontier (``limits.analysis.serving_frontier``)."""
    return frontier_plot(
        ds,
        x="output_tps_per_user",
        y="output_tps_per_chip",
        color_by=color_by,
        mask="serving_feasible",
        ax=ax,
    )


def bound_map(ds: xr.Dataset, x: str, y: str, ax: Any = None) -> Figure:
    """Which wall binds over two axes: a categorical map of `bound` (memory, compute, sync,
    capacity) over dims `x` (columns) and `y` (rows), with a legend. Other dims must be
    selected first."""
    walls = _only_dims(bound_labels(ds), [x, y], "bound_map").transpose(y, x)
    names = list(BOUND_LABELS) + [MISSING_BOUND]
    codes = np.vectorize(names.index, otypes=[int])(np.asarray(walls.values))
    fig, ax = figure_and_axes(ax)
    cmap = ListedColormap([BOUND_COLORS[n] for n in names])
    ax.imshow(
        codes,
        origin="lower",
        aspect="auto",
        cmap=cmap,
        norm=BoundaryNorm(np.arange(len(names) + 1) - 0.5, len(names)),
        interpolation="nearest",
    )
    for axis, dim in (("x", x), ("y", y)):
        values = ds[dim].values
        ticks = np.arange(values.size)
        (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks, [_fmt(v) for v in values])
        (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label(ds[dim], dim))
    present = [n for n in names if n in set(np.asarray(walls.values).ravel())]
    ax.legend(
        handles=[Patch(facecolor=BOUND_COLORS[n], edgecolor="k", label=n) for n in present],
        title="binding wall",
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    return fig


def memory_breakdown(
    ds: xr.Dataset, x: str = "context", hue: str = "batch", ax: Any = None
) -> Figure:
    """Memory per replica against `x`: weights (dashed), KV cache per value of `hue` (solid)
    and the memory available (dotted), when stored."""
    missing = [v for v in ("memory_weights", "memory_kv") if v not in ds]
    if missing:
        raise ValueError(f"memory_breakdown needs {', '.join(missing)} stored")
    dims = [x, hue] if hue in ds.dims else [x]
    fig, ax = figure_and_axes(ax)
    kv = _only_dims(broadcast_to_points(ds, ds["memory_kv"])[0], dims, "memory_breakdown")
    hues = ds[hue].values if hue in kv.dims else [None]
    for value in hues:
        line = kv.sel({hue: value}) if value is not None else kv
        ax.plot(
            ds[x].values,
            line.transpose(x).values,
            marker="o",
            label=f"KV cache, {hue}={_fmt(value)}" if value is not None else "KV cache",
        )
    for name, style in (("memory_weights", "--"), ("memory_available", ":")):
        if name not in ds:
            continue
        da = _only_dims(ds[name], dims, "memory_breakdown")
        if hue in da.dims and bool((da == da.isel({hue: 0})).all()):
            da = da.isel({hue: 0}, drop=True)  # the same for every hue value: one line
        per_hue = [da.sel({hue: v}) for v in hues] if hue in da.dims else [da]
        for i, line in enumerate(per_hue):
            values = (
                np.broadcast_to(line.values, ds[x].shape)
                if x not in line.dims
                else line.transpose(x).values
            )
            text = "weights" if name == "memory_weights" else "available"
            ax.plot(
                ds[x].values,
                values,
                color="k",
                linestyle=style,
                label=text + (f", {hue}={_fmt(hues[i])}" if len(per_hue) > 1 else ""),
            )
    _log_if_wide(ax, ds[x].values, "x")
    _log_if_wide(ax, np.concatenate([kv.values.ravel(), ds["memory_weights"].values.ravel()]), "y")
    ax.set_xlabel(label(ds[x], x))
    ax.set_ylabel(f"memory per replica [{ds['memory_kv'].attrs.get('units', 'B')}]")
    ax.legend(fontsize="small")
    return fig


def time_breakdown(ds: xr.Dataset, dim: str, ax: Any = None) -> Figure:
    """Stacked bars of the decode step per value of `dim`: the binding one of `t_mem` /
    `t_compute` (the hidden one drawn as a hatched outline), then `t_sync` and, when stored,
    `t_overhead` and `t_draft`. Bars add up to `step_time`."""
    need = [v for v in ("t_mem", "t_compute", "t_sync") if v not in ds]
    if need:
        raise ValueError(f"time_breakdown needs {', '.join(need)} stored")
    parts = {
        v: _only_dims(broadcast_to_points(ds, ds[v])[0], [dim], "time_breakdown").values
        for v in ("t_mem", "t_compute", "t_sync", "t_overhead", "t_draft")
        if v in ds
    }
    t_mem, t_compute = parts.pop("t_mem"), parts.pop("t_compute")
    memory_binds = t_mem >= t_compute
    stack = {
        "memory (t_mem)": np.where(memory_binds, t_mem, 0.0),
        "compute (t_compute)": np.where(memory_binds, 0.0, t_compute),
        **{f"{k[2:]} ({k})": v for k, v in parts.items()},
    }
    colors = {
        "memory (t_mem)": BOUND_COLORS["memory"],
        "compute (t_compute)": BOUND_COLORS["compute"],
        "sync (t_sync)": BOUND_COLORS["sync"],
        "overhead (t_overhead)": "#9467bd",
        "draft (t_draft)": "#ff7f0e",
    }
    fig, ax = figure_and_axes(ax)
    pos = np.arange(ds.sizes[dim])
    bottom = np.zeros(pos.size)
    for name, height in stack.items():
        ax.bar(pos, height, bottom=bottom, label=name, color=colors.get(name))
        bottom = bottom + height
    ax.bar(
        pos,
        np.minimum(t_mem, t_compute),
        fill=False,
        hatch="//",
        edgecolor="k",
        label="hidden under the roof (min of t_mem, t_compute)",
    )
    ax.set_xticks(pos, [_fmt(v) for v in ds[dim].values])
    ax.set_xlabel(label(ds[dim], dim))
    ax.set_ylabel("time per decode step [s]")
    ax.legend(fontsize="small")
    return fig
