"""Parameters of the limit model as frozen dataclass pytrees (floats in SI units).

Five groups: ``Hardware`` (one chip and its links), ``Model`` (architecture), ``Deployment``
(how the model is served), ``Calibration`` (efficiencies and modelling conventions) and
``Economics``. Numeric fields are pytree leaves, so any of them can be a JAX array that
broadcasts over a grid; string fields (names, attention kind, FFN kind) are static.

Each numeric field declares its unit kind, allowed range and whether it must be a whole
number; values are checked at construction whenever they are concrete (Python numbers or
NumPy arrays), so a bad value fails early with a message that names the parameter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from limits.errors import ParameterError
from limits.units import UNIT_KINDS, parse_quantity

__all__ = [
    "Hardware",
    "Model",
    "Deployment",
    "Calibration",
    "Economics",
    "Params",
    "ParameterError",
    "is_concrete",
    "field_spec",
    "numeric_fields",
    "PARAMETER_GROUPS",
    "parameter_index",
]

INF = math.inf


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What a numeric parameter accepts."""

    unit: str
    lo: float = 0.0
    lo_open: bool = False
    hi: float = INF
    integer: bool = False
    allow_inf: bool = False
    doc: str = ""

    def describe(self) -> str:
        left = "(" if self.lo_open else "["
        kind = "whole number in " if self.integer else ""
        unit = "" if self.unit == "1" else f" {UNIT_KINDS[self.unit][1]}"
        right = "]" if math.isfinite(self.hi) or self.allow_inf else ")"
        return f"{kind}{left}{self.lo:g}, {self.hi:g}{right}{unit}"


def _num(default: float, unit: str, doc: str, **kw: Any) -> Any:
    return dataclasses.field(default=default, metadata={"spec": FieldSpec(unit, doc=doc, **kw)})


def _static(default: str, choices: tuple[str, ...] | None, doc: str) -> Any:
    return dataclasses.field(
        default=default, metadata={"static": True, "choices": choices, "doc": doc}
    )


def field_spec(cls: type, name: str) -> FieldSpec:
    """The ``FieldSpec`` of numeric field ``name`` of parameter class ``cls``."""
    return {f.name: f for f in dataclasses.fields(cls)}[name].metadata["spec"]


def numeric_fields(cls: type) -> list[str]:
    """Names of the sweepable (numeric) fields of a parameter class."""
    return [f.name for f in dataclasses.fields(cls) if "spec" in f.metadata]


def is_concrete(value: Any) -> bool:
    return isinstance(value, (int, float, np.ndarray, np.number)) and not isinstance(value, bool)


def _check_field(owner: str, name: str, spec: FieldSpec, value: Any) -> None:
    if isinstance(value, (str, bool)):
        raise ParameterError(
            f"{owner}.{name} = {value!r} is not a number; allowed: "
            f"{spec.describe()} (strings with units are parsed by "
            f"from_mapping, replace and load_params)"
        )
    if not is_concrete(value):
        return  # traced or abstract values are checked before they are traced
    arr = np.asarray(value, dtype=np.float64)
    where = f"{owner}.{name}"
    if np.isnan(arr).any():
        raise ParameterError(f"{where} = nan is not a number; allowed: {spec.describe()}")
    if np.isinf(arr).any() and not (spec.allow_inf and (arr[np.isinf(arr)] > 0).all()):
        raise ParameterError(
            f"{where} = {_show(arr[np.isinf(arr)])} is not allowed; allowed: {spec.describe()}"
        )
    bad_lo = arr <= spec.lo if spec.lo_open else arr < spec.lo
    if bad_lo.any() or (arr > spec.hi).any():
        bad = arr[bad_lo | (arr > spec.hi)]
        raise ParameterError(f"{where} = {_show(bad)} is out of range; allowed: {spec.describe()}")
    if spec.integer:
        finite = arr[np.isfinite(arr)]
        if (finite != np.round(finite)).any():
            bad = finite[finite != np.round(finite)]
            raise ParameterError(
                f"{where} = {_show(bad)} must be a whole number; allowed: {spec.describe()}"
            )


