"""Model presets from local Hugging Face ``config.json`` files (no network).

``model_from_hf_config("config.json")`` reads the architecture fields the limit model needs;
``python -m limits.presets.hf config.json --name my_model > limits/conf/model/my_model.yaml`` writes
a preset whose every line names the config key it came from.

Supported ``model_type`` values: llama, mistral, mixtral, qwen2, qwen3, qwen3_moe, deepseek_v3,
gpt_oss. Conventions:

- ``head_dim`` defaults to ``hidden_size / num_attention_heads``; a missing
  ``num_key_value_heads`` means multi-head attention; the attention kind is ``mha`` when the
  KV heads equal the query heads, ``mqa`` for one KV head, ``gqa`` otherwise and ``mla`` for
  DeepSeek (whose ``d_head`` is taken as ``v_head_dim``; MLA does not use it);
- every supported family uses a gated (SwiGLU) FFN: ``ffn_matrices = 3``;
- a missing ``tie_word_embeddings`` means untied (the default of every supported family);
- the windowed-layer fraction comes from ``layer_types`` when present, else from each family's
  rule (Mistral/Mixtral: all layers; Qwen: layers from ``max_window_layers`` on when
  ``use_sliding_window``; gpt-oss: every other layer, starting with the first);
- ``n_params`` is the nominal count given by the caller (0: count from the architecture).
"""

from __future__ import annotations

import argparse
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
    "load_hf_config",
    "hf_model_fields",
    "model_from_hf_config",
    "preset_yaml",
    "main",
]

SUPPORTED_MODEL_TYPES = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "qwen3_moe",
    "deepseek_v3",
    "gpt_oss",
)

_MIXTRAL_STYLE_MOE = ("mixtral", "gpt_oss")  # num_local_experts, FFN width = intermediate_size
_QWEN = ("qwen2", "qwen3", "qwen3_moe")

#: (value, where it came from) for one Model field
Sourced = tuple[Any, str]


