"""Helpers shared by the study generators (``limits.studies.liminal``, ``limits.studies.roadmap``):
selecting points of a study store, formatting its coordinates, rebuilding the parameters of a stored
job (for inverse design on the store's own settings), running a multirun recipe of ``sweeps/`` in
this process, and writing a study document (figures, sections, command line)."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limits.analysis import best_config
from limits.errors import StoreError
from limits.model.params import Params, parameter_index
from limits.plots.figure import new_figure

__all__ = [
    "SWEEPS_DIR",
    "Finding",
    "has",
    "at",
    "at_known",
    "feasible",
    "fmax",
    "where_max",
    "fmt_coords",
    "ctx_label",
    "normalise",
    "new_figure",
    "grid_lines",
    "run_study",
    "job_params",
    "grid_params",
    "save_figures",
    "finding_lines",
    "write_document",
    "document_cli",
]

SWEEPS_DIR = Path(__file__).resolve().parents[2] / "sweeps"


@dataclasses.dataclass
class Finding:
    """One published finding and what the sweep shows.

    ``numbers`` holds the values quoted in ``ours`` (for tests and tables); ``verdict`` is
    ``agrees``, ``partly`` (agrees in the paper's setting only, the text says which),
    ``differs`` or ``not covered`` (the store lacks the points)."""

    key: str
    title: str
    paper: str
    ours: str
    verdict: str
    numbers: dict[str, float] = dataclasses.field(default_factory=dict)
    figure: str | None = None


def has(ds: xr.Dataset | xr.DataArray, dim: str, value: Any) -> bool:
    """Whether coordinate ``dim`` holds ``value`` (numbers matched to 1e-6 relative)."""
    if dim not in ds.coords:
        return False
    values = ds[dim].values
    if not np.issubdtype(values.dtype, np.number):
        return value in set(values.tolist())
    return bool(np.isclose(values.astype(float), float(value), rtol=1e-6, atol=0).any())


def at(ds: xr.Dataset, **coords: Any) -> xr.Dataset | None:
    """``ds`` at the given coordinates (numeric ones matched to 1e-6 relative), or None when
    the store lacks one of them. A scalar coordinate (dim swept away) must match too."""
    pick = {}
    for dim, value in coords.items():
        if dim in ds.dims:
            if not has(ds, dim, value):
                return None
            if not np.issubdtype(ds[dim].values.dtype, np.number):
                pick[dim] = value
            else:
                i = int(np.argmin(np.abs(ds[dim].values.astype(float) - float(value))))
                pick[dim] = ds[dim].values[i]
        elif dim in ds.coords and ds[dim].size == 1:
            if not has(ds, dim, value):
                return None
        else:
            return None
    return ds.sel(pick)


def at_known(ds: xr.Dataset, **coords: Any) -> xr.Dataset:
    """``at`` for coordinates the caller took from the store's own axes or checked with ``has``:
    one it lacks is a ``StoreError`` instead of None."""
    sub = at(ds, **coords)
    if sub is None:
        raise StoreError(f"the study store has no point at {coords}")
    return sub


def feasible(ds: xr.Dataset) -> xr.DataArray:
    """The stored `feasible` flag as booleans (all True when the store lacks it)."""
    return ds["feasible"].astype(bool) if "feasible" in ds else xr.ones_like(ds["utps"], bool)


def fmax(da: xr.DataArray, ok: xr.DataArray) -> float:
    """Max of ``da`` over points where ``ok`` (NaN when none)."""
    values = np.asarray(da.where(ok).values, float)
    return float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")


def where_max(ds: xr.Dataset, name: str, ok: xr.DataArray | None = None) -> dict[str, Any]:
    """Coordinates of the max of ``name`` among points where ``ok`` (feasible by default)."""
    ok = feasible(ds) if ok is None else ok
    best = best_config(ds.assign(_ok=ok), maximize=name, constraints={"_ok": ("==", True)})
    return {str(d): best[d].item() for d in ds[name].dims}


def fmt_coords(coords: dict[str, Any]) -> str:
    """``{"tp": 32, "context": 4096}`` -> ``"tp 32, context 4K"`` (sync latency in us)."""
    out = []
    for d, v in coords.items():
        if d == "sync_latency":
            out.append(f"sync {float(v) * 1e6:g} us")
        elif d == "context":
            out.append(f"context {ctx_label(v)}")
        else:
            out.append(f"{d} {v:g}" if isinstance(v, (int, float, np.number)) else str(v))
    return ", ".join(out)


def ctx_label(tokens: Any) -> str:
    """Context length [tok] as text: ``4096 -> "4K"``."""
    tokens = round(float(tokens))
    return f"{tokens // 1024}K" if tokens % 1024 == 0 else str(tokens)


def normalise(ds: xr.Dataset) -> xr.Dataset:
    """Load ``ds`` and give string coordinates (``hardware``, ``model``) object dtype: the
    consolidated store holds them as numpy ``StringDType``, which ``limits.plots``
    (``frontier_plot(color_by="hardware")``) does not recognise as strings."""
    ds = ds.load()
    fix = {
        d: ds[d].values.astype(object)
        for d in ds.coords
        if ds[d].ndim == 1 and ds[d].dtype.kind == "T"
    }
    return ds.assign_coords(
        {d: (d if d in ds.dims else ds[d].dims, v, ds[d].attrs) for d, v in fix.items()}
    )


def grid_lines(ds: xr.Dataset) -> list[str]:
    """One markdown bullet per dim of `utps`: its name, length and values (with units)."""
    lines = []
    for d in ds["utps"].dims:
        values = ds[d].values
        if d == "sync_latency":
            shown = ", ".join(f"{float(v) * 1e6:g} us" for v in values)
        elif d == "context":
            shown = ", ".join(ctx_label(v) for v in values)
        elif d == "mem_bw":
            shown = ", ".join(f"{float(v) / 2**40:.4g}" for v in values) + " TiB/s"
        elif not np.issubdtype(values.dtype, np.number):
            shown = ", ".join(map(str, values))
        else:
            shown = ", ".join(f"{float(v):g}" for v in values)
        lines.append(f"- `{d}` ({len(values)}): {shown}")
    return lines


def run_study(
    recipe: str,
    sweep_dir: str | Path,
    overrides: Sequence[str] = (),
    jobs: dict[str, Sequence[str]] | None = None,
    sweeps_dir: str | Path = SWEEPS_DIR,
    verbose: bool = False,
) -> Path:
    """Run the multirun recipe ``sweeps/<recipe>.yaml`` job by job in this process: one
    store per (hardware, model) of its ``hydra.sweeper.params`` in ``sweep_dir/<n>/``, then
    consolidate them. Returns the consolidated store's path.

    **Arguments:** ``overrides`` apply to every job (e.g. ``grid.batch=[1,8]``); ``jobs``
    replaces some of the recipe's sweeper choices (``{"hardware": ["xpu_hbm3"]}``);
    ``sweeps_dir``: where the recipes are; ``verbose``: the sweep's progress output."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from limits.sweep.consolidate import consolidate
    from limits.sweep.job import CONF_DIR, run

    sweep_dir = Path(sweep_dir)
    search = f"hydra.searchpath=[file://{CONF_DIR}]"

    def _compose(extra: Sequence[str], hydra_cfg: bool = False):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(Path(sweeps_dir).resolve()), version_base="1.3"):
            return compose(
                config_name=recipe,
                overrides=[search, *overrides, *extra],
                return_hydra_config=hydra_cfg,
            )

    params = dict(_compose([], hydra_cfg=True).hydra.sweeper.params or {})
    choices_by_name = {n: str(v).split(",") for n, v in params.items()}
    choices_by_name.update({n: list(v) for n, v in (jobs or {}).items()})
    names = list(choices_by_name)
    choices = [choices_by_name[n] for n in names]
    for num, combo in enumerate(itertools.product(*choices)):
        job = [f"{n}={v.strip()}" for n, v in zip(names, combo)]
        store = sweep_dir / str(num) / "sweep.zarr"
        cfg = _compose([*job, f"store.path={store}"])
        run(cfg, overrides=[*overrides, *job], verbose=verbose)
    GlobalHydra.instance().clear()
    return consolidate(sweep_dir)


