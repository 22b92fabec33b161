"""Spreading one block over the local devices with JAX sharding.

A 1-D ``Mesh`` over the chosen devices; the block's largest axis whose block length divides by the
device count is split across them (``NamedSharding``), every other axis and the base parameters are
replicated. Each device then evaluates its slice of the block; the compiled function is still one
per sweep. When no axis divides (or one device is chosen), the block runs on one device, unsharded.
Axes a reduction removes inside the block (``limits.sweep.reduce``) are never split, so each device
reduces whole groups.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from limits.errors import DeviceError

__all__ = ["DeviceError", "BlockSharding", "select_devices", "block_sharding"]

MESH_AXIS = "devices"


def select_devices(spec: Any) -> tuple[Any, ...]:
    """The devices named by ``spec``: ``"all"`` (every local device) or a whole number
    ``n >= 1`` (the first ``n``)."""
    local = tuple(jax.local_devices())
    if spec in ("all", None):
        return local
    try:
        n = int(spec)
        whole = not isinstance(spec, bool) and float(spec) == n and n >= 1
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise DeviceError(
            f"devices = {spec!r}; allowed: all, or a whole number >= 1 (how "
            f"many local devices share each block)"
        )
    if n > len(local):
        raise DeviceError(
            f"devices = {n} but there are only {len(local)} local "
            f"{local[0].platform} devices; allowed: all, or 1 to {len(local)}"
        )
    return local[:n]


@dataclasses.dataclass(frozen=True)
class BlockSharding:
    """How a block is laid out: ``axis`` (index into the block shape) split over ``devices``;
    ``axis is None``: one device, no sharding."""

    devices: tuple[Any, ...]
    axis: int | None
    out_axis: int | None = None  # position of ``axis`` in the outputs (default: ``axis``)

    @property
    def n_devices(self) -> int:
        return len(self.devices) if self.axis is not None else 1

    def jit(self, fn: Any, rank: int) -> Any:
        """``jax.jit(fn)`` with inputs ``(base, axis_values)`` and outputs laid out on the
        mesh: the chosen axis' values sharded, everything else replicated."""
        if self.axis is None:
            return jax.jit(fn)
        mesh = Mesh(list(self.devices), (MESH_AXIS,))
        replicated = NamedSharding(mesh, PartitionSpec())
        split = NamedSharding(mesh, PartitionSpec(MESH_AXIS))
        axis_values = tuple(split if i == self.axis else replicated for i in range(rank))
        return jax.jit(fn, in_shardings=(replicated, axis_values))

    def constrain(self, x: Any, axes: Sequence[int]) -> Any:
        """Inside the jitted function: lay out output ``x``, whose leading dims are the kept
        axes at positions ``axes``, split along the chosen axis where it has it, else
        replicated (an output stored over fewer axes: ``limits.sweep.blocks``, lean layout)."""
        if self.axis is None:
            return x
        out_axis = self.axis if self.out_axis is None else self.out_axis
        spec = [MESH_AXIS if a == out_axis else None for a in axes]
        mesh = Mesh(list(self.devices), (MESH_AXIS,))
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec(*spec)))


def block_sharding(
    block_shape: Sequence[int], devices: Sequence[Any], keep: Sequence[int] | None = None
) -> BlockSharding:
    """Split the largest block axis whose length divides by ``len(devices)``; fall back to
    one device when there is a single device or no such axis. ``keep``: the axes that the
    outputs still have, in order (default: all); only those may be split."""
    n = len(devices)
    keep = tuple(range(len(block_shape))) if keep is None else tuple(keep)
    candidates = [i for i in keep if n > 1 and block_shape[i] % n == 0]
    if not candidates:
        return BlockSharding(tuple(devices[:1]), None)
    axis = max(candidates, key=lambda i: (block_shape[i], -i))
    return BlockSharding(tuple(devices), axis, keep.index(axis))