def load_hf_config(path_or_dict: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The config mapping from a dict, a ``config.json`` path, or a folder holding one."""
    if isinstance(path_or_dict, Mapping):
        return dict(path_or_dict)
    path = Path(path_or_dict)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ParameterError(f"hf config: no such file {str(path)!r}")
    with path.open() as fh:
        return json.load(fh)


class _Config:
    """Key access that names the missing key and the model type in its error."""

    def __init__(self, cfg: Mapping[str, Any], model_type: str) -> None:
        self.cfg, self.model_type = cfg, model_type

    def required(self, key: str) -> Any:
        value = self.cfg.get(key)
        if value is None:
            raise ParameterError(f"hf config ({self.model_type}): required key {key!r} is missing")
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.cfg.get(key)
        return default if value is None else value

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None


def _model_type(cfg: Mapping[str, Any]) -> str:
    model_type = cfg.get("model_type")
    if model_type is None:
        raise ParameterError(
            "hf config: required key 'model_type' is missing; supported: "
            + ", ".join(SUPPORTED_MODEL_TYPES)
        )
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ParameterError(
            f"hf config: model_type {model_type!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return model_type


def _attention_fields(c: _Config) -> dict[str, Sourced]:
    heads = int(c.required("num_attention_heads"))
    d_model = int(c.required("hidden_size"))
    if c.has("num_key_value_heads"):
        kv: Sourced = (int(c.get("num_key_value_heads")), "HF config: num_key_value_heads")
    else:
        kv = (heads, "HF config: num_key_value_heads absent -> multi-head attention")
    fields: dict[str, Sourced] = {
        "n_heads": (heads, "HF config: num_attention_heads"),
        "n_kv_heads": kv,
    }
    if c.model_type == "deepseek_v3":
        fields["attention"] = ("mla", "HF config: DeepSeek multi-head latent attention")
        fields["d_head"] = (int(c.required("v_head_dim")), "HF config: v_head_dim (unused by MLA)")
        fields["kv_lora_rank"] = (int(c.required("kv_lora_rank")), "HF config: kv_lora_rank")
        fields["q_lora_rank"] = (
            int(c.get("q_lora_rank", 0)),
            "HF config: q_lora_rank (null: no query compression)",
        )
        for key in ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            fields[key] = (int(c.required(key)), f"HF config: {key}")
        return fields
    if c.has("head_dim"):
        fields["d_head"] = (int(c.get("head_dim")), "HF config: head_dim")
    elif d_model % heads == 0:
        fields["d_head"] = (d_model // heads, "hidden_size / num_attention_heads")
    else:
        raise ParameterError(
            f"hf config ({c.model_type}): hidden_size {d_model} is not a multiple "
            f"of num_attention_heads {heads} and key 'head_dim' is missing"
        )
    kind = "mha" if kv[0] == heads else "mqa" if kv[0] == 1 else "gqa"
    fields["attention"] = (kind, f"HF config: {kv[0]} KV heads for {heads} query heads")
    return fields


def _moe_layer_count(c: _Config, n_layers: int) -> int:
    """Layers whose FFN is a MoE block, by each family's placement rule."""
    if c.model_type == "deepseek_v3":
        first_dense = int(c.get("first_k_dense_replace", 0))
        freq = int(c.get("moe_layer_freq", 1))
        return sum(1 for i in range(n_layers) if i >= first_dense and i % freq == 0)
    if c.model_type == "qwen3_moe":
        dense_only = set(c.get("mlp_only_layers", []))
        step = int(c.get("decoder_sparse_step", 1))
        return sum(1 for i in range(n_layers) if i not in dense_only and (i + 1) % step == 0)
    return n_layers


def _ffn_fields(c: _Config, n_layers: int) -> dict[str, Sourced]:
    fields: dict[str, Sourced] = {
        "d_ff": (int(c.required("intermediate_size")), "HF config: intermediate_size"),
        "ffn_matrices": (3, "gated SiLU FFN (SwiGLU): gate, up, down"),
    }
    if c.model_type in _MIXTRAL_STYLE_MOE:
        n_experts = (int(c.required("num_local_experts")), "HF config: num_local_experts")
        d_expert = (fields["d_ff"][0], "HF config: intermediate_size (expert width)")
        shared: Sourced = (0, "no shared experts")
    elif c.model_type == "qwen3_moe":
        n_experts = (int(c.required("num_experts")), "HF config: num_experts")
        d_expert = (int(c.required("moe_intermediate_size")), "HF config: moe_intermediate_size")
        shared = (0, "no shared experts")
    elif c.model_type == "deepseek_v3":
        n_experts = (int(c.required("n_routed_experts")), "HF config: n_routed_experts")
        d_expert = (int(c.required("moe_intermediate_size")), "HF config: moe_intermediate_size")
        shared = (int(c.get("n_shared_experts", 0)), "HF config: n_shared_experts")
    else:
        fields["ffn"] = ("dense", f"HF config: model_type {c.model_type}, no experts")
        return fields
    if c.model_type == "gpt_oss" and not c.has("num_experts_per_tok"):
        top_k: Sourced = (int(c.required("experts_per_token")), "HF config: experts_per_token")
    else:
        top_k = (int(c.required("num_experts_per_tok")), "HF config: num_experts_per_tok")
    moe_layers = _moe_layer_count(c, n_layers)
    fields.update(
        {
            "ffn": ("moe", f"{n_experts[1]} > 0"),
            "n_experts": n_experts,
            "top_k": top_k,
            "n_shared_experts": shared,
            "d_ff_expert": d_expert,
            "n_dense_layers": (n_layers - moe_layers, _dense_layer_source(c)),
        }
    )
    return fields


def _dense_layer_source(c: _Config) -> str:
    if c.model_type == "deepseek_v3":
        return "HF config: first_k_dense_replace (and moe_layer_freq)"
    if c.model_type == "qwen3_moe":
        return "HF config: mlp_only_layers and decoder_sparse_step"
    return "every layer is MoE"


def _window_fields(c: _Config, n_layers: int) -> dict[str, Sourced]:
    window = c.get("sliding_window")
    if window is None:
        return {}
    if c.has("layer_types"):
        n_windowed = sum(1 for t in c.get("layer_types") if t == "sliding_attention")
        source = "HF config: layer_types (sliding_attention layers / all)"
    elif c.model_type in ("mistral", "mixtral"):
        n_windowed, source = n_layers, "sliding_window applies to every layer"
    elif c.model_type in _QWEN:
        first = int(c.get("max_window_layers", n_layers))
        n_windowed = n_layers - first if c.get("use_sliding_window", False) else 0
        source = "HF config: use_sliding_window, layers from max_window_layers on"
    elif c.model_type == "gpt_oss":
        n_windowed = (n_layers + 1) // 2
        source = "gpt-oss default: every other layer windowed (layer_types absent)"
    else:
        n_windowed, source = 0, ""
    if n_windowed == 0:
        return {}
    return {
        "sliding_window": (int(window), "HF config: sliding_window"),
        "sliding_window_layer_fraction": (n_windowed / n_layers, source),
    }


def hf_model_fields(
    config: str | Path | Mapping[str, Any], name: str | None = None, n_params: float | None = None
) -> dict[str, Sourced]:
    """Every ``Model`` field the config determines, as ``(value, source)`` pairs.

    **Arguments:** ``config`` a mapping, a ``config.json`` path or a folder holding one;
    ``name`` the preset name (default: from the file or folder name, else the model type);
    ``n_params`` the nominal parameter count (default 0: count from the architecture).

    **Returns:** field name -> (value, text naming the config key or rule it came from).
    """
    cfg = load_hf_config(config)
    c = _Config(cfg, _model_type(cfg))
    n_layers = int(c.required("num_hidden_layers"))
    fields: dict[str, Sourced] = {
        "name": (name or _default_name(config, c.model_type), "preset name")
    }
    fields.update(_attention_fields(c))
    fields.update(_ffn_fields(c, n_layers))
    tied = bool(c.get("tie_word_embeddings", False))
    tied_source = (
        "HF config: tie_word_embeddings"
        if c.has("tie_word_embeddings")
        else "tie_word_embeddings absent: untied"
    )
    fields.update(
        {
            "tied_embeddings": ("true" if tied else "false", tied_source),
            "n_layers": (n_layers, "HF config: num_hidden_layers"),
            "d_model": (int(c.required("hidden_size")), "HF config: hidden_size"),
            "vocab": (int(c.required("vocab_size")), "HF config: vocab_size"),
            "n_params": (
                float(n_params or 0.0),
                "nominal count given by the user"
                if n_params
                else "0: count parameters from the architecture",
            ),
        }
    )
    fields.update(_window_fields(c, n_layers))
    if c.has("max_position_embeddings"):
        fields["max_context"] = (
            int(c.get("max_position_embeddings")),
            "HF config: max_position_embeddings",
        )
    order = [f.name for f in dataclasses.fields(Model)]
    return {key: fields[key] for key in order if key in fields}


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
    values = {k: (v if isinstance(v, str) else float(v)) for k, (v, _) in fields.items()}
    return Model(**values)


def _yaml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"' if value in ("true", "false") else value
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if float(value) == int(value):
        return f"{value / 1e9:g}e9" if value >= 1e9 else str(int(value))
    return repr(float(value))


def preset_yaml(
    path_or_dict: str | Path | Mapping[str, Any],
    name: str | None = None,
    n_params: float | None = None,
) -> str:
    """The preset YAML text of a Hugging Face config, one source comment per line."""
    fields = hf_model_fields(path_or_dict, name, n_params)
    origin = path_or_dict if not isinstance(path_or_dict, Mapping) else "a config mapping"
    model_type = load_hf_config(path_or_dict)["model_type"]
    lines = [
        f"# {fields['name'][0]}: generated by `python -m limits.presets.hf` from {origin} "
        f"(Hugging Face config, model_type {model_type})."
    ]
    for key, (value, source) in fields.items():
        lines.append(f"{key + ': ' + _yaml_value(value):<31} # {source}")
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