def _show(bad: np.ndarray) -> str:
    return f"{bad.flat[0]:g}" if bad.size else "?"


class _Group:
    """Shared construction logic: range checks, static choices, unit parsing."""

    def __post_init__(self) -> None:
        owner = type(self).__name__.lower()
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if "spec" in f.metadata:
                _check_field(owner, f.name, f.metadata["spec"], value)
            elif f.metadata.get("choices") and value not in f.metadata["choices"]:
                raise ParameterError(
                    f"{owner}.{f.name} = {value!r} is unknown; choose one of "
                    f"{', '.join(f.metadata['choices'])}"
                )
        self._check()

    def _check(self) -> None:
        """Cross-field checks of one group (override)."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Any:
        """Build from a mapping of field -> value, where values may carry units."""
        owner = cls.__name__.lower()
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ParameterError(
                f"{owner}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(known)}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            f = known[key]
            if "spec" in f.metadata:
                if value is None:
                    raise ParameterError(f"{owner}.{key} is missing a value")
                kwargs[key] = parse_quantity(value, f.metadata["spec"].unit, f"{owner}.{key}")
            elif isinstance(value, bool):  # YAML and Hydra read `true` as a bool
                kwargs[key] = str(value).lower()
            else:
                kwargs[key] = str(value)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (validated again); strings such as ``"4 TiB/s"``
        given for numeric fields are parsed with their units."""
        owner = type(self).__name__.lower()
        specs = {
            f.name: f.metadata["spec"]
            for f in dataclasses.fields(self)  # type: ignore
            if "spec" in f.metadata
        }
        parsed = {
            k: parse_quantity(v, specs[k].unit, f"{owner}.{k}")
            if k in specs and isinstance(v, str)
            else v
            for k, v in changes.items()
        }
        return dataclasses.replace(self, **parsed)  # type: ignore[type-var]


def _register(cls: type) -> type:
    """Numeric fields are leaves, categorical fields static; the preset ``name`` is a label
    only, dropped from the tree structure so presets of one kind share one compiled function
    (it comes back as the default after unflattening)."""
    data = [f.name for f in dataclasses.fields(cls) if "spec" in f.metadata]
    meta = [
        f.name for f in dataclasses.fields(cls) if "spec" not in f.metadata and f.name != "name"
    ]
    drop = [f.name for f in dataclasses.fields(cls) if f.name == "name"]
    return jax.tree_util.register_dataclass(
        cls, data_fields=data, meta_fields=meta, drop_fields=drop
    )


@_register
@dataclasses.dataclass(frozen=True)
class Hardware(_Group):
    """One accelerator chip, its memory, links and price."""

    name: str = _static("custom", None, "preset name")
    mem_bw: float = _num(4 * 2.0**40, "B/s", "memory bandwidth per chip", lo_open=True)
    mem_capacity: float = _num(96 * 2.0**30, "B", "memory capacity per chip", lo_open=True)
    peak_flops: float = _num(2.25e15, "FLOP/s", "dense tensor peak per chip", lo_open=True)
    sync_latency: float = _num(2.25e-6, "s", "latency of one collective across nodes")
    sync_latency_intra_node: float = _num(2.25e-6, "s", "latency of one collective inside one node")
    pipeline_latency: float = _num(2.25e-6, "s", "latency of one pipeline-stage hop")
    node_size: float = _num(8.0, "1", "chips per node (scale-up domain)", lo=1, integer=True)
    link_bw: float = _num(
        INF,
        "B/s",
        "per-chip link bandwidth for collectives (inf: latency only)",
        lo_open=True,
        allow_inf=True,
    )
    chip_power: float = _num(1000.0, "W", "provisioned power per chip")
    node_power: float = _num(300.0, "W", "power overhead per node (host, NICs, fans)")
    chip_price: float = _num(0.0, "USD/h", "rental price per chip-hour")
    chip_capex: float = _num(0.0, "USD", "purchase price per chip, amortised")


