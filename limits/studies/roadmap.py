"""The hardware roadmap study: what memory bandwidth, sync latency and chips buy in decode speed
per user, compared with the LIMINAL paper's roadmap statements (arXiv 2507.14397;
docs/references.md s.1).

``python -m limits.studies.roadmap STORE_OR_MULTIRUN_DIR --out docs/roadmap.md`` reads the study
store (normally the consolidated multirun of ``sweeps/roadmap.yaml``: dims ``hardware``, ``model``,
``mem_bw``, ``sync_latency``, ``tp``, ``context``, ``batch``, elasticities along ``wrt``), solves
the inverse-design questions (``limits.autodiff.inverse``) on the store's own grid and settings
(rebuilt from its provenance, ``limits.studies.common.job_params``) and writes a markdown document
plus PNG figures ``roadmap_*.png`` (in ``<out dir>/figures`` unless ``--figures`` says otherwise).
The only constants are the paper's published values (``limits.studies.paper.PAPER``) and the
choice of the representative deployment (``REPRESENTATIVE``), both quoted for comparison.

From Python: ``solve(ds, model, target_utps)`` (inverse design over the grid),
``findings(ds)``, ``make_figures(ds, dir)``, ``write_roadmap(path, out)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limits.autodiff.inverse import REASON_LABELS, max_sync_latency, min_chips, min_mem_bw
from limits.model.params import Hardware
from limits.model.sync import leaves_node
from limits.studies.common import (
    Finding,
    at,
    ctx_label,
    document_cli,
    feasible,
    finding_lines,
    fmt_coords,
    grid_lines,
    grid_params,
    job_params,
    new_figure,
    normalise,
    save_figures,
    write_document,
)
from limits.studies.paper import BASE_HW, BIG_MODEL, PAPER

__all__ = [
    "REPRESENTATIVE",
    "TARGETS",
    "RoadmapFinding",
    "FINDINGS",
    "FIGURES",
    "solve",
    "findings",
    "make_figures",
    "render",
    "write_roadmap",
    "main",
]

#: the deployment the curves, tornado and heatmaps use: the paper's golden setting (TP32,
#: batch 1, 4K context) at its 2.25 us scale-out all-reduce latency
REPRESENTATIVE = {
    "tp": PAPER["golden_tp"],
    "batch": 1,
    "context": 4096,
    "sync_latency": PAPER["scale_out_sync_s"],
}
#: per-user rates [tok/s/user] the paper names as roadmap goals
TARGETS = (PAPER["fast_sync_utps"], PAPER["extreme_utps"])
TIB = 2.0**40  # B/s per TiB/s
US = 1e-6  # s per us


@dataclasses.dataclass
class RoadmapFinding(Finding):
    """A ``Finding`` with a one-line ``headline`` (for the summary table) and optional
    markdown ``table`` lines shown under it."""

    headline: str = ""
    table: list[str] = dataclasses.field(default_factory=list)


# --------------------------------------------------------------------------- store access


def _hardware(ds: xr.Dataset) -> str:
    names = ds["hardware"].values.tolist()
    return BASE_HW if BASE_HW in names else names[0]


def _view(ds: xr.Dataset, model: str) -> xr.Dataset:
    """One model's slice of the study (on the HBM3 part, or the store's first part)."""
    return ds.sel(hardware=_hardware(ds), model=model)


def _models(ds: xr.Dataset) -> list[str]:
    return ds["model"].values.tolist()


def _scale_out(sub: xr.Dataset, hardware: Hardware) -> xr.Dataset:
    """Points whose tensor-parallel collectives leave the server (they use ``sync_latency``)."""
    return sub.sel(tp=[t for t in sub["tp"].values if leaves_node(hardware, float(t))])


def _on(sub: xr.Dataset, dims: list[str], values: Any, units: str, long_name: str):
    shape = tuple(sub.sizes[d] for d in dims)
    return xr.DataArray(
        np.broadcast_to(np.asarray(values), shape),
        dims=dims,
        coords={d: sub[d] for d in dims},
        attrs={"units": units, "long_name": long_name},
    )


_JITTED: dict[str, Callable] = {}


def _jitted(name: str) -> Callable:
    """The inverse-design function ``name``, jitted once with the target as a traced argument:
    one XLA compile per model (the op-by-op path takes ~10x longer here; a target baked in as
    a constant made one compile take minutes through constant folding)."""
    import jax

    if name not in _JITTED:
        fn = {
            "max_sync_latency": max_sync_latency,
            "min_mem_bw": min_mem_bw,
            "min_chips": min_chips,
        }[name]
        _JITTED[name] = jax.jit(fn, static_argnames=("candidates",) if name == "min_chips" else ())
    return _JITTED[name]


def solve(ds: xr.Dataset, model: str, target_utps: float) -> xr.Dataset:
    """Inverse design for ``model`` over the store's grid at ``target_utps`` [tok/s/user]:

    - ``sync_latency_max`` [s]: the largest latency of the tensor-parallel group's
      collectives (``sync_latency``; in-node ``sync_latency_intra_node`` at ``tp <= node_size``)
      that reaches the target, per (mem_bw, tp, context, batch);
    - ``mem_bw_min`` [B/s]: the least bandwidth per chip, per (sync_latency, tp, context, batch);
    - ``tp_min`` / ``utps_at_tp_min``: the fewest chips among the store's ``tp`` values, per
      (mem_bw, sync_latency, context, batch);

    each with a ``*_reason`` (index into ``limits.autodiff.inverse.REASON_LABELS``); NaN where
    unreachable. Parameters come from the store's provenance (``job_params``)."""
    sub = _view(ds, model)
    base = job_params(ds, _hardware(ds), model)
    tps = tuple(float(t) for t in sub["tp"].values)
    target = float(target_utps)
    out = {}
    p, dims = grid_params(base, sub["utps"], skip=("sync_latency",))
    r = _jitted("max_sync_latency")(p, target)
    out["sync_latency_max"] = _on(
        sub, dims, r["sync_latency_max"], "s", "largest collective latency reaching the target"
    )
    out["sync_latency_reason"] = _on(sub, dims, r["reason"], "1", "why not (REASON_LABELS)")
    p, dims = grid_params(base, sub["utps"], skip=("mem_bw",))
    r = _jitted("min_mem_bw")(p, target)
    out["mem_bw_min"] = _on(sub, dims, r["mem_bw"], "B/s", "least bandwidth per chip")
    out["mem_bw_reason"] = _on(sub, dims, r["reason"], "1", "why not (REASON_LABELS)")
    p, dims = grid_params(base, sub["utps"], skip=("tp",))
    r = _jitted("min_chips")(p, target, candidates=tps)
    out["tp_min"] = _on(sub, dims, r["tp"], "1", "fewest chips (tp) among the swept tp")
    out["utps_at_tp_min"] = _on(sub, dims, r["utps"], "tok/s/user", "utps at tp_min")
    out["tp_reason"] = _on(sub, dims, r["reason"], "1", "why not (REASON_LABELS)")
    return xr.Dataset(out, attrs={"target_utps": float(target_utps), "model": model})


