"""The trace cache: a block function's traced computation, saved with ``jax.export``.

JAX's persistent compilation cache (``limits.compile_cache``) saves the compile, but every
process still traces the model in Python and lowers it (0.3-0.4 s of a one-point CLI query on
2 cores) only to find that compile in the cache. With the trace cache on, a block function is
traced once through ``jax.export``; the serialized module (StableHLO) and what the trace found
(each output's axes, ``limits.sweep.blocks.axis_dependence``) are saved, and a later process
with the same key runs the module (``jax.jit(exported.call)``, its compile also cached)
without tracing.

The key is a SHA-256 over everything that decides the traced computation: the versions of jax
and jaxlib, the platform, ``jax_enable_x64``, the source of the code that decides the numbers
(``limits.sweep.integrity.source_hash``), the block function's settings and the structure,
static fields, shapes and dtypes of its inputs. A file that does not load is a miss. Saving is
best effort (a read-only cache, no ``flatbuffers``: the sweep traces as before).

Only entry points switch it on (``limits.compile_cache.enable_compilation_cache``), next to the
compilation cache and with the same opt-out; library code (tests, notebooks) always traces.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MAX_ENTRIES", "cache_key", "load", "save", "without_lapack"]

MAX_ENTRIES = 64  # traces kept; the oldest beyond this are deleted when one is saved
SUFFIX = ".jaxexport"

LOG = logging.getLogger("limits.sweep")


@functools.cache
def _code_hash() -> str:
    from limits.sweep.integrity import source_hash

    return source_hash()


def cache_key(settings: Sequence[Any], inputs: Any) -> str:
    """The key of a traced function: ``settings`` (its own, as ``repr``-able values) and
    ``inputs`` (a pytree of ``jax.ShapeDtypeStruct``: structure, static fields, shapes,
    dtypes, weak types) with the versions and the code that decide the trace."""
    import jax
    import jaxlib

    leaves, tree = jax.tree_util.tree_flatten(inputs)
    avals = [(tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type", False))) for x in leaves]
    parts = [
        jax.__version__,
        jaxlib.__version__,
        jax.default_backend(),
        bool(jax.config.jax_enable_x64),  # type: ignore[attr-defined]
        _code_hash(),
        repr(tuple(settings)),
        repr(tree),
        repr(avals),
    ]
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def load(directory: Path, key: str) -> tuple[Any, dict] | None:
    """The saved ``(jax.export.Exported, meta)`` under ``key``, or ``None`` (not saved, or a
    file that does not load: then it is deleted)."""
    import jax

    file = directory / f"{key}{SUFFIX}"
    try:
        blob = file.read_bytes()
        meta = json.loads(file.with_suffix(".json").read_text())
        exported = jax.export.deserialize(bytearray(blob))
    except FileNotFoundError:
        return None
    except Exception as err:  # truncated, from another jax, no flatbuffers: trace instead
        LOG.debug("limits.sweep: trace cache entry %s not used: %s", file, err)
        for f in (file, file.with_suffix(".json")):
            f.unlink(missing_ok=True)
        return None
    os.utime(file)  # recently used: kept by the pruning below
    return exported, meta


def save(directory: Path, key: str, exported: Any, meta: dict) -> None:
    """Save ``exported`` and ``meta`` (JSON) under ``key`` (each file written atomically,
    the module last, so that a reader never finds a module without its meta); keep the
    ``MAX_ENTRIES`` most recently used. Failures are logged and ignored."""
    from limits.sweep.integrity import write_file_atomically

    try:
        blob = exported.serialize()
        directory.mkdir(parents=True, exist_ok=True)
        write_file_atomically(directory / f"{key}.json", json.dumps(meta).encode())
        write_file_atomically(directory / f"{key}{SUFFIX}", bytes(blob))
        entries = sorted(directory.glob(f"*{SUFFIX}"), key=lambda f: f.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
    except Exception as err:  # read-only or full cache, no flatbuffers: nothing to keep
        LOG.debug("limits.sweep: trace not saved in %s: %s", directory, err)


@contextlib.contextmanager
def without_lapack(exported: Any) -> Iterator[None]:
    """While lowering a call of ``exported`` on the CPU, skip JAX's set-up of its LAPACK
    kernels (``jax._src.export._export._ensure_backends_initialized``), which imports SciPy
    (0.2 s of a 2 s query) for a module that calls none: the model is elementwise. Where the
    module names a LAPACK kernel, or this JAX has no such hook, nothing is skipped."""
    try:
        from jax._src.export import _export as internals
    except ImportError:  # pragma: no cover - a JAX without this module
        yield
        return
    original = getattr(internals, "_ensure_backends_initialized", None)
    if original is None or b"lapack" in bytes(exported.mlir_module_serialized):
        yield
        return
    internals._ensure_backends_initialized = lambda platforms: None
    try:
        yield
    finally:
        internals._ensure_backends_initialized = original
