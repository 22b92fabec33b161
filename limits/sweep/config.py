"""Hydra config schemas (registered in the ConfigStore at import time) and cfg -> Params.

The schemas are generated from the parameter dataclasses, so every numeric parameter is a
config key, with values typed ``Any`` (numbers or strings with units such as ``"8TiB/s"``).
Unknown keys are errors because every node is a structured config. The top-level schema is
stored as ``limits_schema`` (outside the preset groups, so it never shows up as a preset) and
``conf/config.yaml`` lists it first in its defaults.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from limits.model.params import (
    Calibration,
    Deployment,
    Economics,
    Hardware,
    Model,
    ParameterError,
    Params,
)
from limits.presets import REQUIRED, missing_line

__all__ = [
    "SweepSchema",
    "StoreSchema",
    "SensitivitySchema",
    "LimitsSchema",
    "ShardSchema",
    "ReduceSchema",
    "params_from_cfg",
    "calibration_band",
    "register_schemas",
    "SCHEMA_NAME",
    "DATA_KEYS",
    "check_known_keys",
    "config_error_line",
    "closest_key",
    "replaceable_axes",
    "without_axis_resets",
]

SCHEMA_NAME = "limits_schema"

#: config keys that determine the stored numbers; a store is resumable only if they match.
DATA_KEYS = (
    "hardware",
    "model",
    "deployment",
    "calibration",
    "economics",
    "grid",
    "store.variables",
    "store.codec",
    "store.clevel",
    "store.chunk_points",
    "store.chunks",
    "store.layout",
    "sensitivity",
    "precision",
    "reduce",
)


def _schema_of(cls: type, required: Sequence[str] = ()) -> type:
    """A dataclass with the same field names as ``cls``, every value typed ``Any``; the
    ``required`` ones have no default (``???``: a preset file or an override must set them).
    It claims this module (bound below under its own name), so configs pickled to launcher
    worker processes (joblib, submitit) find the same class there."""
    fields = [
        (f.name, Any, field(default=MISSING if f.name in required else f.default))
        for f in dataclasses.fields(cls)
    ]
    schema = dataclasses.make_dataclass(f"{cls.__name__}Schema", fields)
    schema.__module__ = __name__
    return schema


HardwareSchema = _schema_of(Hardware, REQUIRED["hardware"])
ModelSchema = _schema_of(Model, REQUIRED["model"])
DeploymentSchema = _schema_of(Deployment)
CalibrationSchema = dataclasses.make_dataclass(
    "CalibrationSchema",
    [
        *((f.name, Any, field(default=f.default)) for f in dataclasses.fields(Calibration)),
        # a fitted profile's parameter covariance (names, matrix): "expected +/- band" outputs
        ("covariance", Any, field(default_factory=dict)),
    ],
)
CalibrationSchema.__module__ = __name__
EconomicsSchema = _schema_of(Economics)


@dataclass
class StoreSchema:
    """Where and how results are written."""

    path: str | None = None  # default: <hydra output dir>/sweep.zarr
    variables: Any = "default"  # "default", "all", or a list of output names
    codec: str = "lz4"  # lz4 (Blosc lz4 + byte shuffle), zstd (Blosc zstd + shuffle), none
    clevel: int = 5
    chunk_points: int = 1 << 20  # target grid points per chunk (= per evaluated block)
    chunks: dict[str, Any] = field(default_factory=dict)  # axis -> chunk length (overrides)
    layout: str = "lean"  # lean: each output over the axes it depends on; full: every axis


@dataclass
class SensitivitySchema:
    metrics: list[Any] = field(default_factory=list)
    wrt: list[Any] = field(default_factory=list)


@dataclass
class ReduceSchema:
    """Keep only the best point along ``over`` (limits.sweep.reduce; docs/sweep.md, Reductions)."""

    over: list[Any] = field(default_factory=list)  # grid axes to reduce away; [] = off
    objective: str = "stps"  # model output to optimise
    mode: str = "max"  # max | min
    constraints: dict[str, Any] = field(default_factory=dict)  # output -> [op, value (SI)]
    feasible_only: Any = True  # only points that fit in memory count


@dataclass
class LimitsSchema:
    max_points: Any = 4_000_000_000  # refuse grids with more points
    max_bytes: Any = "2 TB"  # refuse grids whose stored variables exceed this, uncompressed
    progress: bool = True  # show a tqdm progress bar
    compilation_cache: bool = True  # JAX's persistent compilation cache (limits.compile_cache)


@dataclass
class ShardSchema:
    """Split one grid over ``count`` independent jobs writing one store."""

    index: int = 0
    count: int = 1


@dataclass
class SweepSchema:
    hardware: HardwareSchema = field(default_factory=HardwareSchema)  # type: ignore[valid-type]
    model: ModelSchema = field(default_factory=ModelSchema)  # type: ignore[valid-type]
    deployment: DeploymentSchema = field(default_factory=DeploymentSchema)  # type: ignore[valid-type]
    calibration: CalibrationSchema = field(default_factory=CalibrationSchema)  # type: ignore[valid-type]
    economics: EconomicsSchema = field(default_factory=EconomicsSchema)  # type: ignore[valid-type]
    grid: dict[str, Any] = field(default_factory=dict)
    store: StoreSchema = field(default_factory=StoreSchema)
    sensitivity: SensitivitySchema = field(default_factory=SensitivitySchema)
    reduce: ReduceSchema = field(default_factory=ReduceSchema)
    precision: str = "float32"
    limits: LimitsSchema = field(default_factory=LimitsSchema)
    shard: ShardSchema = field(default_factory=ShardSchema)
    devices: Any = "all"  # "all" local devices share each block, or a number of them


#: an override of one grid axis (``grid.X=...`` or ``++grid.X=...``): prefix, axis name
_AXIS_OVERRIDE = re.compile(r"^(\+\+)?grid\.([A-Za-z_]\w*)=(.*)$", re.DOTALL)


def replaceable_axes(overrides: Sequence[str]) -> list[str]:
    """``overrides`` with each ``grid.X=VALUE`` written as ``++grid.X=null grid.X=VALUE``
    (and ``++grid.X=VALUE`` as ``++grid.X= grid.X=VALUE``), so that the value replaces the
    axis, or adds it.

    Hydra merges an override into the node it overrides, and OmegaConf cannot merge a range
    (a mapping) into a list or a list into a range ("Cannot merge DictConfig with
    ListConfig"); merging a range into a range would even keep keys the new range leaves out
    (``scale``). Setting the axis to a scalar first replaces it in place (the axis keeps its
    position, which is its dimension order). The two halves have different override keys
    (``++grid.X``, ``grid.X``) because Hydra's multirun sweeper keeps one override per key;
    the reset's value (``null`` or empty) records which form the user wrote
    (``without_axis_resets``). An unknown axis name is still refused, by ``parse_axis``.
    """
    out: list[str] = []
    for item in overrides:
        found = _AXIS_OVERRIDE.match(item)
        if found and found.group(3) not in ("null", ""):
            plus, name, value = found.groups()
            out += [f"++grid.{name}={'' if plus else 'null'}", f"grid.{name}={value}"]
        else:
            out.append(item)
    return out


def without_axis_resets(overrides: Sequence[str]) -> list[str]:
    """``overrides`` as the user wrote them, before ``replaceable_axes`` (for provenance and
    messages)."""
    items = list(overrides)
    out: list[str] = []
    restore: set[str] = set()  # axes the user wrote with ++
    for i, item in enumerate(items):
        found = _AXIS_OVERRIDE.match(item)
        if found and found.group(1) and found.group(3) in ("null", ""):
            later = (_AXIS_OVERRIDE.match(x) for x in items[i + 1 :])
            if any(m and not m.group(1) and m.group(2) == found.group(2) for m in later):
                if found.group(3) == "":
                    restore.add(found.group(2))
                continue
        if found and not found.group(1) and found.group(2) in restore:
            restore.discard(found.group(2))
            item = "++" + item
        out.append(item)
    return out


def register_schemas() -> None:
    """Store the top-level schema and the group schemas in Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name=SCHEMA_NAME, node=SweepSchema)


