"""The dimensions a multirun's jobs stack along, shared by consolidation
(``limits.sweep.consolidate``) and ``limits.analysis.open_results``: ``hardware`` and ``model``
(preset names), then each parameter a ``-m`` override swept
(``-m deployment.prompt_len=1024,2048`` -> a ``prompt_len`` dimension), read from the jobs'
recorded overrides and resolved configs. What cannot become a dimension (a grid swept with
``-m``, a setting that is no parameter) is refused with one line saying what to run instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from limits.errors import ConsolidateError
from limits.model.params import PARAMETER_GROUPS
from limits.sweep.config import without_axis_resets
from limits.units import UNIT_KINDS, parse_quantity

__all__ = ["LEADING_DIMS", "JobDims", "job_dims", "swept_overrides"]

LEADING_DIMS = ("hardware", "model")

#: override keys that never change the stored numbers (how and where a job ran)
_NOT_DATA = ("hydra.", "limits.", "store.path", "devices", "shard.")


@dataclasses.dataclass(frozen=True)
class JobDims:
    """``names``: the stacking dims in order; ``labels``: each job's value along each;
    ``attrs``: each dim's ``units`` and ``long_name``."""

    names: tuple[str, ...]
    labels: list[tuple[Any, ...]]
    attrs: dict[str, dict[str, str]]

    def values(self, name: str) -> np.ndarray:
        """The distinct values of dim ``name`` in the order the jobs first give them."""
        i = self.names.index(name)
        seen = list(dict.fromkeys(label[i] for label in self.labels))
        return np.array(seen, dtype=object if isinstance(seen[0], str) else None)


def _parsed(overrides: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in without_axis_resets(list(overrides)):
        if item.startswith("~"):
            continue
        key, _, value = item.lstrip("+").partition("=")
        out[key] = value
    return out


def swept_overrides(overrides: Sequence[Sequence[str]]) -> dict[str, list[str | None]]:
    """Override keys whose value differs between the jobs (``None``: a job without it),
    in the order first written; preset choices and run settings (``hydra.*``, ``limits.*``,
    ``store.path``...) left out of the latter."""
    per_job = [_parsed(o) for o in overrides]
    keys = list(dict.fromkeys(k for job in per_job for k in job))
    return {
        k: [job.get(k) for job in per_job]
        for k in keys
        if len({job.get(k) for job in per_job}) > 1 and not k.startswith(_NOT_DATA)
    }


def _dimension(key: str, values: list[str | None], grids: set[str]) -> tuple[str, Any, dict]:
    """(dim name, function config -> coordinate value, attrs) of a swept override."""
    shown = ", ".join(dict.fromkeys(str(v) for v in values))
    if key == "grid" or key.startswith("grid."):
        axis = key if key != "grid" else "grid.NAME"
        raise ConsolidateError(
            f"the jobs sweep {key} with -m ({shown}), so their grids differ; one store holds "
            f"it as one axis: run without -m for it, '++{axis}=[...]' listing every value"
        )
    group, _, name = key.partition(".")
    cls = PARAMETER_GROUPS.get(group)
    field = {f.name: f for f in dataclasses.fields(cls)}.get(name) if cls else None
    if field is None:
        raise ConsolidateError(
            f"the jobs differ in {key} ({shown}), which is no model parameter and cannot "
            f"become a dimension; open each job's store on its own "
            f"(open_results('<multirun dir>/<job>/sweep.zarr'))"
        )
    if name in grids:
        raise ConsolidateError(
            f"the jobs sweep {key} with -m ({shown}) and also have a grid axis {name}; "
            f"sweep it in one place: '++grid.{name}=[...]' without -m"
        )
    spec = field.metadata.get("spec")
    if spec is None:  # a choice (serving mode, attention kind): a string dimension
        return name, lambda cfg: str(cfg[group][name]).lower(), {"long_name": field.metadata["doc"]}

    def value(cfg: Mapping[str, Any]) -> Any:
        si = parse_quantity(cfg[group][name], spec.unit, key)
        return round(si) if spec.integer else si

    units = "1" if spec.unit == "1" else UNIT_KINDS[spec.unit][1]
    return name, value, {"units": units, "long_name": spec.doc}


def job_dims(
    jobs: Sequence[tuple[str, str, Sequence[str], Mapping[str, Any]]],
    grid_axes: Sequence[str],
    grids_may_differ: bool = False,
) -> JobDims:
    """The stacking dims of jobs given as ``(hardware, model, overrides, config)`` each
    (``config``: the resolved config, groups as mappings) whose stores have the axes
    ``grid_axes``. Raises ``ConsolidateError`` for a swept setting that cannot be a dim; a
    swept grid too unless ``grids_may_differ`` (an outer join of the job stores)."""
    swept = swept_overrides([job[2] for job in jobs])
    swept = {
        k: v
        for k, v in swept.items()
        if k not in LEADING_DIMS and not (grids_may_differ and k.split(".")[0] == "grid")
    }
    extra = [_dimension(k, v, set(grid_axes)) for k, v in swept.items()]
    labels = [(hw, model, *(value(cfg) for _, value, _ in extra)) for hw, model, _, cfg in jobs]
    attrs = {
        "hardware": {"long_name": "hardware preset"},
        "model": {"long_name": "model preset"},
        **{name: a for name, _, a in extra},
    }
    return JobDims((*LEADING_DIMS, *(name for name, _, _ in extra)), labels, attrs)