@_register
@dataclasses.dataclass(frozen=True)
class Model(_Group):
    """Transformer architecture (public Hugging Face config conventions)."""

    name: str = _static("custom", None, "preset name")
    attention: str = _static("gqa", ("mha", "gqa", "mqa", "mla"), "attention kind")
    ffn: str = _static("dense", ("dense", "moe"), "feed-forward kind")
    tied_embeddings: str = _static("false", ("true", "false"), "input/output embeddings shared")
    n_layers: float = _num(126.0, "1", "transformer layers", lo=1, integer=True)
    d_model: float = _num(16384.0, "1", "hidden size", lo=1, integer=True)
    n_heads: float = _num(128.0, "1", "query heads", lo=1, integer=True)
    n_kv_heads: float = _num(8.0, "1", "key/value heads", lo=1, integer=True)
    d_head: float = _num(128.0, "1", "head dimension", lo=1, integer=True)
    d_ff: float = _num(53248.0, "1", "FFN width of dense layers", lo=1, integer=True)
    ffn_matrices: float = _num(
        3.0, "1", "weight matrices per FFN (3: gated, 2: plain)", lo=2, hi=3, integer=True
    )
    vocab: float = _num(128256.0, "1", "vocabulary size", lo=1, integer=True)
    n_params: float = _num(0.0, "1", "nominal total parameters (0: count from architecture)")
    n_experts: float = _num(0.0, "1", "routed experts per MoE layer", integer=True)
    top_k: float = _num(0.0, "1", "routed experts per token", integer=True)
    n_shared_experts: float = _num(0.0, "1", "always-active experts per MoE layer", integer=True)
    d_ff_expert: float = _num(0.0, "1", "FFN width of one expert", integer=True)
    n_dense_layers: float = _num(0.0, "1", "leading dense layers of a MoE model", integer=True)
    kv_lora_rank: float = _num(0.0, "1", "MLA latent KV rank", integer=True)
    q_lora_rank: float = _num(0.0, "1", "MLA latent query rank (0: none)", integer=True)
    qk_rope_head_dim: float = _num(0.0, "1", "MLA decoupled RoPE key dim", integer=True)
    qk_nope_head_dim: float = _num(0.0, "1", "MLA non-RoPE query/key dim", integer=True)
    v_head_dim: float = _num(0.0, "1", "MLA value head dim", integer=True)
    sliding_window: float = _num(
        INF, "tok", "attention window (inf: full attention)", lo=1, allow_inf=True
    )
    sliding_window_layer_fraction: float = _num(
        1.0, "1", "fraction of layers that use the window", hi=1
    )
    max_context: float = _num(INF, "tok", "longest supported context", lo=1, allow_inf=True)

    def _check(self) -> None:
        if not all(is_concrete(getattr(self, n)) for n in ("n_heads", "n_kv_heads")):
            return
        h, kv = np.asarray(self.n_heads), np.asarray(self.n_kv_heads)
        if self.attention == "mha" and (h != kv).any():
            raise ParameterError(
                f"model.n_kv_heads = {kv.flat[0]:g} must equal model.n_heads = "
                f"{h.flat[0]:g} for attention=mha"
            )
        if self.attention == "mqa" and (kv != 1).any():
            raise ParameterError("model.n_kv_heads must be 1 for attention=mqa")
        if self.attention == "gqa" and (np.mod(h, kv) != 0).any():
            raise ParameterError(
                f"model.n_kv_heads = {kv.flat[0]:g} must divide model.n_heads = "
                f"{h.flat[0]:g} for attention=gqa"
            )
        if (
            self.attention == "mla"
            and is_concrete(self.kv_lora_rank)
            and (np.asarray(self.kv_lora_rank) <= 0).any()
        ):
            raise ParameterError("model.kv_lora_rank must be > 0 for attention=mla")
        if self.ffn == "moe" and is_concrete(self.n_experts):
            e, k = np.asarray(self.n_experts), np.asarray(self.top_k)
            if (e < 1).any() or (k < 1).any() or (k > e).any():
                raise ParameterError(
                    f"model.top_k = {k.flat[0]:g} must be in [1, n_experts = "
                    f"{e.flat[0]:g}] for ffn=moe"
                )
            if (np.asarray(self.d_ff_expert) <= 0).any():
                raise ParameterError("model.d_ff_expert must be > 0 for ffn=moe")
        if (
            is_concrete(self.n_dense_layers)
            and (np.asarray(self.n_dense_layers) > np.asarray(self.n_layers)).any()
        ):
            raise ParameterError("model.n_dense_layers must be <= model.n_layers")


