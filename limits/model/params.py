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


#: the largest finite float32: a larger parameter would become inf in a float32 sweep
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_concrete(value: Any) -> bool:
    """A value known now (a number, NumPy or JAX array), not one being traced."""
    if isinstance(value, bool) or isinstance(value, jax.core.Tracer):
        return False
    return isinstance(value, (int, float, complex, np.ndarray, np.number, jax.Array))


def _check_field(owner: str, name: str, spec: FieldSpec, value: Any) -> None:
    where = f"{owner}.{name}"
    if isinstance(value, (str, bool, np.bool_)) or (
        isinstance(value, (np.ndarray, jax.Array)) and np.dtype(value.dtype).kind in "bOSU"
    ):
        raise ParameterError(
            f"{where} = {value!r} is not a number; allowed: "
            f"{spec.describe()} (strings with units are parsed by "
            f"from_mapping, replace and load_params)"
        )
    if not is_concrete(value):
        return  # traced or abstract values are checked before they are traced
    if np.iscomplexobj(value):
        raise ParameterError(f"{where} = {value!r} is complex; allowed: {spec.describe()}")
    try:
        arr = np.asarray(float(value) if isinstance(value, int) else value, dtype=np.float64)
    except OverflowError:  # a Python int beyond any float (a JAX array is copied to the host)
        raise ParameterError(
            f"{where} = an integer of {len(str(abs(value)))} digits is out of range; "
            f"allowed: {spec.describe()}"
        ) from None
    if np.isnan(arr).any():
        raise ParameterError(f"{where} = nan is not a number; allowed: {spec.describe()}")
    if np.isinf(arr).any() and not (spec.allow_inf and (arr[np.isinf(arr)] > 0).all()):
        raise ParameterError(
            f"{where} = {_show(arr[np.isinf(arr)])} is not allowed; allowed: {spec.describe()}"
        )
    big = np.isfinite(arr) & (np.abs(arr) > FLOAT32_MAX)
    if big.any():
        raise ParameterError(
            f"{where} = {_show(arr[big])} would overflow to inf in a float32 sweep (largest "
            f"float32: {FLOAT32_MAX:.3g}); allowed: {spec.describe()}"
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
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name == "name"}
    return _register_pytree(cls, data, meta, defaults)


def _register_pytree(
    cls: type, data: list[str], meta: list[str], defaults: Mapping[str, Any]
) -> type:
    """Register ``cls`` as a pytree: ``data`` fields are leaves, ``meta`` static, ``defaults``
    dropped (restored on unflattening)."""

    def flatten_with_keys(obj: Any) -> tuple[list, tuple]:
        leaves = [(jax.tree_util.GetAttrKey(n), getattr(obj, n)) for n in data]
        return leaves, tuple(getattr(obj, n) for n in meta)

    def unflatten(aux: tuple, leaves: Any) -> Any:
        # no __init__: trees JAX rebuilds (tracers, gradients, tangents, batched values) are
        # not parameter values; those a user builds are checked in __post_init__
        obj: Any = object.__new__(cls)
        for name, value in (*zip(data, leaves), *zip(meta, aux), *defaults.items()):
            object.__setattr__(obj, name, value)
        return obj

    jax.tree_util.register_pytree_with_keys(
        cls,
        flatten_with_keys,
        unflatten,
        lambda obj: ([getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)),
    )
    return cls