# --------------------------------------------------------------------------- formatting


def _us(seconds: float) -> str:
    return f"{seconds / US:.3g} us"


def _tib(bw: float) -> str:
    v = bw / TIB
    return f"{v:,.0f} TiB/s" if v >= 100 else f"{v:.3g} TiB/s"


def _why(reasons: xr.DataArray) -> str:
    """``unreachable (memory at TP8-32, sync at TP64)``: the reasons along ``tp``."""
    groups: dict[str, list[str]] = {}
    for tp, code in zip(reasons["tp"].values, np.asarray(reasons.values).ravel()):
        groups.setdefault(REASON_LABELS[int(code)], []).append(f"{float(tp):g}")
    parts = [f"{label} at TP{'/'.join(tps)}" for label, tps in groups.items()]
    return "unreachable (" + ", ".join(parts) + ")"


def _best_over_tp(
    values: xr.DataArray, reasons: xr.DataArray, fmt: Callable[[float], str], largest: bool
) -> tuple[float, float, str]:
    """The best value along ``tp`` (largest or smallest), the tp it needs and its text."""
    v = np.asarray(values.values, float)
    if not np.isfinite(v).any():
        return float("nan"), float("nan"), _why(reasons)
    i = int(np.nanargmax(v) if largest else np.nanargmin(v))
    tp = float(values["tp"].values[i])
    text = fmt(v[i]) if np.isinf(v[i]) else f"{fmt(v[i])} (TP{tp:g})"
    return float(v[i]), tp, text


def _chips_text(tp: xr.DataArray, utps: xr.DataArray, reason: xr.DataArray) -> tuple[float, str]:
    t = float(tp)
    if np.isfinite(t):
        return t, f"TP{t:g} ({float(utps):,.0f} tok/s/user)"
    return t, f"unreachable ({REASON_LABELS[int(reason)]})"


# --------------------------------------------------------------------------- the findings


def _not_covered(key: str, title: str, paper: str, what: str) -> RoadmapFinding:
    return RoadmapFinding(
        key,
        title,
        paper,
        f"The store does not cover {what}.",
        "not covered",
        headline="not covered",
    )


def _rep(sub: xr.Dataset, **extra: Any) -> xr.Dataset | None:
    """The representative point (``REPRESENTATIVE``, updated by ``extra``) of one model's
    slice; ``sync=False`` keeps the whole sync latency axis."""
    coords = {**REPRESENTATIVE, **extra}
    if not coords.pop("sync", True):
        coords.pop("sync_latency")
    return at(sub, **coords)


def _arg(da: xr.DataArray, pick: Callable) -> dict[str, Any]:
    """Coordinates of the element ``pick`` (``np.nanargmax``/``np.nanargmin``) selects."""
    index = np.unravel_index(int(pick(np.asarray(da.values, float))), da.shape)
    return {d: float(da[d].values[i]) for d, i in zip(da.dims, index)}


def _compute_wall(rep: xr.Dataset) -> float:
    """Lowest bandwidth [B/s] from which ``t_compute >= t_mem`` at every sync latency of the
    representative slice ``rep`` (E(utps, mem_bw) is exactly 0 there); NaN if none."""
    wall = (rep["t_compute"] >= rep["t_mem"]).all("sync_latency").values
    above = [i for i in range(wall.size) if wall[i:].all()]
    return float(rep["mem_bw"].values[above[0]]) if above else float("nan")