def _typed(node: Any, schema: type) -> Any:
    # `Any`-typed group nodes are re-validated against their schema (unknown keys -> error);
    # a node already typed with it (every group of a composed config) is one already: building
    # and merging the schema again cost ~10 ms per group
    if OmegaConf.is_config(node) and OmegaConf.get_type(node) is schema:
        return node
    return OmegaConf.merge(OmegaConf.structured(schema), node)


def _known_keys(schema: type, prefix: str = "") -> dict[str, bool]:
    """Dotted key -> whether it is a free mapping (``grid``, ``store.chunks``: any key)."""
    out: dict[str, bool] = {}
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        factory = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        sample = factory() if factory is not None else None
        if dataclasses.is_dataclass(sample):
            out[key] = False
            out.update(_known_keys(type(sample), key + "."))
        else:
            out[key] = isinstance(sample, dict)
    return out


def closest_key(dotted: str) -> str | None:
    """The valid config key closest to ``dotted``: a similar name in the same group, else
    a similar dotted key, else a key with the same last part in another group."""
    import difflib

    known = list(_known_keys(SweepSchema))
    parent, _, leaf = dotted.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == parent}
    near = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
    if near:
        return siblings[near[0]]
    close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.8)
    same_leaf = [k for k in known if k.rpartition(".")[2] == leaf]
    return (close or same_leaf or [None])[0]  # type: ignore[list-item]


