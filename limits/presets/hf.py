"""Model presets from local Hugging Face ``config.json`` files (no network).

``model_from_hf_config("config.json")`` reads the architecture fields the limit model needs;
``python -m limits.presets.hf config.json --name my_model > limits/conf/model/my_model.yaml`` writes
a preset whose every line names the config key it came from. A config the model cannot
represent is refused with one line naming the missing feature (``UNSUPPORTED_MODEL_TYPES``).

Supported text ``model_type`` values (``SUPPORTED_MODEL_TYPES``); a vision-language config is
read through its nested ``text_config``. Conventions:

- ``head_dim`` defaults to ``hidden_size / num_attention_heads``; a missing
  ``num_key_value_heads`` means multi-head attention; the attention kind is ``mha`` when the
  KV heads equal the query heads, ``mqa`` for one KV head, ``gqa`` otherwise and ``mla`` for
  DeepSeek-style latent attention (whose ``d_head`` is taken as ``v_head_dim``; MLA does not
  use it);
- FFNs are gated (gate, up, down: ``ffn_matrices = 3``) except Nemotron-H's squared-ReLU
  (``mlp_hidden_act: relu2``: up, down);
- a missing ``tie_word_embeddings`` means untied (the default of every supported family);
- the windowed-layer fraction comes from ``layer_types`` when present, else from each family's
  rule (Mistral/Mixtral: all layers; Qwen: layers from ``max_window_layers`` on when
  ``use_sliding_window``; gpt-oss: every other layer; Llama 4: chunked attention
  (``attention_chunk_size``) on three layers of four, read as a window of the chunk size, an
  upper bound on what a chunk attends);
- linear-attention (Qwen3.5 Gated DeltaNet) and Mamba2 (Nemotron-H) layers carry their head
  shapes; sparse attention (DeepSeek-V3.2, GLM-5) its ``index_topk`` and indexer; MTP modules
  (``num_nextn_predict_layers`` and family spellings) are counted apart from ``n_params``;
- ``n_params`` is the nominal count given by the caller (0: count from the architecture);
- ``quantization_config`` implies the bytes per weight (:func:`hf_weight_bytes`), a
  deployment setting printed as a comment of the preset.
"""

from __future__ import annotations

import argparse
import builtins
import dataclasses
import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limits.model.params import Model, ParameterError

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "UNSUPPORTED_MODEL_TYPES",
    "load_hf_config",
    "hf_model_fields",
    "hf_weight_bytes",
    "model_from_hf_config",
    "preset_yaml",
    "main",
]

_DENSE = ("llama", "mistral", "qwen2", "qwen3", "qwen3_vl_text", "mimo")
_MIXTRAL_STYLE_MOE = ("mixtral", "gpt_oss", "minimax_m2")  # experts: intermediate_size wide
_QWEN_MOE = ("qwen3_moe", "qwen3_vl_moe_text")
_QWEN_HYBRID = ("qwen3_5_text", "qwen3_5_moe_text")  # Gated DeltaNet + full attention
_DEEPSEEK = ("deepseek_v3", "kimi_k2", "deepseek_v32", "glm_moe_dsa")  # MLA (+ DSA)
_LLAMA4 = ("llama4_text",)
_NEMOTRON_H = ("nemotron_h",)
_QWEN = ("qwen2", "qwen3", "qwen3_moe", "qwen3_vl_text", "qwen3_vl_moe_text", "mimo")

SUPPORTED_MODEL_TYPES = (
    _DENSE + _MIXTRAL_STYLE_MOE + _QWEN_MOE + _QWEN_HYBRID + _DEEPSEEK + _LLAMA4 + _NEMOTRON_H
)

