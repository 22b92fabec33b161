"""limits: a JAX engine for the analytical limits of LLM inference (see docs/model.md).

The stages, each a sub-package: ``limits.model`` (the physics: pure JAX functions of a
``Params`` pytree), ``limits.autodiff`` (elasticities, inverse design, global sensitivity),
``limits.sweep`` (Hydra config -> grid -> blocks -> zarr store), ``limits.analysis`` (open
stores, ask questions), ``limits.plots`` (figures) and ``limits.studies`` (documents
regenerated from stores). ``limits.presets`` loads the YAML presets; ``limits.errors`` holds
the one error hierarchy. The names below are the public API of the top level;
``limits.evaluate`` is the model compiled once per parameter layout (``limits.fast``).
"""

from limits.errors import LimitsError, ParameterError, UnitError
from limits.fast import evaluate
from limits.model.outputs import BOUND_LABELS, OUTPUTS
from limits.model.params import (
    Calibration,
    Deployment,
    Economics,
    Hardware,
    Model,
    Params,
    parameter_index,
)
from limits.presets import available, load_params, load_preset
from limits.units import parse_quantity

__version__ = "0.2.0"

__all__ = [
    "evaluate",
    "BOUND_LABELS",
    "OUTPUTS",
    "Calibration",
    "Deployment",
    "Economics",
    "Hardware",
    "Model",
    "LimitsError",
    "ParameterError",
    "Params",
    "parameter_index",
    "available",
    "load_params",
    "load_preset",
    "UnitError",
    "parse_quantity",
    "__version__",
]