@_register
@dataclasses.dataclass(frozen=True)
class Hardware(_Group):
    """One accelerator chip, its memory, links and price."""

    name: str = _static("custom", None, "preset name")
    mem_bw: float = _num(4 * 2.0**40, "B/s", "memory bandwidth per chip", lo_open=True)
    mem_capacity: float = _num(96 * 2.0**30, "B", "memory capacity per chip", lo_open=True)
    peak_flops: float = _num(
        2.25e15, "FLOP/s", "dense 16-bit tensor peak per chip (BF16/FP16)", lo_open=True
    )
    peak_flops_8bit: float = _num(
        0.0, "FLOP/s", "dense 8-bit tensor peak per chip (0: no 8-bit path, runs at peak_flops)"
    )
    peak_flops_4bit: float = _num(
        0.0,
        "FLOP/s",
        "dense 4-bit tensor peak per chip (0: no 4-bit path, runs at the 8-bit rate)",
    )
    sync_latency: float = _num(2.25e-6, "s", "latency of one collective across nodes")
    sync_latency_intra_node: float = _num(2.25e-6, "s", "latency of one collective inside one node")
    pipeline_latency: float = _num(2.25e-6, "s", "latency of one pipeline-stage hop")
    node_size: float = _num(8.0, "1", "chips per node (one host)", lo=1, integer=True)
    scaleup_size: float = _num(
        0.0,
        "1",
        "chips per scale-up domain beyond one node (NVL72 rack, TPU pod; 0: none)",
        integer=True,
    )
    sync_latency_scaleup: float = _num(
        2.25e-6, "s", "latency of one collective across nodes inside one scale-up domain"
    )
    scaleup_link_bw: float = _num(
        INF,
        "B/s",
        "per-chip bandwidth of collectives inside the scale-up domain beyond one node",
        lo_open=True,
        allow_inf=True,
    )
    link_bw: float = _num(
        INF,
        "B/s",
        "per-chip link bandwidth for collectives (inf: latency only)",
        lo_open=True,
        allow_inf=True,
    )
    scaleout_bw: float = _num(
        INF,
        "B/s",
        "per-chip scale-out (NIC) bandwidth, carries the KV cache of disaggregated serving "
        "(inf: latency only)",
        lo_open=True,
        allow_inf=True,
    )
    chip_power: float = _num(1000.0, "W", "provisioned power per chip")
    node_power: float = _num(300.0, "W", "power overhead per node (host, NICs, fans)")
    chip_price: float = _num(0.0, "USD/h", "rental price per chip-hour")
    chip_capex: float = _num(0.0, "USD", "purchase price per chip, amortised")

    def _check(self) -> None:
        if not (is_concrete(self.scaleup_size) and is_concrete(self.node_size)):
            return
        up, node = np.broadcast_arrays(np.asarray(self.scaleup_size), np.asarray(self.node_size))
        bad = (up > 0) & (up < node)
        if bad.any():
            raise ParameterError(
                f"hardware.scaleup_size = {up[bad].flat[0]:g} must be 0 (none) or >= "
                f"hardware.node_size = {node[bad].flat[0]:g}"
            )


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
    n_dense_layers: float = _num(
        0.0, "1", "dense-FFN layers of a MoE model (leading or interleaved)", integer=True
    )
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
    n_linear_layers: float = _num(
        0.0,
        "1",
        "layers whose mixer is linear attention or a state-space model (no KV cache)",
        integer=True,
    )
    linear_k_heads: float = _num(0.0, "1", "linear mixer key heads (Mamba2: groups)", integer=True)
    linear_k_dim: float = _num(
        0.0, "1", "linear mixer key head dim (Mamba2: state size)", integer=True
    )
    linear_v_heads: float = _num(0.0, "1", "linear mixer value heads (Mamba2: heads)", integer=True)
    linear_v_dim: float = _num(0.0, "1", "linear mixer value head dim", integer=True)
    linear_conv_kernel: float = _num(0.0, "1", "linear mixer causal-conv width", integer=True)
    index_topk: float = _num(
        INF,
        "tok",
        "cached entries one query reads (sparse attention; inf: all)",
        lo=1,
        allow_inf=True,
    )
    index_n_heads: float = _num(0.0, "1", "sparse-attention indexer heads", integer=True)
    index_head_dim: float = _num(0.0, "1", "sparse-attention indexer key dim", integer=True)
    n_ffn_free_layers: float = _num(
        0.0,
        "1",
        "layers without an FFN block (hybrids that stack mixer and FFN blocks)",
        integer=True,
    )
    moe_latent_dim: float = _num(0.0, "1", "width experts act in (0: d_model)", integer=True)
    d_ff_shared: float = _num(
        0.0, "1", "FFN width of a shared expert (0: d_ff_expert)", integer=True
    )
    n_mtp_layers: float = _num(
        0.0, "1", "multi-token-prediction modules (not in n_params)", integer=True
    )

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
        if (
            all(is_concrete(v) for v in (self.n_dense_layers, self.n_ffn_free_layers))
            and (
                np.asarray(self.n_dense_layers) + np.asarray(self.n_ffn_free_layers)
                > np.asarray(self.n_layers)
            ).any()
        ):
            raise ParameterError(
                "model.n_dense_layers + model.n_ffn_free_layers must be <= model.n_layers"
            )
        if (
            is_concrete(self.n_linear_layers)
            and (np.asarray(self.n_linear_layers) >= np.asarray(self.n_layers)).any()
        ):
            raise ParameterError(
                f"model.n_linear_layers = {np.max(self.n_linear_layers):g} must be < "
                f"model.n_layers = {np.min(self.n_layers):g} (at least one attention layer)"
            )


