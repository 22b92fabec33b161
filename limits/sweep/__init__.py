"""The sweep stage: Hydra config -> grid -> blocks -> a model-free engine -> zarr store.

``python -m limits.sweep [overrides]`` runs the main job. Modules: ``config`` (schemas,
parameters from a config), ``grid`` (named 1-D axes), ``blocks`` (the per-block function: the
model, elasticities, reduction), ``engine`` (blocks in, host arrays out; knows no physics),
``reduce``, ``devices``, ``store``, ``consolidate``, ``job`` (the Hydra job itself).
"""

from limits.errors import SweepError
from limits.sweep.job import CONF_DIR, USER_ERRORS, SweepResult, compose, main, run, run_overrides

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