#: model types that are recognised but need a feature the limit model lacks
UNSUPPORTED_MODEL_TYPES = {
    "deepseek_v4": "compressed attention (compress_ratios) and hyper-connections (hc_mult)",
    "deepseek_ref": "compressed attention (compress_ratios) and hyper-connections (hc_mult)",
    "minimax_m3": "block-sparse attention (sparse_attention_config)",
    "minimax_m3_vl": "block-sparse attention (sparse_attention_config)",
    "kimi_linear": "Kimi Delta Attention with attention residual blocks (linear_attn_config)",
    "mimo_v2_flash": "per-layer attention shapes (swa_* heads differ between layer kinds)",
    "step3p7": "a per-layer expert layout the config spells in its own keys (share_expert_dim)",
    "nemotron-nas": "per-layer heterogeneous blocks (block_configs)",
    "gemma4_text": "full-attention layers with their own head shape (global_head_dim)",
}

#: (value, where it came from) for one Model field
Sourced = tuple[Any, str]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def load_hf_config(path_or_dict: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The config mapping from a dict, a ``config.json`` path, or a folder holding one."""
    if isinstance(path_or_dict, Mapping):
        return dict(path_or_dict)
    path = Path(path_or_dict)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ParameterError(f"hf config: no such file {str(path)!r}")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ParameterError(f"hf config: {str(path)!r} is not valid JSON ({err})") from None
    except OSError as err:
        raise ParameterError(f"hf config: cannot read {str(path)!r} ({err.strerror})") from None
    if not isinstance(cfg, dict):
        raise ParameterError(
            f"hf config: {str(path)!r} holds a JSON {type(cfg).__name__}, not an object"
        )
    return cfg


class _Config:
    """Typed key access whose errors name the key, its value and the model type."""

    def __init__(self, cfg: Mapping[str, Any], model_type: str) -> None:
        self.cfg, self.model_type = cfg, model_type

    def _fail(self, key: str, value: Any, allowed: str) -> ParameterError:
        return ParameterError(
            f"hf config ({self.model_type}): {key!r} = {_short(value)} is not allowed; "
            f"allowed: {allowed}"
        )

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def raw(self, key: str) -> Any:
        value = self.cfg.get(key)
        if value is None:
            raise ParameterError(f"hf config ({self.model_type}): required key {key!r} is missing")
        return value

    def int(self, key: str, default: int | None = None, lo: int = 1) -> int:
        """A whole number >= ``lo`` (JSON booleans and strings are refused, not guessed)."""
        if default is not None and not self.has(key):
            return default
        value = self.raw(key)
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            raise self._fail(key, value, f"a whole number >= {lo}")
        if value < lo:
            raise self._fail(key, value, f"a whole number >= {lo}")
        return int(value)

    def bool(self, key: str, default: bool) -> bool:
        """A JSON boolean (the string ``"false"`` is refused, not guessed)."""
        if not self.has(key):
            return default
        value = self.raw(key)
        if not isinstance(value, bool):
            raise self._fail(key, value, "true or false (a JSON boolean)")
        return value

    def str_list(self, key: str) -> list[str]:
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, value, "a list of strings")
        return value

    def int_list(self, key: str) -> list[builtins.int]:
        value = self.cfg.get(key) or []
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        if not ok:
            raise self._fail(key, value, "a list of whole numbers")
        return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text_config(cfg: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The language-model part of a config (``text_config`` of a vision-language model) and
    a description of where it was found."""
    if cfg.get("text_config") is None:
        return dict(cfg), "HF config"
    text = cfg["text_config"]
    if not isinstance(text, Mapping):
        raise ParameterError(
            f"hf config: 'text_config' = {text!r} is not allowed; allowed: a JSON object"
        )
    merged = dict(text)
    if merged.get("model_type") is None and cfg.get("model_type") is not None:
        merged["model_type"] = cfg["model_type"]  # recognised (or refused) by its outer type
    if merged.get("tie_word_embeddings") is None and cfg.get("tie_word_embeddings") is not None:
        merged["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    return merged, "HF text_config"


def _model_type(cfg: Mapping[str, Any]) -> str:
    model_type = cfg.get("model_type")
    if model_type is None:
        raise ParameterError(
            "hf config: required key 'model_type' is missing; supported: "
            + ", ".join(SUPPORTED_MODEL_TYPES)
        )
    if not isinstance(model_type, str):
        raise ParameterError(
            f"hf config: 'model_type' = {model_type!r} is not allowed; allowed: a string"
        )
    if model_type in UNSUPPORTED_MODEL_TYPES:
        raise ParameterError(
            f"hf config: model_type {model_type!r} needs "
            f"{UNSUPPORTED_MODEL_TYPES[model_type]}, which the limit model does not represent"
        )
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ParameterError(
            f"hf config: model_type {model_type!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return model_type


def _attention_fields(c: _Config, src: str) -> dict[str, Sourced]:
    heads = c.int("num_attention_heads")
    d_model = c.int("hidden_size")
    if c.has("num_key_value_heads"):
        kv: Sourced = (c.int("num_key_value_heads"), f"{src}: num_key_value_heads")
    else:
        kv = (heads, f"{src}: num_key_value_heads absent -> multi-head attention")
    fields: dict[str, Sourced] = {
        "n_heads": (heads, f"{src}: num_attention_heads"),
        "n_kv_heads": kv,
    }
    if c.model_type in _DEEPSEEK:
        fields["attention"] = ("mla", f"{src}: multi-head latent attention (kv_lora_rank)")
        fields["d_head"] = (c.int("v_head_dim"), f"{src}: v_head_dim (unused by MLA)")
        fields["kv_lora_rank"] = (c.int("kv_lora_rank"), f"{src}: kv_lora_rank")
        fields["q_lora_rank"] = (
            c.int("q_lora_rank", 0, lo=0),
            f"{src}: q_lora_rank (null: no query compression)",
        )
        for key in ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            fields[key] = (c.int(key), f"{src}: {key}")
        if c.has("index_topk"):
            fields["index_topk"] = (c.int("index_topk"), f"{src}: index_topk (sparse attention)")
            fields["index_n_heads"] = (c.int("index_n_heads"), f"{src}: index_n_heads")
            fields["index_head_dim"] = (c.int("index_head_dim"), f"{src}: index_head_dim")
        return fields
    if c.has("head_dim"):
        fields["d_head"] = (c.int("head_dim"), f"{src}: head_dim")
    elif d_model % heads == 0:
        fields["d_head"] = (d_model // heads, "hidden_size / num_attention_heads")
    else:
        raise ParameterError(
            f"hf config ({c.model_type}): hidden_size {d_model} is not a multiple "
            f"of num_attention_heads {heads} and key 'head_dim' is missing"
        )
    if heads % kv[0] != 0:
        raise ParameterError(
            f"hf config ({c.model_type}): num_key_value_heads {kv[0]} does not divide "
            f"num_attention_heads {heads}"
        )
    kind = "mha" if kv[0] == heads else "mqa" if kv[0] == 1 else "gqa"
    fields["attention"] = (kind, f"{src}: {kv[0]} KV heads for {heads} query heads")
    return fields


def _moe_layer_count(c: _Config, n_layers: int) -> int:
    """Layers whose FFN is a MoE block, by each family's placement rule."""
    if c.model_type in _DEEPSEEK:
        first_dense = c.int("first_k_dense_replace", 0, lo=0)
        freq = c.int("moe_layer_freq", 1)
        return sum(1 for i in range(n_layers) if i >= first_dense and i % freq == 0)
    if c.model_type in _QWEN_MOE or c.model_type in _QWEN_HYBRID:
        dense_only = set(c.int_list("mlp_only_layers"))
        step = c.int("decoder_sparse_step", 1)
        return sum(1 for i in range(n_layers) if i not in dense_only and (i + 1) % step == 0)
    if c.model_type in _LLAMA4:
        step = c.int("interleave_moe_layer_step", 1)
        return sum(1 for i in range(n_layers) if (i + 1) % step == 0)
    return n_layers


def _moe_fields(c: _Config, src: str, n_layers: int) -> dict[str, Sourced]:
    """Experts, router width, shared experts and dense layers of a MoE family."""
    shared: Sourced = (0, "no shared experts")
    fields: dict[str, Sourced] = {}
    if c.model_type in _MIXTRAL_STYLE_MOE:
        n_experts = (c.int("num_local_experts"), f"{src}: num_local_experts")
        d_expert = (c.int("intermediate_size"), f"{src}: intermediate_size (expert width)")
        if c.int("shared_intermediate_size", 0, lo=0) > 0:
            shared = (1, f"{src}: shared_intermediate_size > 0")
            fields["d_ff_shared"] = (
                c.int("shared_intermediate_size"),
                f"{src}: shared_intermediate_size",
            )
    elif c.model_type in _QWEN_MOE or c.model_type in _QWEN_HYBRID:
        n_experts = (c.int("num_experts"), f"{src}: num_experts")
        d_expert = (c.int("moe_intermediate_size"), f"{src}: moe_intermediate_size")
        if c.int("shared_expert_intermediate_size", 0, lo=0) > 0:
            shared = (1, f"{src}: shared_expert_intermediate_size > 0 (one shared expert)")
            fields["d_ff_shared"] = (
                c.int("shared_expert_intermediate_size"),
                f"{src}: shared_expert_intermediate_size",
            )
    elif c.model_type in _LLAMA4:
        n_experts = (c.int("num_local_experts"), f"{src}: num_local_experts")
        d_expert = (c.int("intermediate_size"), f"{src}: intermediate_size (expert width)")
        shared = (1, "Llama 4: one shared expert of intermediate_size in every MoE layer")
    elif c.model_type in _NEMOTRON_H:
        n_experts = (c.int("n_routed_experts"), f"{src}: n_routed_experts")
        d_expert = (c.int("moe_intermediate_size"), f"{src}: moe_intermediate_size")
        shared = (c.int("n_shared_experts", 0, lo=0), f"{src}: n_shared_experts")
        if c.has("moe_shared_expert_intermediate_size"):
            fields["d_ff_shared"] = (
                c.int("moe_shared_expert_intermediate_size"),
                f"{src}: moe_shared_expert_intermediate_size",
            )
        if c.has("moe_latent_size"):
            fields["moe_latent_dim"] = (
                c.int("moe_latent_size"),
                f"{src}: moe_latent_size (experts act in a latent space)",
            )
    else:  # DeepSeek family
        n_experts = (c.int("n_routed_experts"), f"{src}: n_routed_experts")
        d_expert = (c.int("moe_intermediate_size"), f"{src}: moe_intermediate_size")
        shared = (c.int("n_shared_experts", 0, lo=0), f"{src}: n_shared_experts")
    if c.model_type == "gpt_oss" and not c.has("num_experts_per_tok"):
        top_k: Sourced = (c.int("experts_per_token"), f"{src}: experts_per_token")
    else:
        top_k = (c.int("num_experts_per_tok"), f"{src}: num_experts_per_tok")
    fields.update(
        {
            "ffn": ("moe", f"{n_experts[1]} > 0"),
            "n_experts": n_experts,
            "top_k": top_k,
            "n_shared_experts": shared,
            "d_ff_expert": d_expert,
        }
    )
    if c.model_type not in _NEMOTRON_H:
        moe_layers = _moe_layer_count(c, n_layers)
        fields["n_dense_layers"] = (n_layers - moe_layers, _dense_layer_source(c, src))
    return fields


def _dense_layer_source(c: _Config, src: str) -> str:
    if c.model_type in _DEEPSEEK:
        return f"{src}: first_k_dense_replace (and moe_layer_freq)"
    if c.model_type in _QWEN_MOE or c.model_type in _QWEN_HYBRID:
        return f"{src}: mlp_only_layers and decoder_sparse_step"
    if c.model_type in _LLAMA4:
        return f"{src}: interleave_moe_layer_step (every step-th layer is MoE)"
    return "every layer is MoE"


def _ffn_fields(c: _Config, src: str, n_layers: int) -> dict[str, Sourced]:
    relu2 = c.cfg.get("mlp_hidden_act") == "relu2"
    fields: dict[str, Sourced] = {
        "ffn_matrices": (2, f"{src}: mlp_hidden_act relu2 (up, down)")
        if relu2
        else (3, "gated FFN (SwiGLU): gate, up, down")
    }
    if c.model_type in _LLAMA4:
        fields["d_ff"] = (c.int("intermediate_size_mlp"), f"{src}: intermediate_size_mlp")
    elif c.has("intermediate_size"):
        fields["d_ff"] = (c.int("intermediate_size"), f"{src}: intermediate_size")
    moe = (
        c.model_type in _MIXTRAL_STYLE_MOE
        or c.model_type in _QWEN_MOE
        or c.model_type in _DEEPSEEK
        or c.model_type in _LLAMA4
        or (c.model_type in _QWEN_HYBRID and c.has("num_experts"))
        or (c.model_type in _NEMOTRON_H and c.has("n_routed_experts"))
    )
    if moe:
        fields.update(_moe_fields(c, src, n_layers))
        fields.setdefault("d_ff", (fields["d_ff_expert"][0], "no dense layers: unused"))
    else:
        fields["ffn"] = ("dense", f"{src}: model_type {c.model_type}, no experts")
        if "d_ff" not in fields:
            fields["d_ff"] = (c.int("intermediate_size"), f"{src}: intermediate_size")
    return fields


def _hybrid_fields(c: _Config, src: str) -> tuple[int, dict[str, Sourced]]:
    """Layer count and linear-mixer fields of a hybrid (Qwen3.5 Gated DeltaNet, Nemotron-H
    Mamba2); ``n_layers`` counts token-mixer layers."""
    if c.model_type in _QWEN_HYBRID:
        n_blocks = c.int("num_hidden_layers")
        if c.has("layer_types"):
            types = c.str_list("layer_types")
            n_linear, how = types.count("linear_attention"), f"{src}: layer_types"
        else:
            interval = c.int("full_attention_interval", 4)
            n_linear = sum(1 for i in range(n_blocks) if (i + 1) % interval != 0)
            how = f"{src}: full_attention_interval"
        fields: dict[str, Sourced] = {
            "n_linear_layers": (n_linear, f"{how} (linear_attention layers)"),
            "linear_k_heads": (c.int("linear_num_key_heads"), f"{src}: linear_num_key_heads"),
            "linear_k_dim": (c.int("linear_key_head_dim"), f"{src}: linear_key_head_dim"),
            "linear_v_heads": (c.int("linear_num_value_heads"), f"{src}: linear_num_value_heads"),
            "linear_v_dim": (c.int("linear_value_head_dim"), f"{src}: linear_value_head_dim"),
            "linear_conv_kernel": (
                c.int("linear_conv_kernel_dim"),
                f"{src}: linear_conv_kernel_dim",
            ),
        }
        return n_blocks, fields
    # Nemotron-H: one block per character of hybrid_override_pattern (M Mamba2, * attention,
    # - MLP, E MoE), or per entry of layers_block_type in newer configs
    pattern, key = _nemotron_pattern(c)
    if c.has("num_hidden_layers") and len(pattern) != c.int("num_hidden_layers"):
        raise ParameterError(
            f"hf config ({c.model_type}): {key!r} has {len(pattern)} blocks but "
            f"num_hidden_layers is {c.int('num_hidden_layers')}"
        )
    mixers, ffns = pattern.count("M") + pattern.count("*"), pattern.count("-") + pattern.count("E")
    if pattern.count("-") and pattern.count("E"):
        raise ParameterError(
            f"hf config ({c.model_type}): a pattern mixing MLP (-) and MoE (E) blocks needs "
            "dense and MoE layers in one hybrid, which the limit model does not represent"
        )
    if ffns > mixers:
        raise ParameterError(
            f"hf config ({c.model_type}): more FFN blocks ({ffns}) than mixer blocks "
            f"({mixers}) in 'hybrid_override_pattern' is not represented"
        )
    fields = {
        "n_linear_layers": (pattern.count("M"), f"{src}: {key} (Mamba2 blocks)"),
        "n_ffn_free_layers": (
            mixers - ffns,
            f"{src}: {key} (Mamba2/attention blocks minus MLP/MoE blocks)",
        ),
        "linear_k_heads": (c.int("n_groups"), f"{src}: n_groups (Mamba2 B/C groups)"),
        "linear_k_dim": (c.int("ssm_state_size"), f"{src}: ssm_state_size"),
        "linear_v_heads": (c.int("mamba_num_heads"), f"{src}: mamba_num_heads"),
        "linear_v_dim": (c.int("mamba_head_dim"), f"{src}: mamba_head_dim"),
        "linear_conv_kernel": (c.int("conv_kernel"), f"{src}: conv_kernel"),
    }
    return mixers, fields


_BLOCK_CODES = {"mamba": "M", "attention": "*", "mlp": "-", "moe": "E"}


def _nemotron_pattern(c: _Config) -> tuple[str, str]:
    """Nemotron-H block layout as a pattern string, and the key it came from."""
    if c.has("hybrid_override_pattern"):
        pattern = c.raw("hybrid_override_pattern")
        if isinstance(pattern, str) and pattern and not set(pattern) - set("M*-E"):
            return pattern, "hybrid_override_pattern"
        raise c._fail(
            "hybrid_override_pattern",
            pattern,
            "characters M (Mamba2), * (attention), - (MLP), E (MoE)",
        )
    blocks = c.str_list("layers_block_type")
    if not blocks or set(blocks) - set(_BLOCK_CODES):
        raise c._fail("layers_block_type", blocks, "a list of " + ", ".join(_BLOCK_CODES))
    return "".join(_BLOCK_CODES[b] for b in blocks), "layers_block_type"


def _window_fields(c: _Config, src: str, n_layers: int) -> dict[str, Sourced]:
    if c.model_type in _LLAMA4:
        if not c.has("attention_chunk_size"):
            return {}
        global_every = 4  # Llama 4: no_rope_layers, every 4th layer attends globally
        n_chunked = n_layers - n_layers // global_every
        return {
            "sliding_window": (
                c.int("attention_chunk_size"),
                f"{src}: attention_chunk_size (chunked attention read as a window)",
            ),
            "sliding_window_layer_fraction": (
                n_chunked / n_layers,
                "Llama 4: chunked attention on 3 of every 4 layers",
            ),
        }
    if not c.has("sliding_window"):
        return {}
    if c.has("layer_types"):
        types = [t for t in c.str_list("layer_types") if t != "linear_attention"]
        n_windowed = types.count("sliding_attention")
        n_attn = len(types)
        source = f"{src}: layer_types (sliding_attention layers / attention layers)"
    elif c.model_type in ("mistral", "mixtral"):
        n_windowed, n_attn, source = n_layers, n_layers, "sliding_window applies to every layer"
    elif c.model_type in _QWEN:
        first = c.int("max_window_layers", n_layers, lo=0)
        used = c.bool("use_sliding_window", False)
        n_windowed, n_attn = (max(n_layers - first, 0) if used else 0), n_layers
        source = f"{src}: use_sliding_window, layers from max_window_layers on"
    elif c.model_type == "gpt_oss":
        n_windowed, n_attn = (n_layers + 1) // 2, n_layers
        source = "gpt-oss default: every other layer windowed (layer_types absent)"
    else:
        n_windowed, n_attn, source = 0, n_layers, ""
    if n_windowed == 0 or n_attn == 0:
        return {}
    return {
        "sliding_window": (c.int("sliding_window"), f"{src}: sliding_window"),
        "sliding_window_layer_fraction": (n_windowed / n_attn, source),
    }


def _mtp_fields(c: _Config, src: str) -> dict[str, Sourced]:
    for key in ("num_nextn_predict_layers", "mtp_num_hidden_layers"):
        if c.has(key):
            n = c.int(key, lo=0)
            return {"n_mtp_layers": (n, f"{src}: {key}")} if n else {}
    if c.model_type == "minimax_m2" and c.bool("use_mtp", False):
        n = c.int("num_mtp_modules") * c.int("mtp_transformer_layers", 1)
        return {"n_mtp_layers": (n, f"{src}: num_mtp_modules x mtp_transformer_layers")}
    return {}


def hf_model_fields(
    config: str | Path | Mapping[str, Any], name: str | None = None, n_params: float | None = None
) -> dict[str, Sourced]:
    """Every ``Model`` field the config determines, as ``(value, source)`` pairs.

    **Arguments:** ``config`` a mapping, a ``config.json`` path or a folder holding one;
    ``name`` the preset name (default: from the file or folder name, else the model type);
    ``n_params`` the nominal parameter count (default 0: count from the architecture).

    **Returns:** field name -> (value, text naming the config key or rule it came from).
    """
    top = load_hf_config(config)
    cfg, src = _text_config(top)
    c = _Config(cfg, _model_type(cfg))
    if c.model_type in _QWEN_HYBRID or c.model_type in _NEMOTRON_H:
        n_layers, hybrid = _hybrid_fields(c, src)
        layer_source = f"{src}: num_hidden_layers (token-mixer layers)"
        if c.model_type in _NEMOTRON_H:
            layer_source = f"{src}: {_nemotron_pattern(c)[1]} (Mamba2 and attention blocks)"
    else:
        n_layers, hybrid = c.int("num_hidden_layers"), {}
        layer_source = f"{src}: num_hidden_layers"
    if name is not None and not _NAME.match(name):
        raise ParameterError(
            f"hf config: preset name {name!r} is not allowed; allowed: letters, digits, "
            "'_', '.', '-' (at most 128, not starting with '.' or '-')"
        )
    fields: dict[str, Sourced] = {
        "name": (name or _default_name(config, c.model_type), "preset name")
    }
    fields.update(_attention_fields(c, src))
    fields.update(_ffn_fields(c, src, n_layers))
    tied = c.bool("tie_word_embeddings", False)
    tied_source = (
        f"{src}: tie_word_embeddings"
        if c.has("tie_word_embeddings")
        else "tie_word_embeddings absent: untied"
    )
    if n_params is not None and (
        not isinstance(n_params, (int, float)) or not math.isfinite(n_params) or n_params < 0
    ):
        raise ParameterError(f"hf config: n_params = {n_params!r} is not allowed; allowed: >= 0")
    fields.update(
        {
            "tied_embeddings": ("true" if tied else "false", tied_source),
            "n_layers": (n_layers, layer_source),
            "d_model": (c.int("hidden_size"), f"{src}: hidden_size"),
            "vocab": (c.int("vocab_size"), f"{src}: vocab_size"),
            "n_params": (
                float(n_params or 0.0),
                "nominal count given by the user"
                if n_params
                else "0: count parameters from the architecture",
            ),
        }
    )
    fields.update(_window_fields(c, src, n_layers))
    if c.has("max_position_embeddings"):
        fields["max_context"] = (
            c.int("max_position_embeddings"),
            f"{src}: max_position_embeddings",
        )
    fields.update(hybrid)
    fields.update(_mtp_fields(c, src))
    order = [f.name for f in dataclasses.fields(Model)]
    return {key: fields[key] for key in order if key in fields}


def hf_weight_bytes(config: str | Path | Mapping[str, Any]) -> Sourced | None:
    """Bytes per weight implied by ``quantization_config`` (top level or in ``text_config``),
    with its source; ``None`` when the config names no quantization (weights as trained).
    Mixed-precision recipes are refused: their bytes per weight depend on the layer."""
    top = load_hf_config(config)
    text: Mapping[str, Any] = (
        top["text_config"] if isinstance(top.get("text_config"), Mapping) else {}
    )
    q = top.get("quantization_config") or text.get("quantization_config")
    if q is None:
        return None
    if not isinstance(q, Mapping):
        raise ParameterError(
            f"hf config: 'quantization_config' = {q!r} is not allowed; allowed: a JSON object"
        )
    method = str(q.get("quant_method", "")).lower()
    algo = str(q.get("quant_algo") or "").upper()
    if method == "fp8" or algo == "FP8":
        return 1.0, f"quantization_config: {method or algo} -> 1 byte per weight"
    if method == "mxfp4" or algo in ("NVFP4", "MXFP4"):
        return 0.5, f"quantization_config: {method if method == 'mxfp4' else algo} -> 0.5 byte"
    if method == "compressed-tensors":
        bits = {
            (g.get("weights") or {}).get("num_bits")
            for g in (q.get("config_groups") or {}).values()
            if isinstance(g, Mapping)
        }
        if len(bits) == 1 and next(iter(bits)) in (4, 8):
            b = int(next(iter(bits)) or 0)
            return b / 8.0, f"quantization_config: compressed-tensors {b}-bit weights"
    raise ParameterError(
        f"hf config: quantization_config (quant_method {method or '?'}, quant_algo "
        f"{algo or '?'}) does not imply one weight precision"
    )


def _default_name(config: Any, model_type: str) -> str:
    if isinstance(config, Mapping):
        raw = str(config.get("_name_or_path") or model_type).split("/")[-1]
    else:
        path = Path(config)
        raw = (
            path.name if path.is_dir() else path.parent.name if path.stem == "config" else path.stem
        )
    return re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_") or model_type


def model_from_hf_config(
    path_or_dict: str | Path | Mapping[str, Any],
    name: str | None = None,
    n_params: float | None = None,
) -> Model:
    """A ``Model`` from a Hugging Face config (see :func:`hf_model_fields`)."""
    fields = hf_model_fields(path_or_dict, name, n_params)
    values: dict[str, Any] = {
        k: (v if isinstance(v, str) else float(v)) for k, (v, _) in fields.items()
    }
    return Model(**values)


def _yaml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value) if value in ("true", "false") else value
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if float(value) == int(value):
        return f"{value / 1e9:g}e9" if value >= 1e9 else str(int(value))
    return repr(float(value))


def _comment(text: str) -> str:
    """Text safe inside one YAML comment line (no line breaks can start a new key)."""
    return json.dumps(str(text))[1:-1]


def preset_yaml(
    path_or_dict: str | Path | Mapping[str, Any],
    name: str | None = None,
    n_params: float | None = None,
) -> str:
    """The preset YAML text of a Hugging Face config, one source comment per line."""
    fields = hf_model_fields(path_or_dict, name, n_params)
    model_from_hf_config(path_or_dict, name, n_params)  # refuse what Model refuses
    origin = path_or_dict if not isinstance(path_or_dict, Mapping) else "a config mapping"
    text, _ = _text_config(load_hf_config(path_or_dict))
    lines = [
        f"# {fields['name'][0]}: generated by `python -m limits.presets.hf` from "
        f"{_comment(str(origin))} (Hugging Face config, model_type {_comment(text['model_type'])})."
    ]
    try:
        weight = hf_weight_bytes(path_or_dict)
    except ParameterError as err:  # the architecture still imports; say why no precision
        lines.append(f"# deployment.weight_bytes: not implied ({_comment(str(err))})")
    else:
        if weight is not None:
            lines.append(f"# deployment.weight_bytes = {weight[0]:g} ({_comment(weight[1])})")
    for key, (value, source) in fields.items():
        lines.append(f"{key + ': ' + _yaml_value(value):<31} # {_comment(source)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: print the preset YAML of a Hugging Face ``config.json`` to stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m limits.presets.hf", description=__doc__.split("\n")[0]
    )
    parser.add_argument("config", help="path to a Hugging Face config.json (or its folder)")
    parser.add_argument("--name", help="preset name (default: from the file or folder name)")
    parser.add_argument(
        "--n-params",
        type=float,
        default=None,
        help="nominal parameter count, e.g. 70e9 (default: from architecture)",
    )
    args = parser.parse_args(argv)
    try:
        text = preset_yaml(args.config, args.name, args.n_params)
    except ParameterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