def job_params(ds: xr.Dataset, hardware: str | None = None, model: str | None = None) -> Params:
    """The base ``Params`` (before grid axes) of the job that computed ``ds[hardware, model]``,
    rebuilt from the store's provenance: the per-job configs a consolidated store records in
    its ``jobs`` attr, else the store's own ``config`` (a single job store). Raises
    ``ValueError`` when the store does not record that job's config."""
    from omegaconf import OmegaConf

    from limits.sweep.config import params_from_cfg

    configs = []
    try:
        configs = [
            j["config"]
            for j in json.loads(ds.attrs.get("jobs", "[]"))
            if isinstance(j, dict) and j.get("config")
        ]
    except json.JSONDecodeError:
        pass
    if ds.attrs.get("config"):
        configs.append(ds.attrs["config"])
    for text in configs:
        cfg = OmegaConf.create(text)
        if hardware in (None, cfg.hardware.get("name")) and model in (None, cfg.model.get("name")):
            return params_from_cfg(cfg)
    raise ValueError(
        f"the store records no config of the job hardware={hardware}, "
        f"model={model}; consolidate its multirun again (python -m "
        f"limits.sweep.consolidate DIR) to record every job's config"
    )


def grid_params(
    base: Params, ds: xr.Dataset | xr.DataArray, skip: Sequence[str] = ()
) -> tuple[Params, list[str]]:
    """``base`` with every parameter dim of ``ds`` (not in ``skip``) set to its coordinate
    values, shaped to broadcast over those dims in order; returns the params and the dims."""
    from limits.sweep.grid import broadcast_axes

    index = parameter_index()
    dims = [str(d) for d in ds.dims if d in index and d not in skip]
    values = [np.asarray(ds[d].values, dtype=float) for d in dims]
    return base.replace(**broadcast_axes(tuple(dims), values)), dims