@_register
@dataclasses.dataclass(frozen=True)
class Deployment(_Group):
    """How one model replica is served: users, lengths, parallelism, precision."""

    batch: float = _num(1.0, "1", "users per pipeline microbatch", lo=1, integer=True)
    context: float = _num(4096.0, "tok", "KV length at the decode step evaluated", integer=True)
    prompt_len: float = _num(1024.0, "tok", "prompt tokens prefilled for TTFT", lo=1, integer=True)
    output_len: float = _num(256.0, "tok", "generated tokens per request", lo=1, integer=True)
    tp: float = _num(1.0, "1", "tensor-parallel chips per pipeline stage", lo=1, integer=True)
    pp: float = _num(1.0, "1", "pipeline stages", lo=1, integer=True)
    ep: float = _num(1.0, "1", "expert-parallel groups within a stage", lo=1, integer=True)
    replicas: float = _num(1.0, "1", "independent model replicas", lo=1, integer=True)
    weight_bytes: float = _num(1.0, "B", "bytes per weight", lo_open=True)
    kv_bytes: float = _num(1.0, "B", "bytes per KV-cache element", lo_open=True)
    act_bytes: float = _num(2.0, "B", "bytes per activation element on links", lo_open=True)
    draft_len: float = _num(0.0, "1", "speculative tokens drafted per step (0: off)", integer=True)
    acceptance_rate: float = _num(0.0, "1", "probability each drafted token is accepted", hi=1)
    draft_params: float = _num(0.0, "1", "parameters of the draft model")
    draft_layers: float = _num(0.0, "1", "layers of the draft model", integer=True)

    def _check(self) -> None:
        if is_concrete(self.tp) and is_concrete(self.ep):
            tp, ep = np.asarray(self.tp), np.asarray(self.ep)
            if (np.mod(tp, ep) != 0).any():
                raise ParameterError(
                    f"deployment.ep = {ep.flat[0]:g} must divide deployment.tp = "
                    f"{tp.flat[0]:g} (experts are spread over a stage's chips)"
                )


@_register
@dataclasses.dataclass(frozen=True)
class Calibration(_Group):
    """Efficiencies and modelling conventions; defaults are the ideal limit."""

    prefill_attention_mask: str = _static(
        "causal", ("causal", "full"), "attention pairs counted in prefill"
    )
    mem_efficiency: float = _num(1.0, "1", "achieved / peak memory bandwidth", lo_open=True, hi=1)
    flops_efficiency: float = _num(1.0, "1", "achieved / peak FLOP/s", lo_open=True, hi=1)
    layer_overhead: float = _num(0.0, "s", "fixed software overhead per layer per step")
    workspace_bytes: float = _num(0.0, "B", "activation workspace per chip")
    collectives_per_layer: float = _num(
        2.0, "1", "tensor-parallel all-reduces per layer", integer=True
    )
    alltoall_per_moe_layer: float = _num(
        2.0, "1", "expert-parallel all-to-alls per MoE layer", integer=True
    )


@_register
@dataclasses.dataclass(frozen=True)
class Economics(_Group):
    """Energy price and amortisation for cost metrics."""

    electricity_price: float = _num(
        0.08,
        "USD/kWh",
        "price of energy (default: ~US industrial average, EIA 2024; an assumption)",
    )
    amortization_years: float = _num(
        4.0, "1", "years over which chip_capex is spread", lo_open=True
    )