@_register
@dataclasses.dataclass(frozen=True)
class Deployment(_Group):
    """How one model replica is served: users, lengths, parallelism, precision, serving mode.

    ``serving`` and the ``prefill_*`` fields shape the serving outputs only (docs/serving.md);
    the decode-step outputs (``step_time``, ``utps``, ``stps``) never depend on them.
    """

    serving: str = _static(
        "aggregated",
        ("aggregated", "disaggregated"),
        "serving mode: one pool with chunked prefill, or separate prefill and decode pools",
    )
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
    compute_bytes: float = _num(
        0.0,
        "B",
        "bytes per GEMM input element, picks the tensor peak (<1: 4-bit, <2: 8-bit, else "
        "16-bit; 0: follow weight_bytes)",
    )
    draft_len: float = _num(0.0, "1", "speculative tokens drafted per step (0: off)", integer=True)
    acceptance_rate: float = _num(0.0, "1", "probability each drafted token is accepted", hi=1)
    draft_params: float = _num(0.0, "1", "parameters of the draft model")
    draft_layers: float = _num(0.0, "1", "layers of the draft model", integer=True)
    prefill_chunk: float = _num(
        0.0,
        "tok",
        "aggregated serving: prefill tokens per iteration budget (0: the steady-state share "
        "batch x prompt_len / output_len)",
    )
    prefill_tp: float = _num(
        1.0, "1", "disaggregated: tensor-parallel chips per prefill instance", lo=1, integer=True
    )
    prefill_dp: float = _num(
        1.0, "1", "disaggregated: data-parallel copies per prefill instance", lo=1, integer=True
    )
    prefill_ep: float = _num(
        1.0, "1", "disaggregated: expert-parallel groups per prefill instance", lo=1, integer=True
    )
    prefill_replicas: float = _num(1.0, "1", "disaggregated: prefill instances", lo=1, integer=True)
    prefill_batch: float = _num(
        1.0, "1", "disaggregated: prompts per prefill forward pass", lo=1, integer=True
    )
    dp: float = _num(
        1.0, "1", "data-parallel attention replicas per stage, each tp chips", lo=1, integer=True
    )
    expert_imbalance: float = _num(
        1.0, "1", "tokens on the busiest expert rank / the mean (>= 1)", lo=1
    )
    redundant_experts: float = _num(
        0.0, "1", "extra routed-expert copies per MoE layer (load balancing)", integer=True
    )
    arrival_rate: float = _num(
        0.0,
        "1/s",
        "serving: requests/s arriving at random (Poisson) over all instances; TTFT at load "
        "then includes the wait in the prompt queue (0: no queue; inf: all at once)",
        allow_inf=True,
    )
    burst_requests: float = _num(
        INF,
        "1",
        "serving: requests in the measured run, which bounds the queue (inf: steady state)",
        lo=1,
        allow_inf=True,
    )

    def _check(self) -> None:
        # decode pool: experts spread over the tp x dp chips of a stage; prefill pool: over
        # the prefill_tp chips of an instance
        for tp_name, ep_name, dp_name in (("tp", "ep", "dp"), ("prefill_tp", "prefill_ep", None)):
            values = [getattr(self, tp_name), getattr(self, ep_name)]
            values.append(getattr(self, dp_name) if dp_name else 1.0)
            if not all(is_concrete(v) for v in values):
                continue
            tp, ep, dp = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))
            bad = np.mod(tp * dp, ep) != 0
            if not bad.any():
                continue
            if (dp[bad] == 1).all():
                raise ParameterError(
                    f"deployment.{ep_name} = {ep[bad].flat[0]:g} must divide deployment."
                    f"{tp_name} = {tp[bad].flat[0]:g} (experts are spread over a stage's chips)"
                )
            raise ParameterError(
                f"deployment.{ep_name} = {ep[bad].flat[0]:g} must divide deployment.{tp_name} x "
                f"deployment.{dp_name} = {(tp * dp)[bad].flat[0]:g} (experts are spread over "
                "a stage's chips)"
            )


