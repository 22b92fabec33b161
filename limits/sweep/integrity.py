"""What a store knows about itself: which blocks are written (the completeness record
``_progress/block_done``), the command that completes it, and atomic replacement of a
directory (a store becomes visible only when whole).

``python -m limits.status STORE`` prints ``completeness(STORE).describe()``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from limits.errors import StoreError

__all__ = [
    "Completeness",
    "IncompleteStoreWarning",
    "completeness",
    "complete_command",
    "replace_atomically",
    "exchange",
    "temporary_sibling",
    "damaged_blocks",
    "block_arrays",
    "describe_damage",
    "chunk_file",
    "source_hash",
    "remove_stale_temporaries",
    "check_metadata",
    "check_same_code",
]

PROGRESS_ARRAY = "_progress/block_done"  # the same record as limits.sweep.store
#: attr written last into a consolidated store (before its atomic rename)
CONSOLIDATED_COMPLETE_ATTR = "limits_consolidation_complete"
#: attr of sweep stores whose every block writes every chunk file (with a CRC32C checksum):
#: there, a missing chunk file is damage, not a chunk equal to the fill value
INTEGRITY_ATTR = "limits_integrity"
INTEGRITY = "crc32c; every chunk written"


class IncompleteStoreWarning(UserWarning):
    """Results read from a store some of whose blocks were never written."""


@dataclasses.dataclass(frozen=True)
class Completeness:
    """The completeness record of one store: ``done`` has one bool per block."""

    path: Path
    done: np.ndarray | None  # None: no record (not written by limits.sweep)
    command: str

    @property
    def known(self) -> bool:
        return self.done is not None

    @property
    def complete(self) -> bool:
        return self.done is None or bool(self.done.all())

    @property
    def missing(self) -> list[tuple[int, ...]]:
        if self.done is None:
            return []
        return [tuple(int(i) for i in ix) for ix in np.argwhere(~self.done)]

    def describe(self, limit: int = 8) -> str:
        """One line: complete (n blocks), or how many are missing, which, and the fix."""
        if self.done is None:
            return f"{self.path}: no completeness record (not a limits.sweep store)"
        total = self.done.size
        if self.complete:
            return f"{self.path}: complete ({total} of {total} blocks written)"
        missing = self.missing
        shown = ", ".join(str(list(b)) for b in missing[:limit])
        more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
        return (
            f"{self.path}: INCOMPLETE: {len(missing)} of {total} blocks never written "
            f"(blocks {shown}{more}); their points read as NaN/False/0. Complete it with: "
            f"{self.command}"
        )


def complete_command(path: Path, overrides: list[str]) -> str:
    """The command that writes the missing blocks of ``path`` (written blocks are kept): the
    recorded overrides without shard settings (one job writes every missing block)."""
    kept = [
        o for o in overrides if not o.lstrip("+").startswith(("shard.", "store.path=", "hydra."))
    ]
    return shlex.join(["python", "-m", "limits.sweep", *kept, f"store.path={path}"])


def completeness(path: str | Path) -> Completeness:
    """Read the completeness record of the store at ``path``. Raises ``StoreError`` when the
    path is no zarr store."""
    import zarr

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path} is not a zarr store (no zarr.json)")
    try:
        group: Any = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
        attrs = dict(group.attrs)
        done = (
            np.asarray(group[PROGRESS_ARRAY][...], dtype=bool)
            if (path / PROGRESS_ARRAY / "zarr.json").is_file()
            else None
        )
    except (OSError, ValueError, KeyError) as err:
        raise StoreError(f"{path}: cannot read its completeness record: {err}") from None
    if done is None and str(attrs.get("title", "")).startswith("limits sweep (consolidated"):
        # a consolidated store is complete when the attr written last is there
        done = np.asarray([bool(attrs.get(CONSOLIDATED_COMPLETE_ATTR))])
        command = shlex.join(["python", "-m", "limits.sweep.consolidate", str(path.parent)])
        return Completeness(path, done, command)
    overrides: Any = attrs.get("overrides") or []
    if isinstance(overrides, str):
        overrides = json.loads(overrides)
    return Completeness(path, done, complete_command(path, [str(o) for o in overrides]))


def temporary_sibling(path: Path) -> Path:
    """A hidden unique name next to ``path`` (same file system: renames are atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


#: renameat2 flag: swap two existing paths in one step (Linux >= 3.15, glibc >= 2.28)
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap the directories ``a`` and ``b`` in one atomic step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``, through ctypes: the standard library has no wrapper). Returns False,
    changing nothing, where the system or the file system cannot (then the caller falls back
    to two renames)."""
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # a C library older than glibc 2.28 (or not glibc)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # no such system call, or a file system without exchange
    raise OSError(code, os.strerror(code), str(b))


def replace_atomically(tmp: Path, path: Path) -> None:
    """Move the finished directory ``tmp`` to ``path``; a kill at any moment leaves the old or
    the new directory at ``path`` (plus at most a hidden leftover that
    ``remove_stale_temporaries`` deletes), never half of one and never neither.

    An existing ``path`` is swapped with ``tmp`` in one step (``exchange``) and the old one,
    now at the hidden name, deleted after. Where the system cannot swap, ``path`` is renamed
    aside and ``tmp`` into place: two renames, between which neither is at ``path``
    (``open_results`` then reads the job stores; ``remove_stale_temporaries`` brings the old
    one back)."""
    if path.exists() and exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # the old directory, now at the hidden name
        return
    old = None
    if path.exists():
        old = path.with_name(f"{temporary_sibling(path).name}-old")
        os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.rename(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: suffix of a chunk file being written (``write_file_atomically``); zarr never reads it
PARTIAL_SUFFIX = ".limits-partial"


def write_file_atomically(file: Path, data: bytes) -> None:
    """Write ``data`` to ``file`` through a hidden sibling renamed over it: a kill at any
    moment leaves the old file (or none) or the new one, never a truncated one (which would
    fail its checksum and make the whole store unreadable). A killed writer's sibling is
    deleted by ``remove_partial_files``."""
    import threading

    tmp = file.with_name(f".{file.name}.{os.getpid()}-{threading.get_ident()}{PARTIAL_SUFFIX}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_partial_files(store: Path) -> int:
    """Delete the hidden half-written chunk files (``write_file_atomically``) that killed
    writers of this machine left in ``store`` (their PID no longer runs: a shard still
    writing keeps its own); how many."""
    removed = 0
    for directory, _, names in os.walk(store):
        for name in names:
            if not name.endswith(PARTIAL_SUFFIX):
                continue
            try:
                os.kill(int(name.rsplit(".", 2)[-2].split("-")[0]), 0)
            except ProcessLookupError:  # its writer is gone
                Path(directory, name).unlink(missing_ok=True)
                removed += 1
            except (ValueError, IndexError, PermissionError):  # not ours to judge
                continue
    return removed


def chunk_file(store: Path, name: str, index: tuple[int, ...], array: Any) -> Path:
    """The file of chunk ``index`` of ``array`` (named ``name`` in the local store at
    ``store``), by the array's own chunk key encoding: ``c.0.1`` (``.`` separator: sweeps
    since 2026-12) or ``c/0/1`` (zarr's default ``/``: stores written before, coordinates)."""
    return Path(store, name, *array.metadata.chunk_key_encoding.encode_chunk_key(index).split("/"))


def stored_chunk(store: str | Path, name: str, index: tuple[int, ...]) -> Path:
    """``chunk_file`` of array ``name`` of the store at ``store``, its metadata read here."""
    import zarr

    return chunk_file(Path(store), name, index, zarr.open_array(Path(store, name), mode="r"))


def marked_blocks(store: str | Path) -> list[tuple[int, ...]]:
    """The blocks whose completeness mark is on disk (``PROGRESS_ARRAY``'s chunk files, read
    as names, without zarr: to watch a running sweep); either chunk key encoding."""
    record = Path(store, PROGRESS_ARRAY)
    flat = [f.name.split(".")[1:] for f in record.glob("c.*")]
    nested = [f.relative_to(record / "c").parts for f in record.glob("c/**/*") if f.is_file()]
    return [
        tuple(int(i) for i in parts)
        for parts in flat + nested
        if parts and all(p.isdigit() for p in parts)  # not a file being written
    ]


#: root attr naming the stored grid axes in order (``limits.sweep.store.DIMS_ATTR``)
DIMS_ATTR = "limits_dims"


def block_arrays(group, n_dims: int, done_shape: tuple[int, ...]) -> dict:
    """The per-block data arrays of a store, each with the positions of its grid axes among
    the block grid's: every array over the grid axes (lean layout: over some of them, named
    by the ``limits_dims`` attr), not the coordinates, not the completeness record."""
    grid = [str(d) for d in group.attrs.get(DIMS_ATTR) or ()]
    out = {}
    for name, array in group.arrays():
        dims = tuple(array.metadata.dimension_names or ())
        if name in dims:
            continue
        if len(grid) == n_dims:
            positions = tuple(grid.index(d) for d in dims if d in grid)
            out[name] = (array, positions)
        elif len(array.shape) >= n_dims and tuple(array.cdata_shape[:n_dims]) == tuple(
            done_shape
        ):  # a store written before limits_dims: every variable over every axis
            out[name] = (array, tuple(range(n_dims)))
    return out


def damaged_blocks(path: str | Path, blocks=None) -> dict[tuple[int, ...], list[str]]:
    """Blocks marked written whose chunks are missing or do not decode (checksum mismatch,
    truncated file): block -> ``["FILE: reason", ...]``. ``blocks``: the blocks to check
    (default every block marked written). Reads each chunk once."""
    import zarr

    path = Path(path)
    group = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
    done = np.asarray(group[PROGRESS_ARRAY][...], dtype=bool)  # type: ignore[index]
    if blocks is None:
        blocks = [tuple(int(i) for i in ix) for ix in np.argwhere(done)]
    arrays = block_arrays(group, done.ndim, done.shape)
    every_chunk = group.attrs.get(INTEGRITY_ATTR) == INTEGRITY
    damaged: dict[tuple[int, ...], list[str]] = {}
    for block in blocks:
        for name, (array, positions) in arrays.items():
            if any(b != 0 for i, b in enumerate(block) if i not in positions):
                continue  # written by the block at 0 along the axes it lacks (lean layout)
            own = tuple(block[i] for i in positions)
            index = own + (0,) * (len(array.shape) - len(own))
            file = chunk_file(path, name, index, array)
            if not file.is_file():
                if not every_chunk:  # an older store: chunks equal to the fill are not written
                    continue
                damaged.setdefault(tuple(block), []).append(f"{file}: missing")
                continue
            try:
                array.blocks[index]
            except Exception as err:  # checksum mismatch, truncated or undecodable chunk
                reason = str(err).split(". Stored:")[0].splitlines()[0]
                damaged.setdefault(tuple(block), []).append(f"{file}: {reason}")
    return damaged


def describe_damage(
    path: Path, damaged: Mapping[tuple[int, ...], list[str]], limit: int = 4
) -> str:
    """One line naming the damaged files (the first few) and what to do."""
    files = [f for problems in damaged.values() for f in problems]
    shown = "; ".join(files[:limit]) + (
        f"; and {len(files) - limit} more" if len(files) > limit else ""
    )
    return (
        f"{path}: {len(damaged)} written block(s) damaged ({shown}); re-run the sweep's "
        f"command to recompute them (a resume re-computes damaged blocks)"
    )


#: attr recording the hash of the code that decides the stored numbers
SOURCE_HASH_ATTR = "limits_source_sha256"
#: the package files whose code decides stored numbers (relative to the ``limits`` package)
NUMBERS_CODE = (
    "model",
    "autodiff",
    "units.py",
    "sweep/blocks.py",
    "sweep/engine.py",
    "sweep/reduce.py",
    "sweep/grid.py",
    "sweep/config.py",
)


def source_hash() -> str:
    """SHA-256 over the source of the code that decides the stored numbers (``NUMBERS_CODE``),
    file names and contents in sorted order: equal hashes, same numbers for the same config."""
    import hashlib

    root = Path(__file__).resolve().parent.parent
    files: list[Path] = []
    for part in NUMBERS_CODE:
        target = root / part
        files.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def check_same_code(attrs: Mapping, path: Path) -> str | None:
    """Refuse to resume a store written by different model/engine code (its blocks would mix
    with new ones); return a note when the store predates the record."""
    stored = attrs.get(SOURCE_HASH_ATTR)
    if stored is None:
        checksums = (
            ""
            if attrs.get(INTEGRITY_ATTR) == INTEGRITY
            else f"; its chunks carry no checksums: add them with python -m limits.status "
            f"--upgrade {path}"
        )
        return (
            f"{path} records no code hash (written by an older limits): cannot tell whether "
            f"the code changed since{checksums}"
        )
    now = source_hash()
    if stored != now:
        raise StoreError(
            f"store {path} was written by different limits code (source sha256 "
            f"{stored[:12]} then, {now[:12]} now: {', '.join(NUMBERS_CODE)}); resuming would mix "
            f"old and new blocks. Use another store.path, or delete the store to start over"
        )
    return None


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete hidden siblings ``.NAME.tmp-PID-*`` of ``path`` left by killed writers of this
    machine (their PID no longer runs); return what was deleted. A previous store renamed
    aside (``...-old``, the two-rename fallback of ``replace_atomically``) whose writer died
    before the new one was in place is put back at ``path`` instead."""
    removed = []
    for tmp in sorted(path.parent.glob(f".{path.name}.tmp-*"), key=lambda p: p.name[-4:] != "-old"):
        try:
            pid = int(tmp.name.removeprefix(f".{path.name}.tmp-").split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:  # the writer is gone: its half-made copy is garbage
            if tmp.name.endswith("-old") and not path.exists() and not path.is_symlink():
                os.rename(tmp, path)  # killed between the fallback's two renames
                continue
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
        except (ValueError, PermissionError):  # not ours to judge
            continue
    return removed


def check_metadata(path: Path) -> None:
    """Refuse a store whose zarr metadata (``zarr.json`` files: one per group and array) do
    not parse, naming the files, before zarr fails on them without a file name."""
    bad = []
    for meta in sorted(Path(path).rglob("zarr.json")):
        try:
            json.loads(meta.read_text())
        except (OSError, ValueError) as err:
            bad.append(f"{meta} ({type(err).__name__}: {err})")
    if bad:
        raise StoreError(
            f"{path}: unreadable metadata in {'; '.join(bad)}; the store cannot be read or "
            f"resumed: delete it and re-run its command"
        )
