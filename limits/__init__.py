"""limits: a JAX engine for the analytical limits of LLM inference (see docs/model.md).

The stages, each a sub-package: ``limits.model`` (the physics: pure JAX functions of a
``Params`` pytree), ``limits.autodiff`` (elasticities, inverse design, global sensitivity),
``limits.sweep`` (Hydra config -> grid -> blocks -> zarr store), ``limits.analysis`` (open
stores, ask questions), ``limits.plots`` (figures) and ``limits.studies`` (documents
regenerated from stores). ``limits.presets`` loads the YAML presets; ``limits.errors`` holds
the one error hierarchy. The names below are the public API of the top level;
``limits.evaluate`` is the model compiled once per parameter layout (``limits.fast``).

Each name is imported on first use (PEP 562), so that ``import limits`` (and every
``python -m limits.<stage>``, which imports this package first) costs nothing until a name is
needed: a command-line entry point can set up its process before JAX is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: public name -> the module that defines it
_WHERE = {
    "evaluate": "limits.fast",
    "BOUND_LABELS": "limits.model.outputs",
    "OUTPUTS": "limits.model.outputs",
    **dict.fromkeys(
        ("Calibration", "Deployment", "Economics", "Hardware", "Model", "Params"),
        "limits.model.params",
    ),
    "parameter_index": "limits.model.params",
    "LimitsError": "limits.errors",
    "ParameterError": "limits.errors",
    "UnitError": "limits.errors",
    "available": "limits.presets",
    "load_params": "limits.presets",
    "load_preset": "limits.presets",
    "parse_quantity": "limits.units",
}

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


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    raise AttributeError(f"module 'limits' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
