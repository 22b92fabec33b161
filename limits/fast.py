"""``limits.evaluate``: the model (``limits.model.evaluate``) compiled once per parameter layout.

Evaluated eagerly, the model dispatches several hundred small JAX operations per call (~85x slower
per point than a plain-Python peer); compiled, a warm call is one dispatch (tens of
microseconds). The compiled functions are kept in a bounded LRU cache keyed by what decides a
compile: the pytree structure of the parameters (their static fields, e.g. ``ffn``), each
numeric leaf's shape and dtype, and whether 64-bit JAX is on. A new point of the same layout
reuses the compiled function; a new layout (another broadcast shape, another model family)
compiles once more and may evict the least recently used one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from limits.model import evaluate as _model_evaluate
from limits.model.params import Params

__all__ = ["evaluate", "CACHE_SIZE", "cache_info", "cache_clear"]

CACHE_SIZE = 32  # compiled layouts kept (each a few hundred kB of executable)

_CACHE: OrderedDict[tuple, Callable] = OrderedDict()
_LOCK = threading.Lock()
_STATS = {"hits": 0, "misses": 0}


def _leaf_key(x: Any) -> tuple:
    """What a compile depends on for one leaf: shape, dtype, weak typing (Python numbers)."""
    if isinstance(x, (bool, int, float, complex)):
        return ((), type(x))
    return (
        np.shape(x),
        np.dtype(x.dtype),
        bool(getattr(getattr(x, "aval", x), "weak_type", False)),
    )


def evaluate(p: Params) -> dict[str, jax.Array]:
    """Every model output for ``p`` (names and units: ``limits.model.outputs.OUTPUTS``); the
    same numbers as ``limits.model.evaluate(p)``, compiled once per parameter layout. Numeric
    fields may be arrays that broadcast against each other (a grid). Works inside ``jax.jit``,
    ``jax.grad`` and ``jax.vmap`` too."""
    leaves, treedef = jax.tree_util.tree_flatten(p)
    x64 = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]
    key = (treedef, tuple(_leaf_key(x) for x in leaves), x64)
    with _LOCK:
        fn = _CACHE.get(key)
        if fn is not None:
            _CACHE.move_to_end(key)
            _STATS["hits"] += 1
        else:
            _STATS["misses"] += 1
            # a fresh wrapper per entry, so that evicting it frees its executable
            fn = _CACHE[key] = jax.jit(lambda q: _model_evaluate(q))
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
    return fn(p)


def cache_info() -> dict[str, int]:
    """``hits``, ``misses`` (= compiles) and ``size`` of the cache of compiled layouts."""
    with _LOCK:
        return {**_STATS, "size": len(_CACHE), "max_size": CACHE_SIZE}


def cache_clear() -> None:
    """Drop every compiled layout (and reset the counters)."""
    with _LOCK:
        _CACHE.clear()
        _STATS.update(hits=0, misses=0)
