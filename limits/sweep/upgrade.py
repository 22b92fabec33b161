"""Stores written before checksums (limits before CRC32C and the code hash): say so, and add
the checksums (``python -m limits.status --upgrade STORE``).

Such a store's chunks carry no CRC32C, so a flipped bit reads as a number; chunks equal to the
fill value were not written, so a deleted chunk cannot be told from one; and it records no
hash of the code that wrote it, so a resume cannot tell whether the code changed. ``upgrade``
first reads every chunk back (a chunk that does not decode refuses the upgrade, naming the
file, changing nothing), then writes a copy whose block arrays carry the CRC32C codec with
every chunk written, checks that the copy holds the same numbers, and swaps it into place in
one step (``replace_atomically``). The code hash is not invented: the store keeps saying that
it has none.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from limits.errors import StoreError
from limits.sweep.integrity import (
    INTEGRITY,
    INTEGRITY_ATTR,
    PROGRESS_ARRAY,
    SOURCE_HASH_ATTR,
    block_arrays,
    check_metadata,
    chunk_file,
    damaged_blocks,
    replace_atomically,
    temporary_sibling,
)

__all__ = ["integrity_notes", "upgrade", "upgrade_command"]


def upgrade_command(path: Path) -> str:
    return f"python -m limits.status --upgrade {path}"


def integrity_notes(path: Path, attrs: Any) -> list[str]:
    """What a sweep store lacks of the integrity record (checksums, code hash), one line each,
    with what to do; ``[]`` for a store written with both."""
    notes = []
    if attrs.get(INTEGRITY_ATTR) != INTEGRITY:
        notes.append(
            f"{path}: written before checksums (its chunks carry no CRC32C: a flipped bit "
            f"reads as a number, a deleted chunk as the fill value); add them with: "
            f"{upgrade_command(path)}"
        )
    if SOURCE_HASH_ATTR not in attrs:
        notes.append(
            f"{path}: records no hash of the code that wrote it: a resume cannot tell whether "
            f"the code changed since (a complete store needs no resume; an incomplete one is "
            f"safest re-run into a new store.path)"
        )
    return notes


def _open(path: Path) -> Any:
    import zarr

    from limits.sweep.store import quiet_zarr_warnings

    check_metadata(path)  # a zarr.json that does not parse is named
    if not (path / PROGRESS_ARRAY / "zarr.json").is_file():
        raise StoreError(
            f"{path} is not a limits sweep store (no {PROGRESS_ARRAY}); a consolidated store "
            f"is upgraded by upgrading its job stores and running python -m "
            f"limits.sweep.consolidate DIR again"
        )
    with quiet_zarr_warnings():
        return zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)


def _unreadable(path: Path, arrays: dict[str, Any]) -> list[str]:
    """``FILE: reason`` of every chunk of ``arrays`` that does not decode."""
    bad = []
    for name, array in arrays.items():
        for index in np.ndindex(*array.cdata_shape):
            try:
                array.blocks[index]
            except Exception as err:  # truncated or undecodable chunk: any codec's error
                bad.append(f"{chunk_file(path, name, index, array)}: {str(err).splitlines()[0]}")
    return bad


def _rewrite(tmp: Path, arrays: dict[str, Any]) -> None:
    """Replace each of ``arrays`` in the copy ``tmp`` by one with the CRC32C codec appended,
    every chunk written (as ``limits.sweep`` writes them now), chunk by chunk."""
    import zarr
    from zarr.codecs import Crc32cCodec

    root = zarr.open_group(tmp, mode="r+", zarr_format=3, use_consolidated=False)
    for name, old in arrays.items():
        new = root.create_array(
            name,
            shape=old.shape,
            chunks=old.chunks,
            dtype=old.dtype,
            fill_value=old.fill_value,
            filters=old.filters,
            serializer=old.serializer,
            compressors=(*old.compressors, Crc32cCodec()),
            attributes=dict(old.attrs),
            dimension_names=old.metadata.dimension_names,
            overwrite=True,
            config={"write_empty_chunks": True},
        )
        for index in np.ndindex(*old.cdata_shape):
            new.blocks[index] = old.blocks[index]
    root.attrs[INTEGRITY_ATTR] = INTEGRITY
    if json.loads((tmp / "zarr.json").read_text()).get("consolidated_metadata") is not None:
        zarr.consolidate_metadata(tmp, zarr_format=3)  # the copy's metadata, not the old codecs


def _same_numbers(tmp: Path, arrays: dict[str, Any]) -> None:
    import zarr

    copy: Any = zarr.open_group(tmp, mode="r", zarr_format=3, use_consolidated=False)
    for name, old in arrays.items():
        if not np.array_equal(old[...], copy[name][...], equal_nan=old.dtype.kind == "f"):
            raise StoreError(f"{tmp}: the upgraded copy of {name} differs; nothing was changed")


def upgrade(path: str | Path) -> str:
    """Add CRC32C checksums to the sweep store at ``path`` (see the module docstring); return
    one line saying what was done. Raises ``StoreError`` (nothing changed) when the store
    cannot be read or is not a sweep store."""
    from limits.sweep.store import quiet_zarr_warnings

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path} is not a zarr store (no zarr.json)")
    group = _open(path)
    if group.attrs.get(INTEGRITY_ATTR) == INTEGRITY:
        return f"{path}: already has checksums; nothing to do"
    done = np.asarray(group[PROGRESS_ARRAY][...], dtype=bool)
    arrays = {n: a for n, (a, _) in block_arrays(group, done.ndim, done.shape).items()}
    bad = _unreadable(path, arrays)
    if bad:
        shown = "; ".join(bad[:4]) + (f"; and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise StoreError(
            f"{path}: cannot add checksums: {len(bad)} chunk(s) do not decode ({shown}); "
            f"nothing was changed: re-run its command into a new store.path"
        )
    tmp = temporary_sibling(path)
    try:
        shutil.copytree(path, tmp)
        with quiet_zarr_warnings():
            _rewrite(tmp, arrays)
            _same_numbers(tmp, arrays)
        damaged = damaged_blocks(tmp)
        if damaged:  # cannot be: every chunk was just written and read back
            raise StoreError(f"{tmp}: the upgraded copy fails its own check: {damaged}")
        replace_atomically(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return (
        f"{path}: checksums added ({len(arrays)} arrays, every chunk read back and "
        f"rewritten with CRC32C; the numbers are unchanged)"
    )