PARAMETER_GROUPS: dict[str, type] = {
    "hardware": Hardware,
    "model": Model,
    "deployment": Deployment,
    "calibration": Calibration,
    "economics": Economics,
}


def parameter_index() -> dict[str, tuple[str, FieldSpec]]:
    """Every sweepable parameter name -> (group, spec). Names are unique across groups."""
    index: dict[str, tuple[str, FieldSpec]] = {}
    for group, cls in PARAMETER_GROUPS.items():
        for name in numeric_fields(cls):
            assert name not in index, f"parameter name {name} is not unique"
            index[name] = (group, field_spec(cls, name))
    return index


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Everything the limit model needs, one pytree. Cross-group checks run here."""

    hardware: Hardware
    model: Model
    deployment: Deployment
    calibration: Calibration = dataclasses.field(default_factory=Calibration)
    economics: Economics = dataclasses.field(default_factory=Economics)

    def __post_init__(self) -> None:
        check_cross_group(self.model, self.deployment)

    def replace(self, **flat: Any) -> Params:
        """A copy with parameters changed by flat name, e.g. ``replace(tp=32, mem_bw=...)``."""
        index = parameter_index()
        per_group: dict[str, dict[str, Any]] = {}
        for name, value in flat.items():
            if name not in index:
                raise ParameterError(f"unknown parameter {name!r}; valid: {', '.join(index)}")
            per_group.setdefault(index[name][0], {})[name] = value
        groups = {g: getattr(self, g).replace(**kw) for g, kw in per_group.items()}
        return dataclasses.replace(self, **groups)

    def flat(self) -> dict[str, Any]:
        """All numeric parameters by flat name."""
        return {
            name: getattr(getattr(self, group), name)
            for name, (group, _) in parameter_index().items()
        }


def check_cross_group(model: Model, dep: Deployment) -> None:
    """Checks that need both the model and the deployment (parallelism, context)."""
    values = (
        model.n_heads,
        model.n_layers,
        dep.tp,
        dep.pp,
        dep.ep,
        model.n_experts,
        dep.context,
        model.max_context,
    )
    if not all(is_concrete(v) for v in values):
        return
    h, tp = np.broadcast_arrays(np.asarray(model.n_heads), np.asarray(dep.tp))
    split = (np.mod(h, tp) != 0) & (np.mod(tp, h) != 0)
    if split.any():
        bad = ", ".join(f"{v:g}" for v in np.unique(tp[split]))
        raise ParameterError(
            f"deployment.tp = {bad} must divide model.n_heads = "
            f"{np.max(h[split]):g} or be a multiple of it"
        )
    if (np.asarray(dep.pp) > np.asarray(model.n_layers)).any():
        raise ParameterError(
            f"deployment.pp = {np.max(dep.pp):g} exceeds model.n_layers = "
            f"{np.min(model.n_layers):g}"
        )
    ep = np.asarray(dep.ep)
    if model.ffn == "dense" and (ep > 1).any():
        raise ParameterError(
            f"deployment.ep = {np.max(ep):g} needs a MoE model; "
            f"model {model.name} is dense (allowed: 1)"
        )
    if model.ffn == "moe" and (np.mod(np.asarray(model.n_experts), ep) != 0).any():
        raise ParameterError(
            f"deployment.ep = {np.max(ep):g} must divide model.n_experts = "
            f"{np.max(model.n_experts):g}"
        )
    if (np.asarray(dep.context) > np.asarray(model.max_context)).any():
        raise ParameterError(
            f"deployment.context = {np.max(dep.context):g} exceeds "
            f"model.max_context = {np.min(model.max_context):g} of {model.name}; to evaluate "
            f"it anyway (a what-if beyond the trained length) set "
            f"model.max_context={np.max(dep.context):g}"
        )
