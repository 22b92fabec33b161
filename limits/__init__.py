"""limits: a JAX engine for the analytical limits of LLM inference (see docs/model.md)."""

from .model import evaluate
from .outputs import BOUND_LABELS, OUTPUTS
from .params import (Calibration, Deployment, Economics, Hardware, Model, ParameterError,
                     Params, parameter_index)
from .presets import available, load_params, load_preset
from .units import UnitError, parse_quantity

__version__ = "0.1.0"

__all__ = [
    "evaluate", "BOUND_LABELS", "OUTPUTS", "Calibration", "Deployment", "Economics", "Hardware",
    "Model", "ParameterError", "Params", "parameter_index", "available", "load_params",
    "load_preset", "UnitError", "parse_quantity", "__version__",
]
