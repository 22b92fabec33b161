"""The sweep stage: Hydra config -> grid -> blocks -> a model-free engine -> zarr store.

``python -m limits.sweep [overrides]`` runs the main job. Modules: ``config`` (schemas,
parameters from a config), ``grid`` (named 1-D axes), ``blocks`` (the per-block function: the
model, elasticities, reduction), ``traces`` (its trace cache), ``engine`` (blocks in, host
arrays out; knows no physics), ``reduce``, ``devices``, ``store``, ``consolidate``, ``job``
(the Hydra job itself).

The names below come from ``job`` on first use (PEP 562): ``python -m limits.sweep`` imports
this package before its ``__main__``, which sets up the process before JAX is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from limits.errors import SweepError

if TYPE_CHECKING:
    from limits.sweep.job import (
        CONF_DIR,
        USER_ERRORS,
        SweepResult,
        compose,
        main,
        run,
        run_overrides,
    )

__all__ = [
    "CONF_DIR",
    "USER_ERRORS",
    "SweepError",
    "SweepResult",
    "compose",
    "main",
    "run",
    "run_overrides",
]

_FROM_JOB = frozenset(__all__) - {"SweepError"}


def __getattr__(name: str) -> Any:
    if name in _FROM_JOB:
        from limits.sweep import job

        value = getattr(job, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'limits.sweep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
