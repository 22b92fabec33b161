"""Consolidate a multirun (one store per job) into one dataset with ``hardware`` and ``model``
as leading string dimensions, then one dimension per parameter a ``-m`` override swept
(``-m deployment.prompt_len=1024,2048``: ``prompt_len``; ``limits.sweep.jobdims``):
``DIR/consolidated.zarr``.

Runs automatically at the end of ``python -m limits.sweep -m hardware=a,b model=c,d`` (the
``ConsolidateCallback`` configured in ``conf/config.yaml``) and by hand with
``python -m limits.sweep.consolidate DIR``. The job stores must share their grid axes and
variables, be complete, and cover every combination of those dimensions exactly once; a grid
swept with ``-m`` or a swept setting that is no parameter is refused, saying what to run.
A multirun whose jobs share one ``store.path`` (the shards of one grid) has nothing to
combine: the callback only reports whether that store is complete.
The consolidated store's ``jobs`` attr (JSON) records each job's hardware, model, store,
overrides and resolved ``config`` (``limits.studies.common.job_params`` rebuilds its parameters).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import shutil
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np

from limits.errors import ConsolidateError
from limits.sweep.integrity import (
    CONSOLIDATED_COMPLETE_ATTR,
    DIMS_ATTR,
    remove_stale_temporaries,
    replace_atomically,
    temporary_sibling,
)
from limits.sweep.jobdims import job_dims
from limits.sweep.store import (
    CONFIG_ATTR,
    PROGRESS_ARRAY,
    StoreError,
    config_differences,
    quiet_zarr_warnings,
)

__all__ = [
    "consolidate",
    "ConsolidateCallback",
    "ConsolidateError",
    "main",
    "CONSOLIDATED_NAME",
    "shared_store_status",
]

CONSOLIDATED_NAME = "consolidated.zarr"


def _job_stores(directory: Path, store_name: str) -> list[Path]:
    return sorted(
        (p for p in directory.glob(f"*/{store_name}") if p.is_dir()),
        key=lambda p: (len(p.parent.name), p.parent.name),
    )


def _open_job(path: Path):
    import xarray as xr
    import zarr

    with quiet_zarr_warnings():
        group = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
        if CONFIG_ATTR not in group.attrs:
            raise ConsolidateError(f"{path} is not a limits sweep store")
        done = np.asarray(cast(Any, group[PROGRESS_ARRAY])[...], bool)
        if not done.all():
            raise ConsolidateError(
                f"{path} is incomplete ({int(done.sum())} of {done.size} "
                f"blocks written); re-run its job to finish it"
            )
        ds = xr.open_zarr(path)
    config = json.loads(str(group.attrs[CONFIG_ATTR]))
    return ds, config


def _grid_dims(ds: Any) -> list[str]:
    """The grid axes of a job store in order: its ``limits_dims`` attr (lean layout), else the
    dims of its variables (every variable over every axis), without trailing ``wrt``."""
    if ds.attrs.get(DIMS_ATTR):
        return [str(d) for d in ds.attrs[DIMS_ATTR]]
    return [str(d) for d in ds.dims if d != "wrt"]


def _check_same_axes(first: Any, first_path: Path, ds: Any, path: Path) -> None:
    same_dims = _grid_dims(ds) == _grid_dims(first) and dict(ds.sizes) == dict(first.sizes)
    if not same_dims or set(ds.data_vars) != set(first.data_vars):
        raise ConsolidateError(
            f"job stores differ: {path} has dims {dict(ds.sizes)} and variables "
            f"{sorted(ds.data_vars)} but {first_path} has {dict(first.sizes)} and "
            f"{sorted(first.data_vars)}"
        )
    for name in first.coords:
        a, b = first[name].values, ds[name].values
        if a.shape != b.shape or not (a == b).all():
            raise ConsolidateError(
                f"job stores differ in axis {name}: {path} has "
                f"{b.tolist()} but {first_path} has {a.tolist()}; one store holds every "
                f"value as one axis: '++grid.{name}=[...]' (without -m)"
            )


def consolidate(
    directory: str | Path, out: str | Path | None = None, store_name: str = "sweep.zarr"
) -> Path:
    """Combine the job stores ``DIR/*/sweep.zarr`` into ``DIR/consolidated.zarr``.

    **Arguments:** ``directory``: the multirun (sweep) directory; ``out``: output store
    (default ``DIR/consolidated.zarr``); ``store_name``: the job stores' name.

    **Returns:** the consolidated store's path. Raises ``ConsolidateError`` when the jobs
    cannot be combined (the message says why).
    """
    import xarray as xr
    import zarr

    from limits import __version__

    directory = Path(directory)
    paths = _job_stores(directory, store_name)
    if not paths:
        raise ConsolidateError(f"no job stores {directory}/*/{store_name} found")
    jobs = []
    for path in paths:
        ds, config = _open_job(path)
        jobs.append((path, ds, config))
    first_path, first, _ = jobs[0]
    dims = job_dims(  # first: a grid swept with -m is named as such
        [
            (str(c["hardware"]["name"]), str(c["model"]["name"]), ds.attrs.get("overrides", []), c)
            for _, ds, c in jobs
        ],
        [str(d) for d in first.dims],
    )
    for path, ds, _ in jobs:
        _check_same_axes(first, first_path, ds, path)
    seen: dict[tuple, tuple[Path, dict]] = {}
    for key, (path, _, config) in zip(dims.labels, jobs):
        if key in seen:
            other_path, other_config = seen[key]
            diffs = [d.split(":")[0] for d in config_differences(other_config, config)]
            at = ", ".join(f"{n}={v}" for n, v in zip(dims.names, key))
            raise ConsolidateError(
                f"jobs {other_path.parent.name} and {path.parent.name} both have {at}; "
                f"consolidation stacks hardware, model and the parameters a -m override swept "
                f"(they also differ in: {', '.join(diffs) or 'nothing'}; sweep such a "
                f"parameter as a grid axis: '++grid.NAME=[...]')"
            )
        seen[key] = (path, config)
    values = {n: dims.values(n) for n in dims.names}
    by_key = _common_dims(
        {key: ds for key, (_, ds, _) in zip(dims.labels, jobs)}, _grid_dims(first)
    )
    missing = [
        "/".join(map(str, k)) for k in itertools.product(*values.values()) if k not in by_key
    ]
    if missing:
        raise ConsolidateError(
            f"the jobs do not cover every {' x '.join(dims.names)} combination; missing: "
            f"{', '.join(missing)}"
        )

    def stacked(level: int, key: tuple) -> Any:
        if level == len(dims.names):
            return by_key[key]
        name = dims.names[level]
        return xr.concat(
            [stacked(level + 1, (*key, v)) for v in values[name]],
            dim=name,
            coords="minimal",
            compat="override",
            join="exact",
            combine_attrs="override",
        )

    combined = stacked(0, ()).assign_coords({n: (n, values[n], dims.attrs[n]) for n in dims.names})
    if "wrt" in combined.coords:
        combined = combined.assign_coords(
            wrt=(
                "wrt",
                np.asarray(combined["wrt"].values, dtype=object),
                dict(combined["wrt"].attrs),
            )
        )
    grid_dims = _grid_dims(first)
    leading = list(dims.names)
    combined = combined.transpose(*leading, *grid_dims, ...)
    stored_chunks: dict[str, int] = {}  # each axis' chunk length, from any variable over it
    for _, ds, _ in jobs:
        for var in ds.data_vars.values():
            for d, c in zip(var.dims, var.encoding.get("chunks") or var.shape):
                stored_chunks.setdefault(str(d), int(c))
    encoding = {}
    for name in combined.data_vars:
        src = first[name].encoding
        var_dims = combined[name].dims
        chunks = (1,) * len(leading) + tuple(
            stored_chunks.get(str(d), combined.sizes[d]) for d in var_dims[len(leading) :]
        )
        combined[name] = combined[name].chunk(dict(zip(var_dims, chunks)))
        encoding[name] = {"compressors": src.get("compressors"), "chunks": chunks}
    for name in combined.variables:
        combined[name].encoding = {}
    combined.attrs = {
        "title": "limits sweep (consolidated multirun)",
        "limits_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source_directory": str(directory),
        "jobs": json.dumps(
            [
                {
                    **{n: _plain(v) for n, v in zip(dims.names, k)},
                    "store": str(p),
                    "overrides": ds.attrs.get("overrides", []),
                    "config": ds.attrs.get("config", ""),
                }
                for k, (p, ds, _) in zip(dims.labels, jobs)
            ]
        ),
        "config": first.attrs.get("config", ""),
        DIMS_ATTR: [*leading, *grid_dims],
    }
    out = Path(out) if out is not None else directory / CONSOLIDATED_NAME
    _check_replaceable(out)
    remove_stale_temporaries(out)  # what killed consolidations left behind
    # written under a hidden name, marked complete last, then renamed into place: a kill at
    # any moment leaves the previous state (no store, or the previous consolidated store)
    tmp = temporary_sibling(out)
    try:
        with quiet_zarr_warnings():
            combined.to_zarr(tmp, mode="w", encoding=encoding, zarr_format=3, consolidated=True)
            group = zarr.open_group(tmp, mode="r+", zarr_format=3, use_consolidated=False)
            group.attrs[CONSOLIDATED_COMPLETE_ATTR] = True
            zarr.consolidate_metadata(tmp, zarr_format=3)
        replace_atomically(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _plain(value: Any) -> Any:
    """A dim value for JSON (numpy scalars as Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def _common_dims(by_key: dict, grid_dims: list[str]) -> dict:
    """Each variable over the union of its grid axes in every job (lean stores: a job's model
    may depend on an axis another's does not), broadcast lazily where a job lacks one; the
    consolidated store then keeps each variable over those axes only."""
    first = next(iter(by_key.values()))
    out = {}
    for key, ds in by_key.items():
        updates = {}
        for name in first.data_vars:
            union = [d for d in grid_dims if any(d in job[name].dims for job in by_key.values())]
            var = ds[name]
            missing = {d: ds.sizes[d] for d in union if d not in var.dims}
            if missing:
                extra = [d for d in var.dims if d not in grid_dims]
                updates[name] = var.expand_dims(missing).transpose(*union, *extra)
        out[key] = ds.assign(updates) if updates else ds
    return out


def _check_replaceable(out: Path) -> None:
    """Refuse to overwrite anything but a previous consolidated store: ``--out`` naming an
    existing directory (or file) of other data must never delete it."""
    if not out.exists() and not out.is_symlink():
        if not out.parent.is_dir():
            raise ConsolidateError(f"--out {out}: its directory {out.parent} does not exist")
        return
    title = ""
    if (out / "zarr.json").is_file():
        try:
            title = str(
                json.loads((out / "zarr.json").read_text()).get("attributes", {}).get("title", "")
            )
        except (OSError, ValueError):
            title = ""
    if not title.startswith("limits sweep (consolidated"):
        raise ConsolidateError(
            f"--out {out} exists and is not a consolidated limits store; nothing was "
            f"written or deleted: choose a new path (or delete it yourself)"
        )


def failed_jobs(directory: Path) -> list[tuple[str, str, str]]:
    """(job, overrides, message) of the multirun jobs that recorded a failure."""
    out = []
    for file in sorted(
        directory.glob("*/limits_failed.txt"), key=lambda p: (len(p.parent.name), p.parent.name)
    ):
        overrides, _, message = file.read_text().partition("\n")
        out.append((file.parent.name, overrides, message.strip()))
    return out


def shared_store_status(path: str | Path) -> str:
    """One line on a store written by several jobs: complete, or how many blocks are missing."""
    import zarr

    path = Path(path)
    try:
        with quiet_zarr_warnings():
            group = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
            done = np.asarray(cast(Any, group[PROGRESS_ARRAY])[...], bool)
    except (OSError, KeyError, ValueError) as err:  # no store: every job failed early
        return f"{path} cannot be read ({type(err).__name__}: {err})"
    if done.all():
        return f"{path} is complete ({done.size} blocks); open it with xarray.open_zarr"
    return (
        f"{path} is incomplete: {int(done.sum())} of {done.size} blocks written; re-run "
        f"the failed shards (same command) to finish it"
    )


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency
    Callback = object  # type: ignore[assignment,misc]


class ConsolidateCallback(Callback):  # type: ignore[misc,valid-type]
    """Hydra callback: consolidate the job stores when a multirun ends."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        directory = Path(str(config.hydra.sweep.dir))
        failed = failed_jobs(directory)
        self._consolidate(config, directory, bool(failed))
        if failed:  # after the others finished and were consolidated: say so, exit 2
            print(
                f"limits.sweep: {len(failed)} job(s) of the multirun failed (the others are kept):",
                file=sys.stderr,
            )
            for job, overrides, message in failed:
                print(f"  job {job} ({overrides}): {message}", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(2)

    def _consolidate(self, config: Any, directory: Path, some_failed: bool) -> None:
        shared = config.get("store", {}).get("path")
        if shared:  # every job wrote into one store (the shards of one grid): say how far
            print(
                "limits.sweep.consolidate: the jobs share store.path; "
                f"{shared_store_status(shared)}"
            )
            return
        if not _job_stores(directory, "sweep.zarr"):
            print(
                f"limits.sweep.consolidate: no job stores under {directory} (store.path set?); "
                f"nothing to consolidate",
                file=sys.stderr,
            )
            return
        if some_failed:
            print(
                f"limits.sweep.consolidate: not consolidated (a job failed); open the "
                f"others with limits.analysis.open_results({str(directory)!r})",
                file=sys.stderr,
            )
            return
        try:
            out = consolidate(directory)
        except StoreError as err:
            print(f"limits.sweep.consolidate: not consolidated: {err}", file=sys.stderr)
            return
        opener = f"limits.analysis.open_results({str(out)!r})"
        print(f"limits.sweep.consolidate: wrote {out} (open with {opener})")


def main(argv: list[str] | None = None) -> int:
    """``python -m limits.sweep.consolidate DIR [--out PATH]``."""
    parser = argparse.ArgumentParser(
        prog="python -m limits.sweep.consolidate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("directory", help="multirun directory holding */sweep.zarr")
    parser.add_argument("--out", default=None, help="output store (default DIR/consolidated.zarr)")
    args = parser.parse_args(argv)
    try:
        out = consolidate(args.directory, args.out)
    except StoreError as err:
        print(f"limits.sweep.consolidate: error: {err}", file=sys.stderr)
        return 2
    print(f"limits.sweep.consolidate: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
