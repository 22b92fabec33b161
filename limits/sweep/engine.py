"""Blocked evaluation of a grid: fixed-shape blocks, one jitted function, overlapped writes.

The grid is cut into hyper-rectangular blocks of one fixed shape (the zarr chunk shape). The
last block along an axis is padded by repeating the edge value and cropped after evaluation,
so every call has the same shapes and the block function compiles exactly once. Blocks are
dispatched asynchronously; a single background thread pulls finished blocks from a bounded
queue, converts them to host arrays and hands them to a sink (the store writer), so device
compute of block k+1 overlaps the write of block k and memory stays bounded by
``(queue_size + 2)`` blocks.

With a reduction (``limits.sweep.reduce``), the reduced axes lie whole inside every block, the block
function returns arrays without them, and the plan's ``stored_*`` helpers map a block to its
region of the (smaller) store.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["BlockPlan", "cast_params", "run_blocks"]


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """How a grid (``axes``, in dimension order) is cut into blocks of shape ``chunks``."""

    axes: Mapping[str, np.ndarray]
    chunks: tuple[int, ...]
    reduced: tuple[str, ...] = ()  # axes reduced away inside each block (whole in a block)

    def __post_init__(self) -> None:
        for name in self.reduced:
            i = self.names.index(name)
            if self.chunks[i] != self.shape[i]:
                raise ValueError(
                    f"reduced axis {name} must lie whole in a block: chunk "
                    f"{self.chunks[i]} != length {self.shape[i]}"
                )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def n_blocks(self) -> tuple[int, ...]:
        return tuple(-(-n // c) for n, c in zip(self.shape, self.chunks))

    def blocks(self) -> Iterable[tuple[int, ...]]:
        """Block indices in C order."""
        return np.ndindex(*self.n_blocks)

    def region(self, block: tuple[int, ...]) -> tuple[slice, ...]:
        """Grid slices covered by ``block`` (cropped at the grid's end)."""
        return tuple(
            slice(b * c, min((b + 1) * c, n)) for b, c, n in zip(block, self.chunks, self.shape)
        )

    def points(self, block: tuple[int, ...]) -> int:
        return math.prod(s.stop - s.start for s in self.region(block))

    def axis_values(self, block: tuple[int, ...], dtype: Any) -> tuple[np.ndarray, ...]:
        """Each axis' values in ``block``, padded to the block length by repeating the edge."""
        out = []
        for v, s, c in zip(self.axes.values(), self.region(block), self.chunks):
            part = v[s]
            out.append(np.pad(part, (0, c - len(part)), mode="edge").astype(dtype))
        return tuple(out)

    def crop(self, block: tuple[int, ...]) -> tuple[slice, ...]:
        """Slices that crop a padded block result to its real extent."""
        return tuple(slice(0, s.stop - s.start) for s in self.region(block))

    def _kept(self, values: tuple) -> tuple:
        return tuple(v for n, v in zip(self.names, values) if n not in self.reduced)

    @property
    def stored_names(self) -> tuple[str, ...]:
        """Dims of the stored arrays: the axes not reduced away."""
        return self._kept(self.names)

    @property
    def stored_chunks(self) -> tuple[int, ...]:
        return self._kept(self.chunks)

    def stored_block(self, block: tuple[int, ...]) -> tuple[int, ...]:
        """Index of ``block`` among the stored chunks (reduced axes have one block)."""
        return self._kept(block)

    def stored_region(self, block: tuple[int, ...]) -> tuple[slice, ...]:
        """Region of the store that ``block`` fills."""
        return self._kept(self.region(block))

    def stored_crop(self, block: tuple[int, ...]) -> tuple[slice, ...]:
        """Slices that crop a (reduced) padded block result to its real extent."""
        return self._kept(self.crop(block))

    def owns(self, block: tuple[int, ...], axes: tuple[int, ...]) -> bool:
        """Whether ``block`` writes the chunk of a variable stored over the kept axes at
        positions ``axes`` (lean layout): the one block at index 0 along every other kept axis,
        so each chunk is written once, by one block (and one shard)."""
        return all(b == 0 for i, b in enumerate(self.stored_block(block)) if i not in axes)


def cast_params(params: Any, dtype: Any) -> Any:
    """Every numeric leaf as a 0-d array of ``dtype`` (strict dtype promotion then holds),
    cast on the host and moved to the device in one transfer (not one per leaf)."""
    host = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=dtype), params)
    return jax.device_put(host)


_STOP = object()


def run_blocks(
    fn: Callable,
    base: Any,
    plan: BlockPlan,
    blocks: Iterable[tuple[int, ...]],
    dtype: Any,
    sink: Callable[[tuple[int, ...], dict[str, np.ndarray]], None],
    queue_size: int = 2,
    axes: Mapping[str, tuple[int, ...]] | None = None,
) -> None:
    """Evaluate ``blocks`` with ``fn`` and pass each cropped host result to ``sink``.

    **Arguments:** ``fn``: the jitted block function; ``base``: params cast to ``dtype``;
    ``plan``: the block plan; ``blocks``: indices to evaluate (in order); ``sink(block,
    arrays)``: called in one background thread, in block order; ``queue_size``: blocks that
    may wait for the writer; ``axes``: for outputs stored over fewer kept axes (lean layout),
    their positions among the kept axes (default: every output has all of them).

    Exceptions in the sink (or a ``KeyboardInterrupt`` here) stop the sweep; blocks already
    handed to the sink are finished first, so a block is never left half-recorded.
    """
    pending: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
    failure: list[BaseException] = []

    def writer() -> None:
        while True:
            item = pending.get()
            if item is _STOP:
                return
            if failure:
                continue  # drain without writing after an error
            block, result = item
            try:
                crop = plan.stored_crop(block)
                host = {
                    k: np.asarray(v)[
                        crop if axes is None or k not in axes else tuple(crop[i] for i in axes[k])
                    ]
                    for k, v in result.items()
                }
                del result
                sink(block, host)
            except BaseException as err:
                failure.append(err)

    thread = threading.Thread(target=writer, name="limits-writer", daemon=True)
    thread.start()
    try:
        for block in blocks:
            if failure:
                break
            result = fn(base, tuple(jnp.asarray(v) for v in plan.axis_values(block, dtype)))
            while True:
                try:
                    pending.put((block, result), timeout=0.1)
                    break
                except queue.Full:
                    if failure:
                        break
    finally:
        pending.put(_STOP)
        thread.join()
    if failure:
        raise failure[0]
