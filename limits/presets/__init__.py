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

__all__ = ["CONF_DIR", "REQUIRED", "available", "load_preset", "load_params", "missing_line"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def available(group: str) -> list[str]:
    """Names of the presets of ``group`` (``hardware``, ``model``, ``grid`` ...)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


#: keys a hardware or model preset must set itself: their defaults in ``limits.model.params``
#: are one particular chip or model (the LIMINAL paper's xPU-HBM3 and Llama-3.1-405B), not a
#: neutral "none", so a file that leaves one out would silently describe part of another chip.
#: The other keys default to a documented "none" (0: no 8-bit path, inf: latency only, ...).
REQUIRED: dict[str, tuple[str, ...]] = {
    "hardware": (
        "mem_bw",
        "mem_capacity",
        "peak_flops",
        "sync_latency",
        "sync_latency_intra_node",
        "pipeline_latency",
        "node_size",
        "chip_power",
        "node_power",
    ),
    "model": ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head", "d_ff", "vocab"),
}

#: the preset a file may start from, named in the refusal
_BASE = {"hardware": "xpu_hbm3", "model": "llama3_405b"}


def missing_line(group: str, name: str, missing: list[str]) -> str:
    """The refusal of a preset that leaves out ``REQUIRED`` keys: which, and the two ways on."""
    return (
        f"{group} {name}: no value for {', '.join(missing)} (a {group} preset sets each of "
        f"them; none is taken from another {group} silently): set them in the file or as "
        f"{group}.{missing[0]}=..., or start from a preset explicitly with the line "
        f"'defaults: [{_BASE[group]}, _self_]' at the top of the file"
    )


def load_preset(group: str, name: str) -> dict[str, Any]:
    """The raw mapping (values may carry units) of one preset; a file that starts from other
    presets of its group (Hydra's ``defaults: [base, _self_]``) is merged over them in that
    order (``_self_`` last when not listed), as Hydra composes it."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ParameterError(
            f"unknown {group} preset {name!r}; available: {', '.join(available(group))}"
        )
    with path.open() as fh:
        own = yaml.safe_load(fh) or {}
    order = own.pop("defaults", None) or []
    if not isinstance(order, list) or not all(isinstance(e, str) for e in order):
        raise ParameterError(
            f"{group} {name}: defaults = {order!r}; give a list of {group} preset names "
            f"(and _self_), e.g. [{_BASE.get(group, 'base')}, _self_]"
        )
    if "_self_" not in order:
        order = [*order, "_self_"]
    merged: dict[str, Any] = {}
    for entry in order:
        merged.update(own if entry == "_self_" else load_preset(group, entry))
    return merged


def _checked(group: str, name: str, values: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in REQUIRED[group] if k not in values]
    if missing:
        raise ParameterError(missing_line(group, name, missing))
    return values


def load_params(
    hardware: str | Hardware = "xpu_hbm3", model: str | Model = "llama3_405b", **overrides: Any
) -> Params:
    """Params from a hardware and a model preset (names or objects) plus flat overrides such as
    ``tp=32`` or ``mem_bw="8 TiB/s"``; unset deployment/calibration fields take defaults."""
    hw = (
        hardware
        if isinstance(hardware, Hardware)
        else Hardware.from_mapping(
            _checked("hardware", hardware, load_preset("hardware", hardware))
        )
    )
    mdl = (
        model
        if isinstance(model, Model)
        else Model.from_mapping(_checked("model", model, load_preset("model", model)))
    )
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