def _bandwidth(ds: xr.Dataset) -> RoadmapFinding:
    factor = PAPER["bandwidth_factor"]
    lo, hi = PAPER["bandwidth_gain"]
    paper_sync = PAPER["scale_out_sync_s"]
    title = "Bandwidth gains saturate as sync dominates"
    paper = (
        f"Raising bandwidth {factor}x buys only about {lo}-{hi}x UTPS because exposed "
        f"sync takes over."
    )
    bw = ds["mem_bw"].values.astype(float)
    b0, b8 = bw.min(), bw.min() * factor
    if not np.isclose(bw, b8, rtol=1e-6).any() or "sync_latency" not in ds.dims:
        return _not_covered("bandwidth", title, paper, f"a bandwidth {factor}x the lowest one")
    rep = REPRESENTATIVE
    numbers: dict[str, float] = {}
    parts, heads, at_paper = [], [], []
    for m in _models(ds):
        sub = _view(ds, m)
        hardware = job_params(ds, _hardware(ds), m).hardware
        lo_pt, hi_pt = at(sub, mem_bw=b0), at(sub, mem_bw=b8)
        gain = (hi_pt["utps"] / lo_pt["utps"]).where(feasible(lo_pt) & feasible(hi_pt))
        numbers[f"{m}_gain_min"], numbers[f"{m}_gain_max"] = float(gain.min()), float(gain.max())
        text = f"{m}: {float(gain.min()):.2f}-{float(gain.max()):.2f}x over the whole grid"
        g = at(_scale_out(gain.to_dataset(name="g"), hardware), sync_latency=paper_sync)
        if g is not None:
            g = g["g"]
            numbers[f"{m}_gain_paper_sync_min"] = float(g.min())
            numbers[f"{m}_gain_paper_sync_max"] = float(g.max())
            at_paper.append((m, g))
            text += (
                f", {float(g.min()):.2f}-{float(g.max()):.2f}x at the paper's "
                f"{_us(paper_sync)} on scale-out TP ("
                + ", ".join(
                    f"TP{float(t):g} {float(g.sel(tp=t).min()):.2f}-{float(g.sel(tp=t).max()):.2f}x"
                    for t in g["tp"].values
                )
                + ")"
            )
        one = _rep(sub, sync=False)
        if one is not None and "elasticity_utps" in one:
            e8 = one["elasticity_utps"].sel(wrt="mem_bw").sel(mem_bw=at(one, mem_bw=b8)["mem_bw"])
            cells = []
            for s in _sync_picks(one):
                v = float(at(e8.to_dataset(name="e"), sync_latency=s)["e"])
                numbers[f"{m}_elasticity_8x_{s / US:g}us"] = v
                cells.append(f"{v:.2f} at {_us(s)}")
            wall = _compute_wall(one)
            numbers[f"{m}_compute_wall_Bps"] = wall
            text += (
                f"; at TP{rep['tp']:g}, batch {rep['batch']:g}, {ctx_label(rep['context'])} "
                f"and {_tib(b8)}, E(utps, mem_bw) = " + ", ".join(cells)
            )
            if np.isfinite(wall):
                flops = float(job_params(ds, _hardware(ds), m).hardware.peak_flops)
                text += (
                    f"; from {_tib(wall)} on, t_compute >= t_mem at this point (the chip's "
                    f"{flops / 1e15:g} PFLOP/s is kept) and E(utps, mem_bw) is exactly 0"
                )
            heads.append(
                f"{m} E(utps, mem_bw) at {_tib(b8)}: {cells[0].split(' at ')[0]} "
                f"({_us(min(_sync_picks(one)))}) -> {cells[-1].split(' at ')[0]} "
                f"({_us(max(_sync_picks(one)))})"
            )
        parts.append(text)
    ours = (
        f"UTPS gain from {_tib(b0)} to {_tib(b8)} ({factor}x bandwidth per chip), feasible "
        f"points: " + "; ".join(parts) + "."
    )
    overall = (
        min(numbers[f"{m}_gain_min"] for m in _models(ds)),
        max(numbers[f"{m}_gain_max"] for m in _models(ds)),
    )
    numbers["gain_min"], numbers["gain_max"] = overall
    headline = f"{factor}x bandwidth: {overall[0]:.2f}-{overall[1]:.2f}x UTPS over the grid"
    verdict = "partly" if overall[1] < factor else "differs"
    if at_paper:
        p_lo = min(float(g.min()) for _, g in at_paper)
        p_hi = max(float(g.max()) for _, g in at_paper)
        numbers["gain_paper_sync_min"], numbers["gain_paper_sync_max"] = p_lo, p_hi
        headline = (
            f"{factor}x bandwidth: {p_lo:.2f}-{p_hi:.2f}x UTPS at {_us(paper_sync)} "
            f"(scale-out TP), " + headline.split(": ", 1)[1]
        )
        if p_lo >= lo * 0.9 and p_hi <= hi * 1.1:
            verdict = "agrees"
        else:
            over = [
                f"{m} TP{float(t):g}"
                for m, g in at_paper
                for t in g["tp"].values
                if float(g.sel(tp=t).max()) > hi * 1.1
            ]
            ours += (
                f" At the paper's {_us(paper_sync)} the gains span {p_lo:.2f}-{p_hi:.2f}x"
                + (
                    f"; above its {hi}x only on {', '.join(over)}, where fewer chips leave "
                    f"more memory time per step to cut"
                    if over
                    else ""
                )
                + "."
            )
        if p_lo < lo * 0.9:
            ours += f" The smallest gains are below the paper's {lo}x."
    for m in _models(ds):
        gain = _view(ds, m)
        gain = (at(gain, mem_bw=b8)["utps"] / at(gain, mem_bw=b0)["utps"]).where(
            feasible(at(gain, mem_bw=b0)) & feasible(at(gain, mem_bw=b8))
        )
        ours += (
            f" {m}: largest gain {float(gain.max()):.2f}x at "
            f"{fmt_coords(_arg(gain, np.nanargmax))}, smallest {float(gain.min()):.2f}x at "
            f"{fmt_coords(_arg(gain, np.nanargmin))}."
        )
    headline += "; " + "; ".join(heads)
    return RoadmapFinding(
        "bandwidth", title, paper, ours, verdict, numbers, "roadmap_bandwidth.png", headline
    )


