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
from pathlib import Path

import numpy as np

from limits.errors import StoreError

__all__ = [
    "Completeness",
    "IncompleteStoreWarning",
    "completeness",
    "complete_command",
    "replace_atomically",
    "temporary_sibling",
]

PROGRESS_ARRAY = "_progress/block_done"  # the same record as limits.sweep.store
#: attr written last into a consolidated store (before its atomic rename)
CONSOLIDATED_COMPLETE_ATTR = "limits_consolidation_complete"


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
        group = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
        attrs = dict(group.attrs)
        done = (
            np.asarray(group[PROGRESS_ARRAY][...], dtype=bool)
            if "_progress" in group and "block_done" in group["_progress"]
            else None
        )
    except (OSError, ValueError, KeyError) as err:
        raise StoreError(f"{path}: cannot read its completeness record: {err}") from None
    if done is None and attrs.get("title", "").startswith("limits sweep (consolidated"):
        # a consolidated store is complete when the attr written last is there
        done = np.asarray([bool(attrs.get(CONSOLIDATED_COMPLETE_ATTR))])
        command = shlex.join(["python", "-m", "limits.sweep.consolidate", str(path.parent)])
        return Completeness(path, done, command)
    overrides = attrs.get("overrides") or []
    if isinstance(overrides, str):
        overrides = json.loads(overrides)
    return Completeness(path, done, complete_command(path, list(overrides)))


def temporary_sibling(path: Path) -> Path:
    """A hidden unique name next to ``path`` (same file system: renames are atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def replace_atomically(tmp: Path, path: Path) -> None:
    """Move the finished directory ``tmp`` to ``path``. An existing ``path`` is first renamed
    aside and deleted only after the new one is in place, so a kill at any moment leaves the
    old or the new directory at ``path`` (plus at most a hidden leftover), never half of one."""
    old = None
    if path.exists():
        old = temporary_sibling(path).with_name(temporary_sibling(path).name + "-old")
        os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.rename(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
