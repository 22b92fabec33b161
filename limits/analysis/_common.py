"""Shared helpers of the analysis layer: resolving variable names (stored, derived or negated),
reading parameter values from coordinates or provenance, axis labels with units."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np
import xarray as xr
import yaml

from limits.model.outputs import OUTPUTS
from limits.model.params import parameter_index
from limits.sweep.reduce import BEST_PREFIX
from limits.units import parse_quantity

__all__ = [
    "metric",
    "parameter",
    "label",
    "over_dims",
    "point_dims",
    "feasible_mask",
    "DERIVED",
    "broadcast_to_points",
    "preset_name",
]


def _tbt(ds: xr.Dataset) -> xr.DataArray:
    if "tokens_per_step" in ds:
        return ds["step_time"] / ds["tokens_per_step"]
    return ds["step_time"]  # no speculative decoding: one token per step


def _chips(ds: xr.Dataset) -> Any:
    return parameter(ds, "tp", 1.0) * parameter(ds, "pp", 1.0) * parameter(ds, "replicas", 1.0)


#: name -> (variables needed, function of the dataset, note). Used when ``name`` is not stored.
DERIVED: dict[str, tuple[tuple[str, ...], Callable[[xr.Dataset], Any], str]] = {
    "tokens_per_usd": (
        ("cost_per_mtok",),
        lambda ds: 1e6 / ds["cost_per_mtok"],
        "1e6 / cost_per_mtok",
    ),
    "stps_per_watt": (("stps", "power"), lambda ds: ds["stps"] / ds["power"], "stps / power"),
    "tbt": (
        ("step_time",),
        _tbt,
        "step_time / tokens_per_step (1 token per step if tokens_per_step is not stored)",
    ),
    "kv_share": (
        ("kv_bytes_read", "bytes_per_step"),
        lambda ds: ds["kv_bytes_read"] / ds["bytes_per_step"],
        "kv_bytes_read / bytes_per_step",
    ),
    "arithmetic_intensity": (
        ("flops_per_step", "bytes_per_step"),
        lambda ds: ds["flops_per_step"] / ds["bytes_per_step"],
        "flops_per_step / bytes_per_step",
    ),
    "chips": ((), _chips, "tp x pp x replicas (coordinates or provenance, default 1)"),
    "stps_per_chip": (("stps",), lambda ds: ds["stps"] / _chips(ds), "stps / chips"),
}

_DERIVED_UNITS = {
    "tokens_per_usd": OUTPUTS["tokens_per_usd"],
    "stps_per_watt": OUTPUTS["stps_per_watt"],
    "tbt": OUTPUTS["tbt"],
    "kv_share": ("1", "KV-cache share of bytes read per step"),
    "arithmetic_intensity": OUTPUTS["arithmetic_intensity"],
    "chips": OUTPUTS["chips"],
    "stps_per_chip": ("tok/s/chip", "system tokens per second per chip"),
}


def metric(ds: xr.Dataset, name: str) -> xr.DataArray:
    """The variable ``name`` of ``ds``: a stored data variable or coordinate, else one derived
    from stored variables (``DERIVED``); a leading ``-`` negates it (to maximise ``-cost``).

    **Raises:** ``KeyError`` naming the variable and listing what is available.
    """
    if ds.attrs.get("limits_incomplete"):  # set by open_results(allow_incomplete=True)
        from limits.sweep.integrity import IncompleteStoreWarning

        warnings.warn(str(ds.attrs["limits_incomplete"]), IncompleteStoreWarning, stacklevel=2)
    negate = name.startswith("-")
    base = name[1:] if negate else name
    if base in ds.variables:
        da = ds[base]
    elif base in DERIVED and all(v in ds.variables for v in DERIVED[base][0]):
        needs, fn, note = DERIVED[base]
        value = fn(ds)
        da = value if isinstance(value, xr.DataArray) else xr.DataArray(value)
        units, long_name = _DERIVED_UNITS[base]
        da = da.rename(base).assign_attrs(units=units, long_name=long_name, derived_as=note)
    else:
        derivable = [
            k for k, (needs, _, _) in DERIVED.items() if all(v in ds.variables for v in needs)
        ]
        raise KeyError(
            f"unknown variable {base!r}; stored: {', '.join(map(str, ds.data_vars))};"
            f" coordinates: {', '.join(map(str, ds.coords))}; derivable: "
            f"{', '.join(derivable) or 'none'}"
        )
    if negate:
        da = (-da).assign_attrs(da.attrs).rename(name)
    return da


#: libyaml's parser when PyYAML was built with it: the same documents, ~10x faster than the
#: pure-Python one (a query reads the provenance config several times)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_config(text: Any) -> dict:
    cfg = yaml.load(text, Loader=_SAFE_LOADER) if isinstance(text, str) else text
    return cfg if isinstance(cfg, dict) else {}


def _scalar_label(ds: xr.Dataset, group: str) -> str | None:
    if group in ds.coords and ds[group].size == 1:
        return str(ds[group].values.item())
    return None


def _configs(ds: xr.Dataset) -> list[dict]:
    """The provenance configs that apply to ``ds``: of a multirun (a ``jobs`` record), those of
    the jobs still in ``ds`` (after ``sel(hardware=..., model=...)``); else the store's own."""
    try:
        jobs = json.loads(ds.attrs.get("jobs", "[]"))
    except (json.JSONDecodeError, TypeError):
        jobs = []
    jobs = (
        [j for j in jobs if isinstance(j, dict) and j.get("config")]
        if isinstance(jobs, list)
        else []
    )
    if jobs:
        kept = {
            g: ([str(v) for v in np.atleast_1d(ds[g].values)] if g in ds.coords else None)
            for g in ("hardware", "model")
        }
        return [
            _load_config(j["config"])
            for j in jobs
            if all(labels is None or str(j.get(g)) in labels for g, labels in kept.items())
        ]
    return [_load_config(ds.attrs["config"])] if ds.attrs.get("config") else []