def _target_rows(ds: xr.Dataset, target: float, numbers: dict[str, float]) -> list[str]:
    """Markdown rows: per model and context (batch 1), what reaching ``target`` takes."""
    bw = ds["mem_bw"].values.astype(float)
    sync = ds["sync_latency"].values.astype(float)
    columns = {
        "lat_lo": f"largest sync latency at {_tib(bw.min())}",
        "lat_8x": f"at {_tib(bw.min() * PAPER['bandwidth_factor'])}",
        "lat_hi": f"at {_tib(bw.max())}",
        "bw_1us": "least bandwidth at 1 us",
        "bw_fast": f"at {_us(sync.min())}",
        "chips": f"fewest chips at {_tib(bw.max())}, {_us(sync.min())}",
    }
    rows = [
        "| model | context | " + " | ".join(columns.values()) + " |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for m in _models(ds):
        sol = solve(ds, m, target)
        for c in ds["context"].values:
            one = at(sol, context=c, batch=1)
            if one is None:
                continue
            key = f"{m}_{ctx_label(c)}"
            cells = {}
            for name, b in (
                ("lat_lo", bw.min()),
                ("lat_8x", bw.min() * PAPER["bandwidth_factor"]),
                ("lat_hi", bw.max()),
            ):
                pt = at(one, mem_bw=b)
                if pt is None:
                    cells[name] = "-"
                    continue
                v, tp, cells[name] = _best_over_tp(
                    pt["sync_latency_max"], pt["sync_latency_reason"], _us, largest=True
                )
                numbers[f"{key}_{name}_s"], numbers[f"{key}_{name}_tp"] = v, tp
            for name, s in (("bw_1us", 1e-6), ("bw_fast", sync.min())):
                pt = at(one, sync_latency=s)
                if pt is None:
                    cells[name] = "-"
                    continue
                v, tp, cells[name] = _best_over_tp(
                    pt["mem_bw_min"], pt["mem_bw_reason"], _tib, largest=False
                )
                numbers[f"{key}_{name}_Bps"], numbers[f"{key}_{name}_tp"] = v, tp
            pt = at(one, mem_bw=bw.max(), sync_latency=sync.min())
            numbers[f"{key}_chips_tp"], cells["chips"] = _chips_text(
                pt["tp_min"], pt["utps_at_tp_min"], pt["tp_reason"]
            )
            rows.append(f"| {m} | {ctx_label(c)} | " + " | ".join(cells[k] for k in columns) + " |")
    return rows


def _need_ok(ds: xr.Dataset) -> bool:
    return (
        all(d in ds.dims for d in ("mem_bw", "sync_latency", "tp")) and at(ds, batch=1) is not None
    )


def _gb_per_step(ds: xr.Dataset, model: str) -> str:
    """``" and reads 405 GB per step"`` at the representative point (empty if not stored)."""
    pt = _rep(_view(ds, model), mem_bw=float(ds["mem_bw"].min()))
    if pt is None or "bytes_per_step" not in pt:
        return ""
    return f" and reads {float(pt['bytes_per_step']) / 1e9:.0f} GB per step"


def layers_of(ds: xr.Dataset, model: str) -> str:
    """``126 layers x 2`` : the collectives per step of ``model`` (text)."""
    p = job_params(ds, _hardware(ds), model)
    return f"{int(p.model.n_layers)} layers x {float(p.calibration.collectives_per_layer):g}"


def _sync_needed(ds: xr.Dataset) -> RoadmapFinding:
    target = PAPER["fast_sync_utps"]
    need = PAPER["sync_needed_s"]
    title = f"About {_us(need)} of sync is needed for {target:,}+ tokens/s per user"
    paper = (
        f"{target:,}+ UTPS is reachable with fast sync; about {_us(need)} per collective is needed."
    )
    if not _need_ok(ds):
        return _not_covered("sync_needed", title, paper, "mem_bw x sync_latency x tp at batch 1")
    numbers: dict[str, float] = {}
    table = _target_rows(ds, target, numbers)
    bw = ds["mem_bw"].values.astype(float)
    c = ctx_label(REPRESENTATIVE["context"])
    lat = {
        (m, k): numbers.get(f"{m}_{c}_lat_{k}_s", float("nan"))
        for m in _models(ds)
        for k in ("lo", "8x", "hi")
    }
    where = {"lo": bw.min(), "8x": bw.min() * PAPER["bandwidth_factor"], "hi": bw.max()}

    def show(m: str, k: str) -> str:
        v = lat[m, k]
        return f"{_us(v) if np.isfinite(v) else 'unreachable'} at {_tib(where[k])}"

    ours = (
        f"Largest collective latency that still gives {target:,} tok/s/user at batch 1 and "
        f"{c} context (best over the swept TP): "
        + "; ".join(
            f"{m}: " + ", ".join(show(m, k) for k in ("lo", "8x", "hi")) for m in _models(ds)
        )
        + ". Per context, with the least bandwidth at 1 us and "
        "the fewest chips, in the table below."
    )
    headline = "largest sync latency: " + "; ".join(
        f"{m} {show(m, '8x')} ({show(m, 'hi')}, {show(m, 'lo')})" for m in _models(ds)
    )
    big_8x = lat.get((BIG_MODEL, "8x"), float("nan"))
    big_hi = lat.get((BIG_MODEL, "hi"), float("nan"))
    if np.isfinite(big_8x) and 0.5 * need <= big_8x <= 2 * need:
        verdict = "agrees"
    elif np.isfinite(big_hi) and big_hi <= 2.5 * need:
        verdict = "partly"
    else:
        verdict = "differs"
    others = [m for m in _models(ds) if m != BIG_MODEL and lat[m, "lo"] > 2 * need]
    if others:
        verdict = "partly" if verdict == "agrees" else verdict
        layers = {m: int(job_params(ds, _hardware(ds), m).model.n_layers) for m in _models(ds)}
        ours += (
            f" {', '.join(others)} tolerates more than {2 * need / US:g} us even at "
            f"{_tib(bw.min())}: "
            + "; ".join(
                f"{m} has {layers[m]} layers" + _gb_per_step(ds, m)
                for m in [BIG_MODEL, *others]
                if m in layers
            )
            + "."
        )
    if np.isfinite(big_hi):
        ours += (
            f" Up to {_tib(bw.max())}, {BIG_MODEL} tolerates at most {_us(big_hi)}: "
            f"nearly the whole step budget (1/{target:,} s) then goes to its "
            f"{layers_of(ds, BIG_MODEL)} collectives."
        )
    return RoadmapFinding(
        "sync_needed",
        title,
        paper,
        ours,
        verdict,
        numbers,
        "roadmap_sync_2000.png",
        headline,
        table,
    )


def _extreme(ds: xr.Dataset) -> RoadmapFinding:
    target = PAPER["extreme_utps"]
    title = f"What {target:,} tokens/s per user would take"
    paper = f"{target:,}+ UTPS needs smaller models or shorter context."
    if not _need_ok(ds):
        return _not_covered("extreme", title, paper, "mem_bw x sync_latency x tp at batch 1")
    numbers: dict[str, float] = {}
    table = _target_rows(ds, target, numbers)
    sync = ds["sync_latency"].values.astype(float)
    reached, parts = [], []
    for m in _models(ds):
        for c in ds["context"].values:
            key = f"{m}_{ctx_label(c)}"
            lat = numbers.get(f"{key}_lat_hi_s", float("nan"))
            bw_fast = numbers.get(f"{key}_bw_fast_Bps", float("nan"))
            if np.isfinite(lat):
                reached.append(key)
                parts.append(
                    f"{m} at {ctx_label(c)}: sync <= {_us(lat)} (at "
                    f"{_tib(float(ds['mem_bw'].max()))}), or >= {_tib(bw_fast)} at "
                    f"{_us(sync.min())} (TP{numbers[f'{key}_bw_fast_tp']:g})"
                )
            else:
                parts.append(f"{m} at {ctx_label(c)}: unreachable within the grid")
    at_1us = [k for k in numbers if k.endswith("_bw_1us_Bps") and np.isfinite(numbers[k])]
    ours = (
        f"At batch 1, {target:,} tok/s/user needs: "
        + "; ".join(parts)
        + ". "
        + (
            "With 1 us collectives no point reaches it, whatever the bandwidth."
            if not at_1us
            else f"With 1 us collectives: {', '.join(at_1us)}."
        )
    )
    c = ctx_label(REPRESENTATIVE["context"])
    headline = "; ".join(
        p.split(f" at {c}: ")[0] + ": " + p.split(": ", 1)[1] for p in parts if f" at {c}: " in p
    ) + ("; none at 1 us" if not at_1us else "")
    verdict = "differs" if reached else "agrees"
    if reached:
        models = ", ".join(sorted({k.rsplit("_", 1)[0] for k in reached}))
        ours += (
            " The paper's 'needs smaller models or context' holds "
            + ("at sync of 1 us and more; " if not at_1us else "only in part; ")
            + f"with faster collectives and enough bandwidth {models}"
            f" reach {target:,} in this model (which, like the paper's, has no software "
            f"overhead and ideal memory access)."
        )
    return RoadmapFinding(
        "extreme", title, paper, ours, verdict, numbers, "roadmap_10k.png", headline, table
    )


def _elasticities(ds: xr.Dataset) -> RoadmapFinding:
    title = "Elasticities: where each knob pays"
    paper = (
        "Exposed sync takes over as bandwidth grows; compute is not the limit of decode at "
        "low batch (at most ~1% utilisation)."
    )
    if "elasticity_utps" not in ds:
        return _not_covered("elasticities", title, paper, "elasticity_utps (sensitivity.metrics)")
    from limits.autodiff.elasticities import exchange_rate, exchange_rate_to_user_units

    numbers: dict[str, float] = {}
    bw = ds["mem_bw"].values.astype(float)
    rows = []
    for m in _models(ds):
        for b in (bw.min(), bw.max()):
            pt = _rep(_view(ds, m), mem_bw=b)
            if pt is None:
                continue
            e = pt["elasticity_utps"]
            vals = {str(w): float(e.sel(wrt=w)) for w in e["wrt"].values}
            for w, v in vals.items():
                numbers[f"{m}_{b / TIB:g}TiBps_{w}"] = v
            rows.append(f"{m} at {_tib(b)}: " + ", ".join(f"{w} {v:+.3f}" for w, v in vals.items()))
            if b == bw.min() and {"mem_bw", "sync_latency"} <= set(vals):
                rate = exchange_rate(pt, "utps", "sync_latency", "mem_bw")
                rate_user = float(
                    exchange_rate_to_user_units(rate, "sync_latency", "mem_bw", "us", "TiB/s")
                )
                numbers[f"{m}_us_per_TiBps"] = rate_user
                rows[-1] += (
                    f" (one more TiB/s is worth {abs(rate_user):.3g} us less per collective)"
                )
    if not rows:
        return _not_covered("elasticities", title, paper, "the representative deployment")
    sync_bound = {}
    for m in _models(ds):
        sub = _view(ds, m)
        ok = feasible(sub)
        share = float(((sub["bound"] == 2) & ok).sum() / ok.sum())
        numbers[f"{m}_sync_bound_share"] = sync_bound[m] = share
    diff = (
        float(np.nanmax(np.abs(ds["elasticity_stps"] - ds["elasticity_utps"]).values))
        if "elasticity_stps" in ds
        else float("nan")
    )
    numbers["max_abs_stps_minus_utps"] = diff
    pf = [v for k, v in numbers.items() if k.endswith("_peak_flops")]
    numbers["max_abs_peak_flops"] = max(abs(v) for v in pf) if pf else float("nan")
    rep = REPRESENTATIVE
    ours = (
        f"Elasticities of utps at TP{rep['tp']:g}, batch {rep['batch']:g}, "
        f"{ctx_label(rep['context'])}, {_us(rep['sync_latency'])}: "
        + "; ".join(rows)
        + ". Share of feasible points where sync is the largest term (bound = sync): "
        + ", ".join(f"{m} {v:.0%}" for m, v in sync_bound.items())
        + "."
    )
    if np.isfinite(diff):
        ours += (
            f" E(stps) equals E(utps) to {diff:.1e} everywhere (stps = batch x utps at "
            f"fixed batch), so its tornado is the same."
        )
    lo_hi = [
        (
            numbers.get(f"{m}_{bw.min() / TIB:g}TiBps_sync_latency", np.nan),
            numbers.get(f"{m}_{bw.max() / TIB:g}TiBps_sync_latency", np.nan),
        )
        for m in _models(ds)
    ]
    sync_grows = all(abs(b) > abs(a) for a, b in lo_hi)
    verdict = "agrees" if numbers["max_abs_peak_flops"] < 0.05 and sync_grows else "differs"
    m = BIG_MODEL if BIG_MODEL in _models(ds) else _models(ds)[0]

    def pair(b: float) -> str:
        e = {
            w: numbers.get(f"{m}_{b / TIB:g}TiBps_{w}", np.nan) for w in ("mem_bw", "sync_latency")
        }
        return f"{e['mem_bw']:+.2f} / {e['sync_latency']:+.2f} at {_tib(b)}"

    headline = (
        f"{m}, TP{rep['tp']:g}, {_us(rep['sync_latency'])}: E(utps) to mem_bw / "
        f"sync_latency {pair(bw.min())} -> {pair(bw.max())}; |E(peak_flops)| <= "
        f"{numbers['max_abs_peak_flops']:.3f}"
    )
    return RoadmapFinding(
        "elasticities", title, paper, ours, verdict, numbers, "roadmap_tornado.png", headline
    )


FINDINGS: tuple[Callable[[xr.Dataset], RoadmapFinding], ...] = (
    _bandwidth,
    _sync_needed,
    _extreme,
    _elasticities,
)


def findings(ds: xr.Dataset) -> list[RoadmapFinding]:
    """What the store shows for each roadmap statement of the paper."""
    ds = normalise(ds)
    return [f(ds) for f in FINDINGS]


# --------------------------------------------------------------------------- figures


def _sync_picks(sub: xr.Dataset) -> list[float]:
    """A few sync latencies present in ``sub``: fastest, 1 us, the paper's, slowest."""
    wanted = (
        float(sub["sync_latency"].min()),
        1e-6,
        PAPER["scale_out_sync_s"],
        float(sub["sync_latency"].max()),
    )
    return sorted({w for w in wanted if at(sub, sync_latency=w) is not None})


def _bw_marks(ax, ds: xr.Dataset) -> None:
    """Mark the store's own hardware bandwidth (from its provenance) and the paper's COWS
    reference (quoted, ``PAPER["cows_mem_bw"]``)."""
    hw = _hardware(ds)
    ax.axvline(
        float(job_params(ds, hw, BIG_MODEL).hardware.mem_bw) / TIB,
        color="0.5",
        ls=":",
        lw=0.8,
        label=f"{hw} bandwidth",
    )
    ax.axvline(PAPER["cows_mem_bw"] / TIB, color="0.5", ls="--", lw=0.8, label="xpu_cows bandwidth")


def _fig_bandwidth(ds: xr.Dataset):
    models = _models(ds)
    fig = new_figure(4.6 * len(models), 6.4)[0]
    fig.clear()
    axes = np.atleast_2d(fig.subplots(2, len(models), sharex=True, squeeze=False))
    keep = REPRESENTATIVE
    for j, m in enumerate(models):
        sub = _rep(_view(ds, m), sync=False)
        if sub is None:
            return None
        x = sub["mem_bw"].values / TIB
        for s in _sync_picks(sub):
            one = at(sub, sync_latency=s)
            axes[0, j].plot(
                x, one["utps"].where(feasible(one)).values, marker=".", label=f"sync {_us(s)}"
            )
            axes[1, j].plot(
                x,
                one["elasticity_utps"].sel(wrt="mem_bw").values,
                marker=".",
                label=f"sync {_us(s)}",
            )
        for ax in axes[:, j]:
            _bw_marks(ax, ds)
            ax.set_xscale("log")
        axes[0, j].set_yscale("log")
        axes[0, j].set_title(
            f"{m}, TP{keep['tp']:g}, batch {keep['batch']:g}, {ctx_label(keep['context'])}",
            fontsize="medium",
        )
        axes[0, j].set_ylabel("UTPS [tok/s/user]")
        axes[1, j].set_ylabel("E(utps, mem_bw) [1]")
        axes[1, j].set_xlabel("memory bandwidth per chip [TiB/s]")
        axes[1, j].set_ylim(0, 1.05)
    axes[0, 0].legend(fontsize="x-small")
    return fig


def _fig_target(ds: xr.Dataset, target: float, kind: str):
    models = _models(ds)
    fig = new_figure(4.6 * len(models), 3.8)[0]
    fig.clear()
    axes = np.atleast_1d(fig.subplots(1, len(models), squeeze=False)[0])
    for ax, m in zip(axes, models):
        sol = at(solve(ds, m, target), context=REPRESENTATIVE["context"], batch=1)
        if sol is None:
            return None
        hardware = job_params(ds, _hardware(ds), m).hardware
        for tp in sol["tp"].values:
            label = f"TP{float(tp):g}" + (
                " (in-node)" if not leaves_node(hardware, float(tp)) else ""
            )
            if kind == "sync":
                y = sol["sync_latency_max"].sel(tp=tp)
                ax.plot(sol["mem_bw"].values / TIB, y.values / US, marker=".", label=label)
            else:
                y = sol["mem_bw_min"].sel(tp=tp)
                ax.plot(sol["sync_latency"].values / US, y.values / TIB, marker=".", label=label)
        if kind == "sync":
            ax.axhline(
                PAPER["sync_needed_s"] / US,
                color="k",
                lw=0.8,
                ls="--",
                label=f"paper: {_us(PAPER['sync_needed_s'])}",
            )
            _bw_marks(ax, ds)
            ax.set_xlabel("memory bandwidth per chip [TiB/s]")
            ax.set_ylabel(f"largest sync latency for {target:,.0f} UTPS [us]")
            ax.set_ylim(bottom=0)
        else:
            for b, style in ((ds["mem_bw"].min(), ":"), (ds["mem_bw"].max(), "--")):
                ax.axhline(
                    float(b) / TIB, color="0.5", ls=style, lw=0.8, label=f"swept {_tib(float(b))}"
                )
            ax.set_xlabel("sync latency per collective [us]")
            ax.set_ylabel(f"least bandwidth for {target:,.0f} UTPS [TiB/s]")
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(
            f"{m}, batch 1, {ctx_label(REPRESENTATIVE['context'])}; gaps: unreachable",
            fontsize="medium",
        )
    axes[0].legend(fontsize="x-small")
    return fig


def _fig_tornado(ds: xr.Dataset):
    from limits.plots.sensitivity import tornado

    m = BIG_MODEL if BIG_MODEL in _models(ds) else _models(ds)[0]
    bw = ds["mem_bw"].values.astype(float)
    fig = new_figure(9.6, 2.8)[0]
    fig.clear()
    axes = fig.subplots(1, 2, sharex=True)
    for ax, b in zip(axes, (bw.min(), bw.max())):
        pt = _rep(_view(ds, m), mem_bw=b)
        if pt is None or "elasticity_utps" not in pt:
            return None
        tornado(pt, "utps", ax=ax)
        ax.set_title(
            f"{m} at {_tib(b)}, TP{REPRESENTATIVE['tp']:g}, {_us(REPRESENTATIVE['sync_latency'])}",
            fontsize="medium",
        )
    return fig


def _fig_heatmap(ds: xr.Dataset):
    from limits.plots.sensitivity import elasticity_heatmap

    if "elasticity_utps" not in ds:
        return None
    models = _models(ds)
    fig = new_figure(10.4, 3.8 * len(models))[0]
    fig.clear()
    axes = fig.subplots(len(models), 2, squeeze=False)
    keep = REPRESENTATIVE
    for i, m in enumerate(models):
        sub = _rep(_view(ds, m), sync=False)
        if sub is None:
            return None
        sub = sub.assign_coords(
            mem_bw=("mem_bw", sub["mem_bw"].values / TIB, {"units": "TiB/s"}),
            sync_latency=("sync_latency", sub["sync_latency"].values / US, {"units": "us"}),
        )
        for ax, wrt in zip(axes[i], ("mem_bw", "sync_latency")):
            elasticity_heatmap(sub, "utps", wrt, x="mem_bw", y="sync_latency", ax=ax)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(
                f"{m}: E(utps, {wrt}); TP{keep['tp']:g}, batch {keep['batch']:g}, "
                f"{ctx_label(keep['context'])}",
                fontsize="small",
            )
    return fig


FIGURES: dict[str, Callable[[xr.Dataset], Any]] = {
    "roadmap_bandwidth.png": _fig_bandwidth,
    "roadmap_sync_2000.png": lambda ds: _fig_target(ds, PAPER["fast_sync_utps"], "sync"),
    "roadmap_10k.png": lambda ds: _fig_target(ds, PAPER["extreme_utps"], "bandwidth"),
    "roadmap_tornado.png": _fig_tornado,
    "roadmap_heatmap.png": _fig_heatmap,
}


def make_figures(ds: xr.Dataset, directory: str | Path, dpi: int = 100) -> dict[str, Path]:
    """Draw the document's figures (those the store has data for) as PNGs into ``directory``;
    returns name -> path."""
    return save_figures(ds, directory, FIGURES, dpi)


# --------------------------------------------------------------------------- the document


def _settings(ds: xr.Dataset) -> list[str]:
    hw_name = _hardware(ds)
    first = job_params(ds, hw_name, _models(ds)[0])
    hw, d, cal = first.hardware, first.deployment, first.calibration
    sync = (
        "latency only (link_bw = inf)"
        if np.isinf(float(hw.link_bw))
        else f"latency + bytes / {_tib(float(hw.link_bw))}"
    )
    lines = [
        f"- Hardware `{hw_name}`: {float(hw.mem_capacity) / 2**30:g} GiB and "
        f"{float(hw.peak_flops) / 1e15:g} PFLOP/s per chip, kept while `mem_bw` and "
        f"`sync_latency` are swept; {float(hw.node_size):g}-chip servers with "
        f"{_us(float(hw.sync_latency_intra_node))} in-node collectives; collectives cost "
        f"{sync}, {float(cal.collectives_per_layer):g} all-reduces per layer.",
        f"- Deployment: weights {float(d.weight_bytes):g} B and KV cache "
        f"{float(d.kv_bytes):g} B per element (FP8), pp {float(d.pp):g}, one replica.",
    ]
    models = []
    for m in _models(ds):
        p = job_params(ds, hw_name, m)
        models.append(
            f"`{m}` ({float(p.model.n_params) / 1e9:g} B parameters, "
            f"{int(p.model.n_layers)} layers, {p.model.ffn})"
        )
    lines.append("- Models: " + ", ".join(models) + ".")
    return lines


def render(
    ds: xr.Dataset,
    found: Sequence[RoadmapFinding],
    figures: dict[str, Path],
    out: Path,
    source: str,
    command: str,
) -> str:
    """The markdown text of the roadmap document."""

    def rel(p: Path) -> str:
        return os.path.relpath(p, out.parent)

    ok = feasible(ds)
    rep = REPRESENTATIVE
    lines = [
        "# Hardware roadmap: bandwidth, sync latency and chips for fast decode",
        "",
        f"Generated by `{command}` from `{source}`. Every number below is read from the store "
        f"or solved on its grid and settings with `limits.autodiff.inverse`; only the paper's "
        f"published values (arXiv 2507.14397, `docs/references.md` s.1) are quoted. "
        f"{int(ok.sum())} of {int(ok.size)} points are feasible (fit in memory).",
        "",
        "Regenerate: `python -m limits.sweep --config-dir sweeps --config-name roadmap "
        "hydra.sweep.dir=outputs/roadmap` (the recipe `sweeps/roadmap.yaml`, seconds on 2 "
        "cores), then `python -m limits.studies.roadmap outputs/roadmap --out docs/roadmap.md` "
        "(this document and `docs/figures/roadmap_*.png`).",
        "",
        "Settings:",
        *_settings(ds),
        "",
        "Grid:",
        *grid_lines(ds),
        "",
        "The `sync_latency` axis is the scale-out all-reduce latency; TP8 collectives stay in "
        "one server and keep the in-node latency, so TP8 points do not vary with it "
        "(`limits.autodiff.inverse.max_sync_latency` solves for the in-node latency there). "
        "Curves, "
        f"tornado and heatmaps use the representative deployment TP{rep['tp']:g}, batch "
        f"{rep['batch']:g}, {ctx_label(rep['context'])} context (the paper's golden setting), "
        f"at {_us(rep['sync_latency'])} where a sync latency is fixed.",
        "",
        "## Summary",
        "",
        "| finding | paper | this study | verdict |",
        "|---|---|---|---|",
    ]
    lines += [
        "| "
        + " | ".join(s.replace("|", "\\|") for s in (f.title, f.paper, f.headline))
        + f" | {f.verdict} |"
        for f in found
    ]  # an unescaped pipe would end a cell
    lines.append("")
    for f in found:
        lines += finding_lines(f, figures, out, label="This study")
        if f.table:
            lines += f.table + [""]
        if f.key == "elasticities" and "roadmap_heatmap.png" in figures:
            lines += [
                "Elasticity of UTPS to bandwidth and to sync latency over both (black "
                "lines: boundaries between the binding walls, labelled):",
                "",
                f"![elasticity heatmap]({rel(figures['roadmap_heatmap.png'])})",
                "",
            ]
    return "\n".join(lines)


def write_roadmap(
    path: str | Path,
    out: str | Path,
    figures_dir: str | Path | None = None,
    command: str | None = None,
) -> list[RoadmapFinding]:
    """Open the study at ``path``, write the document to ``out`` and its figures to
    ``figures_dir`` (default ``<out dir>/figures``); returns the findings."""
    return write_document(
        path,
        out,
        figures_dir,
        command or f"python -m limits.studies.roadmap {path} --out {out}",
        findings,
        make_figures,
        render,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m limits.studies.roadmap STORE_OR_MULTIRUN_DIR --out docs/roadmap.md``."""
    import jax

    with jax.enable_x64(True):  # inverse design in float64, like the store
        document_cli(
            argv,
            "limits.studies.roadmap",
            __doc__,
            "docs/roadmap.md",
            write_roadmap,
            lambda f: f"[{f.verdict:>11}] {f.title}: {f.headline}",
        )


if __name__ == "__main__":
    main()
