"""Presets: YAML files under ``conf/<group>/<name>.yaml`` turned into parameter objects.

``load_params("xpu_hbm3", "llama3_405b", tp=32)`` is the plain-Python way in (tests,
notebooks); the sweep reaches the same files through Hydra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from limits.model.params import (
    Calibration,
    Deployment,
    Economics,
    Hardware,
    Model,
    ParameterError,
    Params,
)

__all__ = ["CONF_DIR", "available", "load_preset", "load_params"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def available(group: str) -> list[str]:
    """Names of the presets of ``group`` (``hardware``, ``model``, ``grid`` ...)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_preset(group: str, name: str) -> dict[str, Any]:
    """The raw mapping (values may carry units) of one preset."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ParameterError(
            f"unknown {group} preset {name!r}; available: {', '.join(available(group))}"
        )
    with path.open() as fh:
        return yaml.safe_load(fh) or {}


def load_params(
    hardware: str | Hardware = "xpu_hbm3", model: str | Model = "llama3_405b", **overrides: Any
) -> Params:
    """Params from a hardware and a model preset (names or objects) plus flat overrides such as
    ``tp=32`` or ``mem_bw="8 TiB/s"``; unset deployment/calibration fields take defaults."""
    hw = (
        hardware
        if isinstance(hardware, Hardware)
        else Hardware.from_mapping(load_preset("hardware", hardware))
    )
    mdl = model if isinstance(model, Model) else Model.from_mapping(load_preset("model", model))
    params = Params(hw, mdl, Deployment(), Calibration(), Economics())
    return params.replace(**_parse_overrides(overrides)) if overrides else params


def _parse_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    from limits.model.params import parameter_index
    from limits.units import parse_quantity

    index = parameter_index()
    parsed = {}
    for name, value in overrides.items():
        if name not in index:
            raise ParameterError(f"unknown parameter {name!r}; valid: {', '.join(index)}")
        parsed[name] = (
            value
            if not isinstance(value, str)
            else parse_quantity(value, index[name][1].unit, name)
        )
    return parsed
