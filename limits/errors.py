"""One error hierarchy: every error the package raises on purpose derives from ``LimitsError``.

Each keeps the built-in base it had (``ValueError`` for bad inputs, ``RuntimeError`` for store
faults), so ``except ValueError`` in user code still works. Messages are one line that names
the bad parameter (or file) and what is allowed.
"""

from __future__ import annotations

__all__ = [
    "LimitsError",
    "ParameterError",
    "UnitError",
    "ReduceError",
    "DeviceError",
    "StoreError",
    "ConsolidateError",
    "SweepError",
]


class LimitsError(Exception):
    """Base of every error this package raises on purpose."""


class ParameterError(LimitsError, ValueError):
    """A parameter value outside its allowed range; the message names the parameter."""


class UnitError(LimitsError, ValueError):
    """A quantity whose unit does not fit the parameter (or cannot be parsed)."""


class ReduceError(LimitsError, ValueError):
    """A reduction setting that cannot be applied to the grid."""


class DeviceError(LimitsError, ValueError):
    """A device setting that cannot be satisfied on this machine."""


class SweepError(ParameterError):
    """A sweep setting that cannot run (grid, shards, size limits)."""


class StoreError(LimitsError, RuntimeError):
    """A zarr store that cannot be created, opened, resumed or written."""


class ConsolidateError(StoreError):
    """Job stores that cannot be consolidated into one."""
