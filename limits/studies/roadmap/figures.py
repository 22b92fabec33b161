"""The roadmap document's figures (``FIGURES``: file name -> function of the store returning a
matplotlib Figure, or None where the store lacks the points) and ``make_figures``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limits.model.sync import leaves_node
from limits.studies.common import (
    at,
    at_known,
    ctx_label,
    feasible,
    job_params,
    new_figure,
    save_figures,
)
from limits.studies.paper import BIG_MODEL, PAPER
from limits.studies.roadmap.findings import (
    REPRESENTATIVE,
    TIB,
    US,
    _hardware,
    _models,
    _rep,
    _sync_picks,
    _tib,
    _us,
    _view,
    solve,
)


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
            one = at_known(sub, sync_latency=s)
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
