"""What a command-line entry point does for its own process only (``python -m limits.sweep``,
``python -m limits.query``); library code never calls it.

``entry_point()`` tunes CPython's cyclic garbage collector, which otherwise costs these short
processes more than their own work (measured on 2 cores with the collector's callbacks):

- while running: the default thresholds (700, 10, 10) collect the youngest generation every
  700 allocations; tracing the model allocates millions of short-lived objects, so a one-point
  sweep ran ~370 collections, two of them over the whole heap (0.3-0.5 s; a preset query
  ~550 collections, ~1 s). Thresholds of (50 000, 20, 100) leave 5-7 collections (0.15-0.3 s).
  Objects freed by reference counting (nearly all) are freed at once either way;
- at exit: CPython collects once more over every object that jax, XLA's bindings, Hydra and
  zarr created (0.3-0.5 s of CPU for a process whose answer is already written).
  ``gc.freeze()`` as an exit handler moves every live object to the permanent generation,
  which that collection skips; the operating system frees the memory. The other exit handlers
  still run (JAX's, zarr's, logging's flush of log files); none needs a collection.
"""

from __future__ import annotations

import atexit
import gc

__all__ = ["GC_THRESHOLDS", "entry_point"]

#: the collector's thresholds in an entry point's process (CPython's default: 700, 10, 10)
GC_THRESHOLDS = (50_000, 20, 100)

_REGISTERED: list[bool] = []


def entry_point() -> None:
    """Call once at the start of a command-line entry point (idempotent): fewer collections
    while it runs, none over the whole heap at exit."""
    gc.set_threshold(*GC_THRESHOLDS)
    if not _REGISTERED:
        atexit.register(gc.freeze)
        _REGISTERED.append(True)
