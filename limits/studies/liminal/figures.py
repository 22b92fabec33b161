"""The LIMINAL report's figures (``FIGURES``: file name -> function of the store returning a
matplotlib Figure, or None where the store lacks the points) and ``make_figures``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limits.plots.results import bound_map, frontier_plot
from limits.studies.common import (
    at,
    ctx_label,
    feasible,
    has,
    new_figure,
    save_figures,
)
from limits.studies.liminal.findings import _gain_vs_hbm3, _hw_ratio
from limits.studies.paper import BASE_HW, BIG_MODEL, MOE_MODEL, PAPER


def _fig_frontier(ds: xr.Dataset):
    sub = at(ds, model=BIG_MODEL, context=4096, sync_latency=PAPER["scale_out_sync_s"])
    if sub is None or "hardware" not in sub.dims:
        return None
    fig = frontier_plot(sub, "utps", "stps", color_by="hardware")
    fig.axes[0].set_title("Llama3-405B, 4K context, 2.25 us sync: STPS vs UTPS")
    return fig


BOUND_MAP_HW = "xpu_3d_dram"


def _fig_bound_map(ds: xr.Dataset):
    # 3D-DRAM at TP32 meets all four walls (capacity, compute, memory, sync) over batch x
    # context; on HBM3 memory binds everywhere, which made a one-colour map
    sub = at(
        ds, hardware=BOUND_MAP_HW, model=BIG_MODEL, tp=32, sync_latency=PAPER["scale_out_sync_s"]
    )
    if sub is None or "batch" not in sub.dims or "context" not in sub.dims:
        return None
    fig = bound_map(sub, x="batch", y="context")
    fig.axes[0].set_title("Binding wall: 3D-DRAM, Llama3-405B, TP32, 2.25 us")
    return fig


def _fig_bandwidth(ds: xr.Dataset):
    if "hardware" not in ds.dims or not has(ds, "hardware", BASE_HW):
        return None
    fig, ax = new_figure()
    for hw in ds["hardware"].values.tolist():
        if hw == BASE_HW:
            continue
        gain = _gain_vs_hbm3(ds, hw, PAPER["scale_out_sync_s"])
        if gain is None:
            continue
        v = np.asarray(gain.values, float)
        v = v[np.isfinite(v)]
        if v.size:
            bw = _hw_ratio(ds, hw)
            ax.scatter(np.full(v.size, bw), v, s=8, alpha=0.4, label=hw)
    lims = np.array([1, ax.get_xlim()[1]])
    ax.plot(lims, lims, "k--", lw=0.8, label="UTPS gain = bandwidth gain")
    lo, hi = PAPER["bandwidth_gain"]
    ax.axhspan(lo, hi, color="0.85", zorder=0, label=f"paper: {lo}-{hi}x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("memory bandwidth / HBM3 bandwidth")
    ax.set_ylabel("UTPS / HBM3 UTPS (same point, 2.25 us sync)")
    ax.legend(fontsize="small")
    return fig


def _fig_sync(ds: xr.Dataset):
    if "sync_latency" not in ds.dims or "hardware" not in ds.dims:
        return None
    sub = at(ds, model=BIG_MODEL, batch=1, tp=128, context=4096)
    if sub is None:
        return None
    fig, ax = new_figure()
    x = sub["sync_latency"].values.astype(float) * 1e6
    for hw in sub["hardware"].values.tolist():
        one = sub.sel(hardware=hw)
        y = np.asarray(one["utps"].where(feasible(one)).values, float)
        ax.plot(x, y, marker="o", label=hw)
    ax.axvline(PAPER["sync_knee_s"] * 1e6, color="0.5", ls=":", label="paper: 2.5 us knee")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("scale-out sync latency [us]")
    ax.set_ylabel("UTPS [tok/s/user]")
    ax.set_title("Llama3-405B, TP128, batch 1, 4K context")
    ax.legend(fontsize="small")
    return fig


def _fig_max_utps(ds: xr.Dataset):
    if "model" not in ds.dims or "context" not in ds.dims:
        return None
    fig, ax = new_figure()
    ok = feasible(ds)
    x = ds["context"].values.astype(float)
    dims = [d for d in ds["utps"].dims if d not in ("model", "context")]
    has_sync = "sync_latency" in ds.dims
    fast = ds["sync_latency"] <= PAPER["sync_needed_s"] * (1 + 1e-6) if has_sync else True
    slow = ds["sync_latency"] >= PAPER["scale_out_sync_s"] * (1 - 1e-6) if has_sync else True
    for m in ds["model"].values.tolist():
        for which, style, keep in (("<= 1 us", "-", fast), (">= 2.25 us", ":", slow)):
            y = ds["utps"].sel(model=m).where(ok.sel(model=m) & keep).max(dims)
            ax.plot(x, np.asarray(y.values, float), style, marker="o", label=f"{m}, sync {which}")
    for level in (PAPER["fast_sync_utps"], PAPER["extreme_utps"]):
        ax.axhline(level, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("context [tokens]")
    ax.set_ylabel("best feasible UTPS [tok/s/user]")
    ax.set_title("Best UTPS over hardware, chips and batch")
    ax.legend(fontsize="x-small")
    return fig


def _fig_moe(ds: xr.Dataset):
    sub = at(ds, model=MOE_MODEL, hardware=BASE_HW)
    if sub is None or "batch" not in sub.dims or "context" not in sub.dims:
        return None
    sub = at(sub, sync_latency=PAPER["scale_out_sync_s"]) or sub
    if "tp" in sub.dims:
        sub = sub.sel(tp=sub["tp"].max())
    fig = new_figure(9.6, 4.0)[0]
    fig.clear()
    left, right = fig.subplots(1, 2)
    b = sub["batch"].values.astype(float)
    per_token = sub["weight_bytes_read"].isel(context=0) / sub["batch"]
    left.plot(b, np.asarray(per_token.values, float) / 1e9, marker="o", label="DeepSeek-V3 (MoE)")
    left.plot(
        b,
        float(per_token.isel(batch=0)) / 1e9 * b[0] / b,
        "k--",
        lw=0.8,
        label="dense model (1/batch)",
    )
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("batch")
    left.set_ylabel("weight bytes read per token [GB]")
    left.legend(fontsize="small")
    ok = feasible(sub)
    for c in sub["context"].values:
        y = sub["stps"].sel(context=c).where(ok.sel(context=c))
        right.plot(b, np.asarray(y.values, float), marker="o", label=f"context {ctx_label(c)}")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("batch")
    right.set_ylabel("STPS [tok/s] (feasible points)")
    right.legend(fontsize="x-small")
    fig.suptitle(f"DeepSeek-V3 on xPU-HBM3, TP{float(sub['tp']):g}")
    return fig


FIGURES: dict[str, Callable[[xr.Dataset], Any]] = {
    "frontier.png": _fig_frontier,
    "bound_map.png": _fig_bound_map,
    "bandwidth_gain.png": _fig_bandwidth,
    "sync_gain.png": _fig_sync,
    "max_utps.png": _fig_max_utps,
    "moe_batch.png": _fig_moe,
}


def make_figures(ds: xr.Dataset, directory: str | Path) -> dict[str, Path]:
    """Draw the report's figures (those the store has data for) as PNGs into
    ``directory``; returns name -> path."""
    return save_figures(ds, directory, FIGURES, dpi=110)
