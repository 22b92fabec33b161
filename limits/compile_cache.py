"""JAX's persistent compilation cache, switched on by the command-line entry points.

A sweep compiles its block function once per process (0.3-0.8 s on 2 cores); with the cache a
second run of the same shapes loads the executable from disk instead. Only entry points call
``enable_compilation_cache`` (``python -m limits.sweep``, the benchmark); importing ``limits``
never changes JAX's settings.

Where: ``$LIMITS_COMPILATION_CACHE`` if it names a directory, else
``$XDG_CACHE_HOME/limits/jax`` (default ``~/.cache/limits/jax``). Opt out with
``LIMITS_COMPILATION_CACHE=0`` (or ``off``/``false``/``no``) or the config setting
``limits.compilation_cache=false``. A directory already given to JAX (``JAX_COMPILATION_CACHE_DIR``)
is kept. Several processes may share the directory: the size bound below switches on JAX's
file lock around every read and write (``filelock``), and the least recently used entries are
evicted beyond ``MAX_BYTES``.

The same switch turns on the trace cache (``limits.sweep.traces``) in the sub-directory
``TRACE_SUBDIR``: with it, a second run of the same sweep neither traces nor compiles.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ENV",
    "MAX_BYTES",
    "MIN_COMPILE_S",
    "TRACE_SUBDIR",
    "cache_dir",
    "enable_compilation_cache",
    "trace_cache_dir",
]

ENV = "LIMITS_COMPILATION_CACHE"
MAX_BYTES = 1 << 30  # bound of the cache directory [B]; a block function takes ~0.1-1 MB
MIN_COMPILE_S = 0.1  # cache only compiles slower than this [s] (not the many tiny eager ops)
_OFF = ("0", "off", "false", "no", "none")
_ON = ("", "1", "on", "true", "yes")
TRACE_SUBDIR = "limits-traces"  # the trace cache, inside the compilation cache's directory
_TRACE_DIR: list[Path] = []  # set by enable_compilation_cache: this process' trace cache


def trace_cache_dir() -> Path | None:
    """The trace cache's directory when an entry point switched the caches on, else ``None``."""
    return _TRACE_DIR[0] if _TRACE_DIR else None


def cache_dir() -> Path | None:
    """The cache directory chosen by ``$LIMITS_COMPILATION_CACHE`` (``None``: switched off)."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value.lower() not in _ON:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "limits" / "jax"


def enable_compilation_cache(enabled: bool = True) -> Path | None:
    """Point JAX's persistent compilation cache at ``cache_dir()``; call it from an entry
    point before anything is compiled. Returns the directory in use, or ``None`` when the
    cache stays off (``enabled`` false, opted out, or the directory cannot be created)."""
    import jax

    path = cache_dir() if enabled else None
    if path is None:
        return None
    chosen = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if chosen:  # the user chose one for JAX itself
        _TRACE_DIR[:] = [Path(chosen) / TRACE_SUBDIR]
        return Path(chosen)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home, no space: run without the cache rather than fail
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    _TRACE_DIR[:] = [path / TRACE_SUBDIR]
    return path
