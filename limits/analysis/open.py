"""Opening results: a single zarr store, a sweep run dir or a multirun dir, lazily (dask)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from limits.errors import ConsolidateError, StoreError
from limits.model.outputs import BOUND_LABELS, BOUND_OUTPUTS, LABEL_OUTPUTS
from limits.sweep.integrity import (
    DIMS_ATTR,
    IncompleteStoreWarning,
    check_metadata,
    completeness,
    damaged_blocks,
    describe_damage,
)

__all__ = [
    "open_results",
    "open_store",
    "full_grid",
    "combine_jobs",
    "job_labels",
    "bound_labels",
    "MISSING_BOUND",
    "INCOMPLETE_ATTR",
]

#: dataset attr set on results read from an incomplete store (the completeness message)
INCOMPLETE_ATTR = "limits_incomplete"

#: label of points that no job of a multirun computed (outer join of the job stores)
MISSING_BOUND = "n/a"


def open_store(path: str | Path) -> xr.Dataset:
    """One zarr store, lazily with dask, chunks as stored, attrs (units, labels) intact, every
    variable over every grid axis (a lean store keeps each over the axes it depends on: it is
    broadcast lazily, ``full_grid``). Raises ``StoreError`` naming any ``zarr.json`` that does
    not parse."""
    check_metadata(Path(path))
    with warnings.catch_warnings():
        # zarr v3 stores carry no consolidated metadata by default: not an error here
        warnings.filterwarnings("ignore", message=".*consolidated.*")
        ds = xr.open_zarr(path, chunks={}, consolidated=None)
    return full_grid(_object_string_coords(ds))


def full_grid(ds: xr.Dataset) -> xr.Dataset:
    """Every data variable over every grid axis (the store's ``limits_dims`` attr, in order,
    then its own trailing dims such as ``wrt``), broadcast lazily (dask: no copy until
    computed) and chunked as the store's full variables are; the ``chunks`` encoding follows.
    A store without the attr (full layout, older stores) is returned as it is."""
    dims = [str(d) for d in ds.attrs.get(DIMS_ATTR) or ()]
    lean = [n for n, v in ds.data_vars.items() if any(d not in v.dims for d in dims)]
    if not lean:
        return ds
    chunks: dict[str, int] = {}
    for var in ds.data_vars.values():
        for d, c in zip(var.dims, var.encoding.get("chunks") or ()):
            chunks.setdefault(str(d), int(c))
    sizes = {d: ds.sizes[d] for d in dims}
    out = {}
    for name in lean:
        var = ds[name]
        missing = {d: sizes[d] for d in dims if d not in var.dims}
        order = dims + [d for d in var.dims if d not in dims]
        full = var.expand_dims(missing).transpose(*order)
        full = full.chunk({d: chunks.get(d, sizes[d]) for d in missing})
        full.encoding = {
            **var.encoding,
            "chunks": tuple(chunks.get(str(d), full.sizes[d]) for d in full.dims),
        }
        full.encoding.pop("preferred_chunks", None)
        out[name] = full.assign_attrs(var.attrs)
    return ds.assign(out)


def _object_string_coords(ds: xr.Dataset) -> xr.Dataset:
    """Give string coordinates (``hardware``, ``model``, ``wrt``) object dtype: zarr v3 may
    return numpy ``StringDType``, which pandas indexes and string checks do not all accept."""
    fix = {
        name: (coord.dims, np.asarray(coord.values).astype(object), coord.attrs)
        for name, coord in ds.coords.items()
        if coord.dtype.kind == "T"
    }
    return ds.assign_coords(fix) if fix else ds


def _written_mask(ds: xr.Dataset, done: np.ndarray) -> xr.DataArray:
    """Lazy bool mask of the points whose block is written (blocks = the stored chunks)."""
    import dask.array

    var = next(iter(ds.data_vars.values()))  # every variable has the grid axes first
    dims = var.dims[: done.ndim]
    stored = var.encoding.get("chunks") or ()
    chunks = [
        int(stored[i]) if i < len(stored) else -(-ds.sizes[d] // n)
        for i, (d, n) in enumerate(zip(dims, done.shape))
    ]
    mask = dask.array.from_array(done, chunks=1)
    for axis, (c, d) in enumerate(zip(chunks, dims)):
        mask = dask.array.repeat(mask, c, axis=axis)[(slice(None),) * axis + (slice(ds.sizes[d]),)]
    return xr.DataArray(mask.rechunk(tuple(chunks)), dims=dims)


#: stores up to this size on disk are verified (every chunk read once) when opened
VERIFY_BYTES = 256 * 2**20


def _small(path: Path) -> bool:
    """Whether the store takes at most ``VERIFY_BYTES`` on disk (stops counting beyond)."""
    total = 0
    for file in path.rglob("*"):
        total += file.stat().st_size if file.is_file() else 0
        if total > VERIFY_BYTES:
            return False
    return True


def _checked(
    path: Path, ds: xr.Dataset, allow_incomplete: bool, verify: bool | None = None
) -> xr.Dataset:
    """Refuse damaged chunks (checksums, missing files) when verifying; refuse (or, with
    ``allow_incomplete``, warn about and mask) unwritten blocks."""
    record = completeness(path)
    has_record = (path / "_progress" / "block_done").is_dir()
    if has_record and (verify or (verify is None and _small(path))):
        damaged = damaged_blocks(path)
        if damaged:
            raise StoreError(describe_damage(path, damaged))
    if record.complete:
        return ds
    message = record.describe()
    if not allow_incomplete:
        raise StoreError(f"{message} (or pass allow_incomplete=True to read the written part)")
    warnings.warn(message, IncompleteStoreWarning, stacklevel=3)
    if record.done is not None and record.done.ndim <= len(ds.dims):
        written = (
            _written_mask(ds, record.done)
            if record.done.ndim
            else xr.DataArray(bool(record.done))  # a single point: its one block
        )
        masked = {}
        for name, var in ds.data_vars.items():
            if var.dtype.kind == "f":
                masked[name] = var.where(written)
            elif name == "bound":
                masked[name] = var.where(written, np.int8(-1)).astype(var.dtype)
            elif var.dtype.kind == "b":
                masked[name] = var & written
        ds = ds.assign({k: v.assign_attrs(ds[k].attrs) for k, v in masked.items()})
    ds.attrs[INCOMPLETE_ATTR] = message
    return ds


def open_results(
    path: str | Path,
    *,
    decode_bound: bool = False,
    allow_incomplete: bool = False,
    verify: bool | None = None,
) -> xr.Dataset:
    """Open sweep results wherever they live, refusing stores with unwritten blocks.

    **Arguments:**
    - `path`: a store (`*.zarr`), a sweep run dir holding `sweep.zarr`, or a multirun dir
      (its `consolidated.zarr` if complete, else the job stores `<job>/sweep.zarr` combined
      along new leading dims `hardware` and `model` read from each job's provenance).
    - `decode_bound`: add `bound_label` (strings) next to the integer `bound`.
    - `allow_incomplete`: read a store some of whose blocks were never written (a killed or
      unfinished shard): warns (``IncompleteStoreWarning``), masks those points (NaN, `feasible`
      False, `bound` -1 = ``n/a``) and records the message in the attr ``limits_incomplete``,
      which the analysis helpers repeat as a warning.
    - `verify`: read every written chunk once and refuse a store whose chunks are missing or
      fail their CRC32C checksum, naming the files (`None`: stores up to 256 MiB on disk).

    **Returns:** an `xarray.Dataset` backed by dask arrays. **Raises:** ``StoreError`` naming
    the missing blocks and the command that writes them, when a store is incomplete.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no results at {path}")
    consolidated = path / "consolidated.zarr"
    if path.suffix == ".zarr" or (path / "zarr.json").is_file():
        ds = _checked(path, open_store(path), allow_incomplete, verify)
    elif (path / "sweep.zarr").exists():
        ds = _checked(
            path / "sweep.zarr", open_store(path / "sweep.zarr"), allow_incomplete, verify
        )
    elif consolidated.exists() and completeness(consolidated).complete:
        ds = open_store(consolidated)
    else:
        if consolidated.exists():
            warnings.warn(
                f"{completeness(consolidated).describe()}; reading the job stores instead",
                IncompleteStoreWarning,
                stacklevel=2,
            )
        jobs = sorted(
            (p for p in path.iterdir() if (p / "sweep.zarr").exists()),
            key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name),
        )
        if not jobs:
            raise FileNotFoundError(
                f"{path}: no results store (expected a *.zarr store, "
                "sweep.zarr, consolidated.zarr or <job>/sweep.zarr)"
            )
        ds = combine_jobs(
            [
                _checked(j / "sweep.zarr", open_store(j / "sweep.zarr"), allow_incomplete, verify)
                for j in jobs
            ],
            names=[str(j) for j in jobs],
        )
        notes = [m for j in jobs if (m := completeness(j / "sweep.zarr")).done is not None]
        if any(not m.complete for m in notes):
            ds.attrs[INCOMPLETE_ATTR] = "; ".join(m.describe() for m in notes if not m.complete)
    if decode_bound and "bound" in ds:
        ds = ds.assign(bound_label=bound_labels(ds))
    return ds


