"""The zarr store of a sweep: template, chunk-aligned region writes, resume markers, provenance.

Layout of ``sweep.zarr`` (zarr v3, one xarray Dataset):

- one coordinate per grid axis (SI values, ``units`` and ``long_name`` attrs), in grid order;
- one variable per stored output with dims = the axes it depends on (lean layout, the default:
  ``limits.sweep.blocks``) or every axis (``store.layout=full``), plus ``wrt`` for
  elasticities, each with ``units`` and ``long_name``; ``bound`` is int8 with
  ``flag_values``/``flag_meanings``; chunks are the block's lengths along the variable's axes;
- root attr ``limits_dims``: the grid axes in order (``limits.analysis.open_results``
  broadcasts every variable to them);
- dataset attrs: provenance (resolved config, overrides, versions, git commit, time) and the
  canonical data config used to refuse resuming with different settings;
- ``_progress/block_done``: a bool zarr array with one element (one chunk) per block, set only
  after the block's data are written. It lives in a sub-group, which xarray ignores;
- chunk files ``NAME/c.0.12.0`` (``CHUNK_KEY_ENCODING``; stores written before use zarr's
  ``NAME/c/0/12/0``, which every reader and writer here follows from the array's metadata).

The template is written into a temporary directory and renamed into place, so a store either
exists completely or not at all, even when several shard jobs race to create it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as _dt
import functools
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from limits.errors import StoreError
from limits.model.outputs import BOUND_LABELS, BOUND_OUTPUTS, OUTPUTS
from limits.sweep.integrity import (  # DIMS_ATTR: root attr, the stored grid axes in order
    DIMS_ATTR,
    chunk_file,
    remove_stale_temporaries,
    temporary_sibling,
    write_file_atomically,
)

__all__ = [
    "CONFIG_ATTR",
    "VariableSpec",
    "StoreLayout",
    "StoreError",
    "codec_for",
    "chunk_shape",
    "create_store",
    "open_store_group",
    "done_mask",
    "mark_done",
    "config_differences",
    "provenance",
    "write_region",
    "PROGRESS_ARRAY",
    "quiet_zarr_warnings",
    "check_same_config",
    "output_attrs",
    "DIMS_ATTR",
    "ChunkWriter",
]

PROGRESS_ARRAY = "_progress/block_done"
#: chunk files named ``c.0.12.0`` in the array's directory (zarr v3's default encoding with
#: its ``.`` separator), not ``c/0/12/0``: a directory per chunk cost more CPU than encoding
#: it (on ext4, 2e7 points: 771 mkdir calls, 0.63 s of a 1.7 s write, cProfile)
CHUNK_KEY_ENCODING: dict[str, Any] = {"name": "default", "separator": "."}
CONFIG_ATTR = "limits_data_config"


@contextlib.contextmanager
def quiet_zarr_warnings() -> Iterator[None]:
    """Hide zarr's 'consolidated metadata is not in the v3 spec' warning: we write
    consolidated metadata on purpose so that xarray opens the store with one read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        yield


@dataclasses.dataclass(frozen=True)
class VariableSpec:
    """One stored variable: dtype, extra trailing dims (name -> length), attrs, and the grid
    axes it is stored over (``None``: all of them)."""

    name: str
    dtype: np.dtype
    extra_dims: tuple[str, ...] = ()
    extra_shape: tuple[int, ...] = ()
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dims: tuple[str, ...] | None = None

    @property
    def itemsize_per_point(self) -> int:
        """Bytes per value along its grid axes (times the trailing dims)."""
        return int(np.dtype(self.dtype).itemsize * math.prod(self.extra_shape))


def output_attrs(name: str) -> dict[str, Any]:
    """``units``/``long_name`` (and flag attrs for ``bound``) of a model output."""
    units, long_name = OUTPUTS[name]
    attrs: dict[str, Any] = {"units": units, "long_name": long_name}
    if name in BOUND_OUTPUTS:
        attrs.update(
            flag_values=list(range(len(BOUND_LABELS))), flag_meanings=" ".join(BOUND_LABELS)
        )
    return attrs