def _siblings(dotted: str) -> list[str]:
    parent = dotted.rpartition(".")[0]
    return [k for k in _known_keys(SweepSchema) if k.rpartition(".")[0] == parent]


def config_error_line(err: BaseException) -> str:
    """One line for a Hydra/OmegaConf composition error: its message and causes up to the
    first blank line, the options Hydra lists (``a, b, c``), and the closest valid key instead
    of Hydra's advice to add an unknown key with ``+``."""
    lines: list[str] = []
    node: BaseException | None = err
    while node is not None:
        text = str(node)
        for line in text.splitlines():
            if not line.strip():
                break
            if line.startswith("To append to your config use +"):
                continue
            if not line.startswith((" ", "\t")):
                lines.append(line.strip())
        options = re.search(r"\n(Available options in '[^']*':)\n((?:\t.*\n?)+)", text)
        if options:
            names = ", ".join(o.strip() for o in options.group(2).splitlines())
            lines.append(f"{options.group(1)} {names}")
        node = node.__cause__
    key = re.search(r"Could not override '([^']+)'", str(err))
    if key:
        hint = closest_key(key.group(1))
        lines.append(
            f"did you mean {hint}?" if hint else f"valid keys: {', '.join(_siblings(key.group(1)))}"
        )
    return " / ".join(dict.fromkeys(lines))


def check_known_keys(cfg: DictConfig) -> None:
    """Refuse keys no schema declares, including those added with ``+key``/``++key`` (which
    Hydra lets through a structured config), naming the closest valid key."""
    known = _known_keys(SweepSchema)

    def walk(node: Any, prefix: str) -> None:
        for key in node.keys() if isinstance(node, DictConfig) else ():
            dotted = f"{prefix}{key!s}"
            if dotted not in known:
                hint = closest_key(dotted)
                raise ParameterError(
                    f"unknown setting {dotted} (= {OmegaConf.select(cfg, dotted)!r}): "
                    + (
                        f"did you mean {hint}?"
                        if hint
                        else f"valid keys here: {', '.join(_siblings(dotted))}"
                    )
                )
            child = node._get_node(key)  # the node itself: interpolations stay unresolved
            if not known[dotted] and isinstance(child, DictConfig):
                walk(child, dotted + ".")

    walk(cfg, "")


def mapping(node: Any) -> dict[str, Any]:
    """A config node as a plain ``dict`` (interpolations resolved); ``{}`` for an empty node."""
    value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParameterError(f"expected a mapping, got {type(value).__name__}: {value!r}")
    return {str(k): v for k, v in value.items()}


def params_from_cfg(cfg: DictConfig) -> Params:
    """The base ``Params`` of a composed config (units parsed, ranges checked)."""
    groups = {}
    for name, cls, schema in (
        ("hardware", Hardware, HardwareSchema),
        ("model", Model, ModelSchema),
        ("deployment", Deployment, DeploymentSchema),
        ("calibration", Calibration, CalibrationSchema),
        ("economics", Economics, EconomicsSchema),
    ):
        node = cfg.get(name) or {}
        try:
            node = _typed(node, schema)
        except Exception as err:  # omegaconf's message names the key
            raise ParameterError(f"{name}: {str(err).splitlines()[0]}") from None
        missing = [k for k in REQUIRED.get(name, ()) if OmegaConf.is_missing(node, k)]
        if missing:
            raise ParameterError(missing_line(name, str(node.get("name")), missing))
        values = mapping(node)
        values.pop("covariance", None)  # not a parameter: see calibration_band
        groups[name] = cls.from_mapping(values)
    return Params(**groups)


def calibration_band(cfg: DictConfig) -> tuple[tuple[str, ...], Any] | None:
    """The fitted parameters of ``calibration=<profile>`` and their covariance (SI), checked
    (``limits.autodiff.calibrate.check_covariance``), or None when the config has none."""
    node = mapping(cfg.get("calibration") or {})
    covariance = node.pop("covariance", None)
    if not covariance:
        return None
    from limits.autodiff.calibrate import check_covariance  # loads scipy: only when needed

    return check_covariance(covariance, node)


register_schemas()
