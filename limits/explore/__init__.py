"""A browser explorer of a results store: ``python -m limits.explore STORE`` serves a local
page (a Bokeh server) with a slider per grid axis, the Pareto chart of the points on the chosen
axes, the bound map and hover details (docs/explore.md).

Only the slice on screen is read: the axes left free (by default the configuration axes ``tp``
and ``batch``, else the last two) span the chart, every other axis is fixed by its slider, and
each move reads that slice of the lazily opened store, so a 1e8-point store stays fluid as long
as the free axes hold at most ``MAX_POINTS`` points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from limits.analysis import bound_labels, non_dominated, open_results
from limits.analysis._common import metric, point_dims
from limits.errors import ParameterError
from limits.model.outputs import BOUND_LABELS

__all__ = ["MAX_POINTS", "BOUND_COLOURS", "default_free", "slice_points", "make_document"]

#: points drawn at once (the product of the free axes' lengths)
MAX_POINTS = 200_000
#: one colour per binding wall (and points no job computed)
BOUND_COLOURS = {
    "memory": "#1f77b4",
    "compute": "#d62728",
    "sync": "#2ca02c",
    "capacity": "#7f7f7f",
    "n/a": "#dddddd",
}
_PREFERRED_FREE = ("tp", "batch")
_HOVER = ("ttft", "tbt", "step_time", "memory_required", "chips")


def default_free(ds: xr.Dataset) -> list[str]:
    """Axes drawn as points by default: ``tp`` and ``batch`` when present, else the last two."""
    dims = [d for d in point_dims(ds) if ds.sizes[d] > 1]
    free = [d for d in _PREFERRED_FREE if d in dims]
    return free if free else dims[-2:]


def slice_points(
    ds: xr.Dataset, free: Sequence[str], fixed: dict[str, int], x: str, y: str
) -> dict[str, np.ndarray]:
    """The columns of the chart for one slider setting: the coordinates of the free axes,
    `x`, `y`, the bound label and colour, the hover variables and the frontier mask, for the
    slice ``ds.isel(fixed)`` (computed: only this slice is read)."""
    dims = point_dims(ds)
    unknown = [d for d in free if d not in dims]
    if unknown:
        raise ParameterError(f"free axes {unknown} are not axes of the store; axes: {dims}")
    size = int(np.prod([ds.sizes[d] for d in free])) if free else 1
    if size > MAX_POINTS:
        raise ParameterError(
            f"the free axes {list(free)} hold {size:,} points; at most {MAX_POINTS:,} are "
            "drawn: fix one with its slider"
        )
    sub = ds.isel({d: i for d, i in fixed.items() if d not in free})
    names = [x, y, *(n for n in _HOVER if n not in (x, y))]
    arrays = {}
    for name in names:
        try:
            da = metric(sub, name)
        except KeyError:
            continue
        arrays[name] = da
    if "bound" in sub:
        arrays["bound_label"] = bound_labels(sub)
    if "feasible" in sub:
        arrays["feasible"] = sub["feasible"]
    coords = [sub[d] for d in free]
    flat = xr.broadcast(*arrays.values(), *coords)
    keys = list(arrays) + list(free)
    out = {k: np.asarray(v.transpose(*free, ...).values).reshape(-1) for k, v in zip(keys, flat)}
    ok = out.pop("feasible").astype(bool) if "feasible" in out else np.ones(size, bool)
    xs = np.where(ok, out[x].astype(np.float64), np.nan)
    ys = np.where(ok, out[y].astype(np.float64), np.nan)
    out["pareto"] = non_dominated(xs, ys)
    labels = out.get("bound_label", np.full(size, "n/a", dtype=object))
    out["bound_label"] = np.asarray(labels, dtype=object)
    out["colour"] = np.array([BOUND_COLOURS.get(str(b), "#000000") for b in labels], dtype=object)
    for d in free:
        out[f"{d}_index"] = np.asarray(
            xr.broadcast(*[xr.DataArray(np.arange(sub.sizes[f]), dims=f) for f in free])[
                list(free).index(d)
            ]
            .transpose(*free)
            .values
        ).reshape(-1)
    return out


def _value_text(ds: xr.Dataset, dim: str, i: int) -> str:
    from limits.query import fmt

    value = ds[dim].values[i] if dim in ds.coords else i
    units = str(ds[dim].attrs.get("units", "")) if dim in ds.coords else ""
    if isinstance(value, float | np.floating):
        return f"{dim} = {fmt(value, units)}"
    return f"{dim} = {value}"


def _ticks(ds: xr.Dataset, dim: str) -> dict[int, str]:
    """Index -> value labels of an axis (the bound map draws cells at indices)."""
    values = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
    return {
        i: (f"{v:g}" if isinstance(v, float | np.floating) else str(v))
        for i, v in enumerate(values)
    }


def make_document(doc: Any, path: str, x: str = "utps", y: str = "stps") -> None:
    """Fill a Bokeh document with the explorer of the store at `path` (lazily opened)."""
    from bokeh.layouts import column, row
    from bokeh.models import (  # type: ignore[attr-defined]  # bokeh re-exports lazily
        CheckboxGroup,
        ColumnDataSource,
        Div,
        FixedTicker,
        HoverTool,
        Slider,
    )
    from bokeh.plotting import figure

    ds = open_results(path)
    dims = [d for d in point_dims(ds) if ds.sizes[d] > 1]
    free = default_free(ds)
    fixed = {d: 0 for d in dims}
    xa, ya = metric(ds, x), metric(ds, y)
    sliders = {}
    for d in dims:
        s = Slider(
            start=0,
            end=ds.sizes[d] - 1,
            value=0,
            step=1,
            title=_value_text(ds, d, 0),
            name=f"slider_{d}",
            disabled=d in free,
            show_value=False,
            sizing_mode="stretch_width",
        )
        sliders[d] = s
    chooser = CheckboxGroup(
        labels=dims, active=[dims.index(d) for d in free], name="free_axes", inline=True
    )
    status = Div(name="status")
    source = ColumnDataSource(slice_points(ds, free, fixed, x, y), name="points")
    front = ColumnDataSource({"x": [], "y": []}, name="frontier")

    def axis_label(da: xr.DataArray, name: str) -> str:
        units = da.attrs.get("units", "")
        return f"{name} [{units}]" if units not in ("", "1") else name

    chart = figure(
        title="Pareto chart (colour: binding wall)",
        x_axis_label=axis_label(xa, x),
        y_axis_label=axis_label(ya, y),
        x_axis_type="log",
        y_axis_type="log",
        height=420,
        width=560,
        name="pareto_chart",
    )
    dots = chart.scatter(
        x, y, source=source, color="colour", size=7, legend_field="bound_label", name="dots"
    )
    chart.line("x", "y", source=front, color="black", line_width=2)
    chart.legend.location = "bottom_left"
    hover_vars = [n for n in (x, y, *_HOVER) if n in source.data]
    chart.add_tools(
        HoverTool(
            renderers=[dots],
            tooltips=[(d, f"@{{{d}}}") for d in free]
            + [(n, f"@{{{n}}}{{0.[000]e}}") for n in hover_vars]
            + [("bound", "@bound_label")],
        )
    )
    bound_map = figure(title="bound map", height=420, width=460, name="bound_map")
    cells = bound_map.rect(
        "x_index", "y_index", 1, 1, source=source, color="colour", line_color=None
    )
    bound_map.add_tools(
        HoverTool(
            renderers=[cells],
            tooltips=[(d, f"@{{{d}}}") for d in free] + [("bound", "@bound_label")],
        )
    )

    def refresh() -> None:
        data = slice_points(ds, free, fixed, x, y)
        two = len(free) == 2
        n = len(data[x])
        data["x_index"] = data[f"{free[-1]}_index"] if free else np.zeros(n)
        data["y_index"] = data[f"{free[0]}_index"] if two else np.zeros(n)
        source.data = data
        on = np.asarray(data["pareto"], bool)
        order = np.argsort(np.asarray(data[x], np.float64)[on])
        front.data = {
            "x": np.asarray(data[x], np.float64)[on][order],
            "y": np.asarray(data[y], np.float64)[on][order],
        }
        for axis, dim in (
            (bound_map.xaxis, free[-1] if free else None),
            (bound_map.yaxis, free[0] if two else None),
        ):
            labels = _ticks(ds, dim) if dim else {}
            axis.ticker = FixedTicker(ticks=list(labels))
            axis.major_label_overrides = dict(labels)  # type: ignore[assignment,arg-type]
            units = ds[dim].attrs.get("units", "") if dim and dim in ds.coords else ""
            axis.axis_label = (dim or "") + (f" [{units}]" if units not in ("", "1") else "")
        for d, s in sliders.items():
            s.title = f"{d}: drawn as points" if d in free else _value_text(ds, d, fixed[d])
        shown = ", ".join(_value_text(ds, d, fixed[d]) for d in dims if d not in free)
        walls = {b: int(np.sum(data["bound_label"] == b)) for b in (*BOUND_LABELS, "n/a")}
        status.text = (
            f"<b>{n:,}</b> points over {' x '.join(free) or 'no axis'}; "
            f"<b>{int(on.sum())}</b> on the frontier; at {shown or 'the only point'}; "
            + ", ".join(f"{b}: {k}" for b, k in walls.items() if k)
        )

    def on_slide(dim: str) -> Any:
        def callback(attr: str, old: Any, new: Any) -> None:
            fixed[dim] = int(new)
            sliders[dim].title = _value_text(ds, dim, int(new))
            refresh()

        return callback

    def on_free(attr: str, old: Any, new: Any) -> None:
        chosen = [dims[i] for i in sorted(new)]
        size = int(np.prod([ds.sizes[d] for d in chosen])) if chosen else 1
        if size > MAX_POINTS:
            status.text = f"{size:,} points on {chosen}: too many (at most {MAX_POINTS:,})"
            return
        free[:] = chosen
        for d, s in sliders.items():
            s.disabled = d in free
        refresh()

    for d, s in sliders.items():
        s.on_change("value_throttled", on_slide(d))
    chooser.on_change("active", on_free)
    refresh()
    title = Div(text=f"<h3>limits explorer: {path}</h3>")
    doc.add_root(
        column(
            title,
            Div(text="axes drawn as points:"),
            chooser,
            *sliders.values(),
            status,
            row(chart, bound_map),
            sizing_mode="stretch_width",
        )
    )
    doc.title = "limits explorer"