@dataclasses.dataclass(frozen=True)
class StoreLayout:
    """Everything needed to create the template: axes, chunks, variables, extra coords."""

    axes: Mapping[str, np.ndarray]
    axis_attrs: Mapping[str, Mapping[str, Any]]
    chunks: tuple[int, ...]
    variables: tuple[VariableSpec, ...]
    extra_coords: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    codec: str = "lz4"
    clevel: int = 5

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def n_blocks(self) -> tuple[int, ...]:
        return tuple(-(-n // c) for n, c in zip(self.shape, self.chunks))

    @property
    def bytes_per_point(self) -> int:
        """Bytes per grid point if every variable had every axis (the full layout)."""
        return sum(v.itemsize_per_point for v in self.variables)

    def dims_of(self, var: VariableSpec) -> tuple[str, ...]:
        """The grid axes ``var`` is stored over."""
        return tuple(self.axes) if var.dims is None else var.dims

    @property
    def stored_bytes(self) -> int:
        """Uncompressed bytes of all variables, each over its own axes."""
        sizes = {n: len(v) for n, v in self.axes.items()}
        return sum(
            v.itemsize_per_point * math.prod(sizes[d] for d in self.dims_of(v))
            for v in self.variables
        )


def codec_for(name: str, clevel: int = 5) -> list:
    """zarr v3 bytes codecs for codec ``name`` (lz4 | zstd | none; docs/sweep.md), then a
    CRC32C checksum of each stored chunk, so a flipped or truncated chunk is detected on
    read (``limits.sweep.integrity.damaged_blocks``) instead of being decoded as numbers."""
    from zarr.codecs import BloscCodec, Crc32cCodec

    if isinstance(clevel, bool) or not isinstance(clevel, int) or not 0 <= clevel <= 9:
        raise StoreError(f"store.clevel = {clevel!r}; Blosc levels are whole numbers 0 to 9")
    if name == "none":
        return [Crc32cCodec()]
    if name in ("lz4", "zstd"):
        return [
            BloscCodec(cname=cast(Any, name), clevel=int(clevel), shuffle="shuffle"),
            Crc32cCodec(),
        ]
    raise StoreError(f"store.codec = {name!r} is unknown; allowed: lz4, zstd, none")


def chunk_shape(
    shape: tuple[int, ...],
    chunk_points: int,
    overrides: Mapping[str, int] | None = None,
    names: tuple[str, ...] = (),
) -> tuple[int, ...]:
    """Chunk (= block) shape of at most about ``chunk_points`` points: whole innermost axes
    first, then part of the next one, then 1 along the outer ones. ``overrides`` fix chosen
    axes. The part of an axis is sized so that its blocks tile it without a padded edge block
    where possible (``_tile``): every block is computed in full, so padding is wasted work."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(names)
    if unknown:
        raise StoreError(
            f"store.chunks: {', '.join(sorted(unknown))} not a grid axis; axes: "
            f"{', '.join(names) or '(none)'}"
        )
    chunks = [0] * len(shape)
    budget = max(1, int(chunk_points))
    for i in reversed(range(len(shape))):
        name = names[i] if names else None
        if name in overrides:
            c = int(overrides[name])
            if c < 1:
                raise StoreError(f"store.chunks.{name} = {c} must be >= 1")
            chunks[i] = min(c, shape[i])
        else:
            chunks[i] = _tile(shape[i], budget)
        budget = max(1, budget // chunks[i])
    return tuple(chunks)


def _tile(n: int, budget: int) -> int:
    """Chunk length for an axis of ``n`` values given room for ``budget``: ``n`` if it fits;
    else the fewest blocks ``k = ceil(n / budget)``, or up to 25 % more blocks when one of
    those counts divides ``n`` (no padding at all), each ``ceil(n / k)`` long, so the padded
    edge is under ``k`` values (e.g. 250 values, room for 104: 3 x 84, not 3 x 104 of which
    62 padded)."""
    if n <= budget:
        return max(1, n)
    k = -(-n // max(1, budget))
    exact = [m for m in range(k, k + k // 4 + 1) if n % m == 0]
    return n // exact[0] if exact else -(-n // k)


@functools.cache
def _git_commit() -> str | None:
    """The checkout's commit, asked of ``git`` once per process (a few ms; cached because a
    process may create many stores)."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(module: str, distribution: str) -> str:
    """Version of a library without importing it when it is not loaded yet (importing
    xarray alone for its version costs ~0.5 s: pandas)."""
    loaded = sys.modules.get(module)
    if loaded is not None and hasattr(loaded, "__version__"):
        return str(loaded.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def provenance(resolved_yaml: str, overrides: Iterable[str], data_config: Mapping) -> dict:
    """Dataset attrs recording how the store was made."""
    from limits import __version__

    return {
        "title": "limits sweep",
        "limits_version": __version__,
        "git_commit": _git_commit() or "unknown",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config": resolved_yaml,
        "overrides": list(overrides),
        "library_versions": {
            "jax": _version("jax", "jax"),
            "numpy": np.__version__,
            "xarray": _version("xarray", "xarray"),
            "zarr": _version("zarr", "zarr"),
            "hydra": _version("hydra", "hydra-core"),
        },
        CONFIG_ATTR: json.dumps(data_config, sort_keys=True),
    }


#: xarray's encoding of a NaN ``_FillValue`` attr in zarr v3 (base64 of the little-endian
#: float64, ``xarray.backends.zarr.FillValueCoder``); written by hand so that creating a store
#: needs neither xarray (pandas) nor dask, and read back by xarray exactly as before.
_NAN_FILL_ATTR = base64.standard_b64encode(struct.pack("<d", math.nan)).decode("ascii")


def _write_template(path: Path, layout: StoreLayout, attrs: Mapping[str, Any]) -> None:
    """The empty store at ``path`` with zarr alone, laid out as ``xarray.Dataset.to_zarr`` (zarr
    v3, ``compute=False``) lays it out: one array per coordinate (written, zarr's default
    codec) and per variable (empty; ``dimension_names`` = dims), xarray's ``_FillValue`` attr
    on float arrays, root attrs, consolidated metadata. ``tests/test_store.py`` checks that
    xarray opens it identically to its own template."""
    import zarr

    def fill_attrs(dtype: np.dtype) -> dict[str, Any]:
        return {"_FillValue": _NAN_FILL_ATTR} if np.dtype(dtype).kind == "f" else {}

    def fill_value(dtype: np.dtype) -> Any:
        return math.nan if np.dtype(dtype).kind == "f" else np.zeros((), dtype)[()]

    attrs = {**attrs, DIMS_ATTR: list(layout.axes)}
    root = zarr.open_group(path, mode="w", zarr_format=3, attributes=attrs)
    for n, v in layout.axes.items():
        values = np.asarray(v)  # int64 (whole-number parameters) or float64
        values = values.astype(np.int64 if values.dtype.kind in "iu" else np.float64)
        a = root.create_array(
            n,
            shape=values.shape,
            dtype=values.dtype,
            fill_value=fill_value(values.dtype),
            attributes={**layout.axis_attrs.get(n, {}), **fill_attrs(values.dtype)},
            dimension_names=(n,),
        )
        a[...] = values
    for n, v in layout.extra_coords.items():
        labels = np.asarray([str(x) for x in v], dtype=str)
        a = root.create_array(
            n,
            shape=labels.shape,
            dtype=str,
            fill_value="",
            attributes={"long_name": f"{n} parameter names"},
            dimension_names=(n,),
        )
        a[...] = labels
    size = dict(zip(layout.axes, layout.shape))
    chunk = dict(zip(layout.axes, layout.chunks))
    for var in layout.variables:
        dtype = np.dtype(var.dtype)
        names = layout.dims_of(var)
        root.create_array(
            var.name,
            shape=tuple(size[d] for d in names) + var.extra_shape,
            chunks=tuple(chunk[d] for d in names) + var.extra_shape,
            dtype=dtype,
            fill_value=fill_value(dtype),
            compressors=codec_for(layout.codec, layout.clevel),
            attributes={**var.attrs, **fill_attrs(dtype)},
            dimension_names=names + var.extra_dims,
            chunk_key_encoding=CHUNK_KEY_ENCODING,
        )
    zarr.consolidate_metadata(root.store)


def create_store(path: Path, layout: StoreLayout, attrs: Mapping[str, Any]) -> bool:
    """Create the template at ``path`` atomically; return False if another writer won the race
    (the store then already exists and is checked by the caller)."""
    import zarr

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)  # half-made templates of writers killed before the rename
    tmp = temporary_sibling(path)
    try:
        with quiet_zarr_warnings():
            _write_template(tmp, layout, attrs)
            root = zarr.open_group(tmp, mode="r+", zarr_format=3, use_consolidated=False)
            root.create_group("_progress")
            nb = layout.n_blocks
            root.create_array(
                PROGRESS_ARRAY,
                shape=nb,
                chunks=(1,) * len(nb),
                dtype=bool,
                fill_value=False,
                compressors=None,
                chunk_key_encoding=CHUNK_KEY_ENCODING,
            )
    except BaseException:  # e.g. no space: leave no half-made template behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.rename(tmp, path)
        return True
    except OSError:
        if not path.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def open_store_group(path: Path):
    """The zarr root group of an existing store, for region writes."""
    import zarr

    with quiet_zarr_warnings():
        return zarr.open_group(Path(path), mode="r+", zarr_format=3, use_consolidated=False)


def stored_data_config(group) -> dict:
    raw = group.attrs.get(CONFIG_ATTR)
    if raw is None:
        raise StoreError(f"{group.store} is not a limits sweep store (no {CONFIG_ATTR} attr)")
    return json.loads(raw)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out if out or not prefix else {prefix: {}}
    return {prefix: node}


def config_differences(stored: Mapping, current: Mapping) -> list[str]:
    """``key: stored -> current`` for every setting that differs (dotted keys)."""
    a, b = _flatten(stored), _flatten(current)
    out = []
    for key in sorted(set(a) | set(b)):  # compared as JSON: NaN equals NaN
        if json.dumps(a.get(key, "<unset>")) != json.dumps(b.get(key, "<unset>")):
            out.append(
                f"{key}: {a.get(key, '<unset>')!r} (store) != {b.get(key, '<unset>')!r} (now)"
            )
    return out


def check_same_config(group, path: Path, current: Mapping) -> None:
    """Refuse to resume into a store written with different data settings."""
    diffs = config_differences(stored_data_config(group), current)
    if diffs:
        raise StoreError(
            f"store {path} was written with different settings: "
            f"{'; '.join(diffs)}. Use another store.path (or hydra.run.dir), or "
            f"delete the store to start over"
        )


def done_mask(group) -> np.ndarray:
    """Bool array (one element per block) of the blocks already written."""
    return np.asarray(group[PROGRESS_ARRAY][...], dtype=bool)


def mark_done(progress, block: tuple[int, ...]) -> None:
    """Record that ``block`` is written (call only after its data are in the store) in
    ``progress``, the store's ``PROGRESS_ARRAY`` (opened once per run): its one-element chunk
    written atomically (``write_file_atomically``; zarr < 3.2 truncates the file first, and a
    kill then leaves a chunk that does not decode)."""
    from zarr.codecs import BytesCodec

    root = getattr(progress.store, "root", None)  # a local store's directory
    codecs = list(progress.metadata.codecs)
    if root is None or len(codecs) != 1 or not isinstance(codecs[0], BytesCodec):
        progress[block] = True
        return
    file = chunk_file(Path(root), progress.path, block, progress)
    file.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(file, np.ones((), bool).tobytes())


def write_region(
    arrays: Mapping[str, Any],
    region: tuple[slice, ...] | Mapping[str, tuple[slice, ...]],
    data: Mapping[str, np.ndarray],
) -> None:
    """Write whole chunks: ``data[name]`` (already cropped) into ``arrays[name][region]``
    (``region``: one for all, or one per name: variables over fewer axes, lean layout).

    All variables of the region are written in one call of zarr's event loop, so their chunks
    are compressed (Blosc releases the GIL) and stored concurrently rather than one after the
    other (on 2 loaded cores: 13.4 vs 11.8 M points/s, median of 6 alternating runs of 14
    variables). Arrays without ``async_array`` are written one by one.
    """
    items = [
        (arrays[name], region if isinstance(region, tuple) else region[name], values)
        for name, values in data.items()
    ]
    if len(items) < 2 or not all(hasattr(a, "async_array") for a, _, _ in items):
        for array, where, values in items:
            array[where] = values
        return
    import asyncio

    from zarr.core.sync import sync

    async def write_all() -> None:
        await asyncio.gather(*(a.async_array.setitem(r, v) for a, r, v in items))

    sync(write_all())


class ChunkWriter:
    """Writes whole chunks of a store's arrays by encoding them itself, in a thread pool: the
    same bytes zarr writes (its codec pipeline as the array's metadata declares it: ``bytes``
    little-endian, then Blosc, then a CRC32C checksum), one file per chunk at zarr's default
    key, without zarr's per-chunk machinery (region indexing, empty-chunk checks, an event
    loop per call), which cost about half the write time (docs/sweep.md, Performance).

    ``arrays``: name -> zarr array of the store at ``path``. An array whose codecs are not
    these (an older store) is written through zarr (``write_region``). ``threads``: encoders
    working at once (Blosc releases the GIL while it compresses).
    """

    def __init__(self, path: Path, arrays: Mapping[str, Any], threads: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.path = Path(path)
        self.arrays = dict(arrays)
        self.encoders = {n: _encoder(a) for n, a in self.arrays.items()}
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="limits-encode")
        self._made: set[Path] = set()

    def write(self, regions: Mapping[str, tuple[slice, ...]], data: Mapping[str, Any]) -> None:
        """Write ``data[name]`` (cropped to ``regions[name]``, which starts on a chunk
        boundary and spans one chunk along each dim) as that chunk; returns when every file
        is written."""
        self.submit(regions, data)()

    def submit(
        self, regions: Mapping[str, tuple[slice, ...]], data: Mapping[str, Any]
    ) -> Callable[[], None]:
        """``write`` without waiting: the chunks are encoded and written in the pool; call the
        returned function to wait for them (it raises what a write raised)."""
        direct = {n for n in data if self.encoders[n] is not None}
        futures = [
            self.pool.submit(self._write_one, n, regions[n], data[n]) for n in sorted(direct)
        ]
        rest = {n: v for n, v in data.items() if n not in direct}
        if rest:
            write_region(self.arrays, {n: regions[n] for n in rest}, rest)

        def wait() -> None:
            for f in futures:
                f.result()

        return wait

    def _write_one(self, name: str, region: tuple[slice, ...], values: Any) -> None:
        array = self.arrays[name]
        chunks = tuple(array.chunks)
        values = np.asarray(values, dtype=array.dtype)
        index = tuple(s.start // c for s, c in zip(region, chunks))
        index += (0,) * (len(chunks) - len(index))
        if values.shape != chunks:  # an edge chunk: zarr stores it whole, padded with the fill
            pad = [(0, c - n) for c, n in zip(chunks, values.shape)]
            values = np.pad(values, pad, constant_values=array.fill_value)
        encoded = self.encoders[name](np.ascontiguousarray(values, values.dtype.newbyteorder("<")))
        file = chunk_file(self.path, name, index, array)
        if file.parent not in self._made:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(file.parent)
        write_file_atomically(file, encoded)  # a kill leaves no truncated chunk

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _text(setting: Any) -> str:
    """A codec setting as text: zarr < 3.2 holds enums (``.value``), later zarr plain strings."""
    return str(getattr(setting, "value", setting))


def _encoder(array: Any) -> Any:
    """A function ``contiguous little-endian array -> chunk file bytes`` for ``array``'s
    codecs when they are ``bytes`` (little-endian), optionally Blosc, then ``crc32c``; else
    ``None``."""
    import google_crc32c
    from numcodecs import Blosc
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

    codecs = list(array.metadata.codecs)
    if (
        len(codecs) not in (2, 3)
        or not isinstance(codecs[0], BytesCodec)
        or (array.dtype.itemsize > 1 and _text(codecs[0].endian) != "little")
        or not isinstance(codecs[-1], Crc32cCodec)
        or (len(codecs) == 3 and not isinstance(codecs[1], BloscCodec))
    ):
        return None
    blosc = None
    if len(codecs) == 3:
        c = codecs[1]
        shuffle = _text(c.shuffle)
        blosc = Blosc(
            cname=_text(c.cname),
            clevel=c.clevel,
            shuffle=int(shuffle == "shuffle") + 2 * int(shuffle == "bitshuffle"),
            blocksize=c.blocksize,
            typesize=c.typesize,
        )

    def encode(values: np.ndarray) -> bytes:
        body = values.tobytes() if blosc is None else bytes(blosc.encode(values))
        return body + struct.pack("<I", google_crc32c.value(body))

    return encode