# --------------------------------------------------------------------------- documents


def save_figures(
    ds: xr.Dataset, directory: str | Path, figures: dict[str, Callable], dpi: int
) -> dict[str, Path]:
    """Draw ``figures`` (name -> function of ``ds`` returning a Figure, or None when the store
    lacks the data) as PNGs into ``directory``; returns name -> path of those drawn."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ds = normalise(ds)
    out = {}
    for name, draw in figures.items():
        fig = draw(ds)
        if fig is not None:
            fig.savefig(directory / name, dpi=dpi)
            out[name] = directory / name
    return out


def finding_lines(
    f: Finding, figures: dict[str, Path], out: Path, label: str = "This sweep"
) -> list[str]:
    """Markdown section of one finding: heading, paper, ours, verdict, its figure."""
    lines = [
        f"## {f.title}",
        "",
        f"- **Paper:** {f.paper}",
        f"- **{label}:** {f.ours}",
        f"- **Verdict:** {f.verdict}",
        "",
    ]
    if f.figure and f.figure in figures:
        lines += [f"![{f.title}]({os.path.relpath(figures[f.figure], out.parent)})", ""]
    return lines


def write_document(
    path: str | Path,
    out: str | Path,
    figures_dir: str | Path | None,
    command: str,
    findings: Callable,
    make_figures: Callable,
    render: Callable,
) -> list:
    """Open the study at ``path``, compute ``findings(ds)``, draw ``make_figures(ds, dir)``
    into ``figures_dir`` (default ``<out dir>/figures``) and write ``render(ds, found,
    figures, out, source, command)`` to ``out``; returns the findings."""
    from limits.analysis import open_results

    out = Path(out)
    figures_dir = Path(figures_dir) if figures_dir is not None else out.parent / "figures"
    ds = normalise(open_results(path))
    found = findings(ds)
    figs = make_figures(ds, figures_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(ds, found, figs, out, str(path), command))
    return found


def document_cli(
    argv: Sequence[str] | None,
    module: str,
    doc: str,
    default_out: str,
    write: Callable,
    show: Callable[[Any], str],
) -> None:
    """The command line of a study generator: ``python -m MODULE PATH --out FILE
    [--figures DIR]``; ``write(path, out, figures, command)`` returns findings, each printed
    as ``show(finding)``."""
    import matplotlib

    matplotlib.use("Agg")
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    parser.add_argument("path", help="study store, sweep dir or multirun dir")
    parser.add_argument("--out", default=default_out, help="markdown file")
    parser.add_argument("--figures", default=None, help="figure dir (default: <out dir>/figures)")
    args = parser.parse_args(argv)
    command = f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)
    for f in write(args.path, args.out, args.figures, command):
        print(show(f))
    print(f"{module}: wrote {args.out}")