def _config(ds: xr.Dataset) -> dict:
    """The one provenance config of ``ds`` (``{}`` when there is none or several jobs')."""
    configs = _configs(ds)
    return configs[0] if len(configs) == 1 else {}


def _find(mapping: Any, key: str) -> Any:
    """First value stored under ``key`` anywhere in a nested mapping (breadth first)."""
    queue = [mapping]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            if key in node and not isinstance(node[key], dict):
                return node[key]
            queue.extend(v for v in node.values() if isinstance(v, dict))
    return None


def parameter(ds: xr.Dataset, name: str, default: Any = None) -> Any:
    """Value of model parameter ``name`` [SI units]: its coordinate (a swept axis) or
    variable, else the best value a reduction chose (``best_<name>``), else a dataset attr,
    else the provenance ``config`` YAML (units parsed), else ``default``.

    The store's own record is the only source: preset files are never read. An axis that a
    reduction removed without storing ``best_<name>`` raises ``ValueError`` rather than falling
    back to the base value in the config (which no stored point used)."""
    if name in ds.variables:
        return ds[name]
    if BEST_PREFIX + name in ds.variables:
        return ds[BEST_PREFIX + name]
    reduced = [
        c["reduce"].get("over") or [] for c in _configs(ds) if isinstance(c.get("reduce"), dict)
    ]
    if any(name in over for over in reduced):
        raise ValueError(
            f"{name} was reduced away (reduce.over) and {BEST_PREFIX}{name} is not "
            f"stored, so no single {name} applies to a stored point"
        )
    value = ds.attrs.get(name)
    if value is None:
        found = {repr(v): v for v in (_find(c, name) for c in _configs(ds)) if v is not None}
        if len(found) > 1:
            raise ValueError(
                f"{name} differs between the jobs in this dataset "
                f"({', '.join(found)}); select one hardware and model first"
            )
        value = next(iter(found.values()), None)
    if value is None:
        return default
    unit = parameter_index()[name][1].unit if name in parameter_index() else "1"
    return parse_quantity(value, unit, name)


def preset_name(ds: xr.Dataset, group: str) -> str | None:
    """Name of the `group` preset (``hardware``/``model``) of a dataset: its scalar coordinate
    (a multirun slice), a dataset attr, or ``<group>.name`` in the provenance config."""
    if _scalar_label(ds, group) is not None:
        return _scalar_label(ds, group)
    if isinstance(ds.attrs.get(group), str):
        return ds.attrs[group]
    node = _config(ds).get(group)
    name = node.get("name") if isinstance(node, dict) else node
    return name if isinstance(name, str) else None


def label(da: xr.DataArray, name: str | None = None) -> str:
    """Axis label ``long_name [units]`` from a variable's attrs."""
    text = da.attrs.get("long_name") or name or str(da.name)
    units = da.attrs.get("units")
    return f"{text} [{units}]" if units not in (None, "") else text


def point_dims(ds: xr.Dataset) -> list[str]:
    """Dims that index points of the design space (all but the elasticity dim ``wrt``)."""
    return [str(d) for d in ds.dims if d != "wrt"]


def over_dims(dims: Iterable[Hashable], over: str | Iterable[str] | None) -> list[str]:
    """Normalise an ``over`` argument (None: all ``dims``); error names unknown dims."""
    names = [str(d) for d in dims]
    if over is None:
        return names
    chosen = [over] if isinstance(over, str) else list(over)
    unknown = [d for d in chosen if d not in names]
    if unknown:
        raise KeyError(f"unknown dimension(s) {', '.join(unknown)}; dims: {', '.join(names)}")
    return chosen


def feasible_mask(ds: xr.Dataset, mask: str | xr.DataArray | None = "feasible") -> Any:
    """Boolean mask of admissible points (``True`` when no mask applies). The default
    ``"feasible"`` is skipped when that variable is not stored."""
    if mask is None or (isinstance(mask, str) and mask == "feasible" and "feasible" not in ds):
        return xr.DataArray(True)
    da = metric(ds, mask) if isinstance(mask, str) else mask
    return da.astype(bool)


def broadcast_to_points(ds: xr.Dataset, *arrays: xr.DataArray) -> list[xr.DataArray]:
    """Broadcast arrays against each other and the point dims of ``ds`` (dims order of ds)."""
    dims = point_dims(ds)
    coords = [
        ds[d] if d in ds.coords else xr.DataArray(np.arange(ds.sizes[d]), dims=d) for d in dims
    ]
    out = xr.broadcast(*arrays, *coords)[: len(arrays)]
    return [a.transpose(*dims, ...) for a in out]