@_register
@dataclasses.dataclass(frozen=True)
class Calibration(_Group):
    """Efficiencies and modelling conventions; defaults are the ideal limit."""

    prefill_attention_mask: str = _static(
        "causal", ("causal", "full"), "attention pairs counted in prefill"
    )
    mem_efficiency: float = _num(1.0, "1", "achieved / peak memory bandwidth", lo_open=True, hi=1)
    kv_mem_efficiency: float = _num(
        1.0,
        "1",
        "KV-cache reads' achieved bandwidth relative to the weight stream's (mem_efficiency)",
        lo_open=True,
        hi=1,
    )
    flops_efficiency: float = _num(
        1.0, "1", "achieved / peak FLOP/s of decode tokens", lo_open=True, hi=1
    )
    prefill_flops_efficiency: float = _num(
        1.0, "1", "achieved / peak FLOP/s of prompt (prefill) tokens", lo_open=True, hi=1
    )
    engine_prefill_budget: float = _num(
        float("inf"),
        "tok",
        "aggregated serving: the engine's prefill tokens per iteration where "
        "deployment.prefill_chunk = 0 (inf: none, the steady-state share)",
        lo_open=True,
        allow_inf=True,
    )
    layer_overhead: float = _num(
        0.0, "s", "fixed software overhead per layer per forward pass (decode and prefill)"
    )
    iteration_overhead: float = _num(
        0.0, "s", "fixed engine overhead per forward pass (scheduling, launch; prefill too)"
    )
    request_overhead: float = _num(
        0.0, "s", "fixed latency per request in TTFT (front end, tokenisation, first response)"
    )
    collective_overhead: float = _num(
        0.0, "s", "software latency added to every collective (launch, synchronisation)"
    )
    allreduce_efficiency: float = _num(
        1.0, "1", "achieved / peak link bandwidth in all-reduces", lo_open=True, hi=1
    )
    alltoall_efficiency: float = _num(
        1.0, "1", "achieved / peak link bandwidth in all-to-alls", lo_open=True, hi=1
    )
    workspace_bytes: float = _num(
        0.0,
        "B",
        "memory reserved per chip by the runtime (activations, communication buffers, graphs)",
    )
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


_register_pytree(Params, [f.name for f in dataclasses.fields(Params)], [], {})


def check_cross_group(model: Model, dep: Deployment) -> None:
    """Checks that need both the model and the deployment (parallelism, context)."""
    values = (
        model.n_heads,
        model.n_layers,
        dep.tp,
        dep.pp,
        dep.ep,
        dep.prefill_tp,
        dep.prefill_ep,
        model.n_experts,
        dep.context,
        model.max_context,
        dep.redundant_experts,
    )
    if not all(is_concrete(v) for v in values):
        return
    for tp_name, ep_name in (("tp", "ep"), ("prefill_tp", "prefill_ep")):
        _check_parallelism(
            model,
            tp_name,
            getattr(dep, tp_name),
            ep_name,
            getattr(dep, ep_name),
            dep.redundant_experts,
        )
    if (np.asarray(dep.pp) > np.asarray(model.n_layers)).any():
        raise ParameterError(
            f"deployment.pp = {np.max(dep.pp):g} exceeds model.n_layers = "
            f"{np.min(model.n_layers):g}"
        )
    if (np.asarray(dep.context) > np.asarray(model.max_context)).any():
        raise ParameterError(
            f"deployment.context = {np.max(dep.context):g} exceeds "
            f"model.max_context = {np.min(model.max_context):g} of {model.name}; to evaluate "
            f"it anyway (a what-if beyond the trained length) set "
            f"model.max_context={np.max(dep.context):g}"
        )


def _check_parallelism(
    model: Model, tp_name: str, tp_v: Any, ep_name: str, ep_v: Any, redundant_v: Any
) -> None:
    """Tensor parallelism splits whole heads; expert parallelism needs a MoE model and spreads
    its expert slots (routed experts plus redundant copies) evenly."""
    h, tp = np.broadcast_arrays(np.asarray(model.n_heads), np.asarray(tp_v))
    split = (np.mod(h, tp) != 0) & (np.mod(tp, h) != 0)
    if split.any():
        bad = ", ".join(f"{v:g}" for v in np.unique(tp[split]))
        raise ParameterError(
            f"deployment.{tp_name} = {bad} must divide model.n_heads = "
            f"{np.max(h[split]):g} or be a multiple of it"
        )
    ep = np.asarray(ep_v)
    if model.ffn == "dense" and (ep > 1).any():
        raise ParameterError(
            f"deployment.{ep_name} = {np.max(ep):g} needs a MoE model; "
            f"model {model.name} is dense (allowed: 1)"
        )
    redundant = np.asarray(redundant_v)
    slots = np.asarray(model.n_experts) + redundant
    if model.ffn == "moe" and (np.mod(slots, ep) != 0).any():
        extra = (
            f" + deployment.redundant_experts = {np.max(redundant):g}"
            if (redundant > 0).any()
            else ""
        )
        raise ParameterError(
            f"deployment.{ep_name} = {np.max(ep):g} must divide model.n_experts = "
            f"{np.max(model.n_experts):g}{extra}"
        )
    if model.ffn == "dense" and (redundant > 0).any():
        raise ParameterError(
            f"deployment.redundant_experts = {np.max(redundant):g} needs a MoE "
            f"model; model {model.name} is dense (allowed: 0)"
        )