def job_labels(ds: xr.Dataset, name: str = "job") -> tuple[str, str]:
    """(hardware, model) preset names of one job store, from attrs `hardware`/`model` or the
    provenance `config` YAML (`hardware.name`, `model.name`)."""
    cfg = ds.attrs.get("config") or {}
    if isinstance(cfg, str):
        cfg = yaml.safe_load(cfg) or {}
    labels = []
    for group in ("hardware", "model"):
        value = ds.attrs.get(group)
        if not isinstance(value, str):
            node = cfg.get(group) if isinstance(cfg, dict) else None
            value = node.get("name") if isinstance(node, dict) else node
        if not isinstance(value, str):
            raise ConsolidateError(
                f"{name}: cannot tell its {group}: no attr {group!r} and no "
                f"{group}.name in its config"
            )
        labels.append(value)
    return labels[0], labels[1]


def combine_jobs(datasets: list[xr.Dataset], names: list[str] | None = None) -> xr.Dataset:
    """Stack job datasets along new leading dims `hardware` and `model`, then one per
    parameter a ``-m`` override swept (``limits.sweep.jobdims``; outer join: points no job
    computed are NaN, `feasible` False, `bound` -1 = ``MISSING_BOUND``)."""
    from limits.sweep.jobdims import job_dims

    names = names or [f"job {i}" for i in range(len(datasets))]
    jobs = []
    for ds, name in zip(datasets, names):
        cfg = ds.attrs.get("config") or {}
        cfg = (yaml.safe_load(cfg) or {}) if isinstance(cfg, str) else cfg
        jobs.append((*job_labels(ds, name), ds.attrs.get("overrides") or [], cfg))
    grid = list(dict.fromkeys(str(d) for ds in datasets for d in ds.dims))
    dims = job_dims(jobs, grid, grids_may_differ=True)
    labels = dims.labels
    seen: dict[tuple, str] = {}
    for key, name in zip(labels, names):
        if key in seen:
            at = ", ".join(f"{n}={v}" for n, v in zip(dims.names, key))
            raise ConsolidateError(
                f"{name} and {seen[key]} both hold {at}; jobs are stacked by hardware, model "
                f"and the parameters a -m override swept: sweep anything else as a grid axis "
                f"('++grid.NAME=[...]')"
            )
        seen[key] = name
    fill = {
        **{name: False for name in LABEL_OUTPUTS if name not in BOUND_OUTPUTS},
        **{name: np.int8(-1) for name in BOUND_OUTPUTS},
    }
    aligned = xr.align(*datasets, join="outer", fill_value=fill)
    stacked = xr.concat(
        aligned,
        dim="job",
        data_vars="all",
        coords="minimal",
        compat="override",
        join="outer",
        fill_value=fill,
        combine_attrs="drop_conflicts",
    )
    stacked = stacked.assign_coords(
        {
            n: ("job", np.array([k[i] for k in labels], dtype=dims.values(n).dtype))
            for i, n in enumerate(dims.names)
        }
    )
    combined = stacked.set_index(job=list(dims.names)).unstack("job", fill_value=fill)
    combined = combined.transpose(*dims.names, ...)
    for coord in ("hardware", "model"):
        combined[coord] = combined[coord].astype(object)
    for n in dims.names:
        combined[n].attrs.update({"units": "", **dims.attrs[n]})
    for var in combined.data_vars:  # keep each variable's attrs (units, long_name, flags)
        for ds in datasets:
            if var in ds:
                combined[var].attrs = dict(ds[var].attrs)
                break
    # each job's own provenance, in the consolidated store's format (``parameter`` reads it)
    combined.attrs["jobs"] = json.dumps(
        [
            {
                **{n: v.item() if isinstance(v, np.generic) else v for n, v in zip(dims.names, k)},
                "store": name,
                "config": ds.attrs.get("config", ""),
            }
            for k, name, ds in zip(labels, names, datasets)
        ]
    )
    return combined


def bound_labels(ds: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The `bound` variable decoded to strings (``memory``, ``compute``, ``sync``,
    ``capacity``; ``n/a`` for points no job computed), lazily."""
    bound = ds["bound"] if isinstance(ds, xr.Dataset) else ds
    meanings = bound.attrs.get("flag_meanings")
    labels = meanings.split() if meanings else list(BOUND_LABELS)
    values = list(np.atleast_1d(bound.attrs.get("flag_values", range(len(labels)))))

    def decode(codes: np.ndarray) -> np.ndarray:
        out = np.full(np.shape(codes), MISSING_BOUND, dtype=object)
        for value, text in zip(values, labels):
            out[codes == value] = text
        return out

    da = xr.apply_ufunc(decode, bound, dask="parallelized", output_dtypes=[object])
    return da.rename("bound_label").assign_attrs(long_name="binding wall", units="")
