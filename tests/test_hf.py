"""The Hugging Face config loader: public configs reproduce the hand-written presets, errors name
what is wrong, and the CLI's YAML round-trips."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from limits.model.architecture import architecture_params
from limits.model.params import Model, ParameterError
from limits.presets import load_preset
from limits.presets.hf import (
    SUPPORTED_MODEL_TYPES,
    hf_weight_bytes,
    main,
    model_from_hf_config,
    preset_yaml,
)

DATA = Path(__file__).parent / "data" / "hf"
REPO = Path(__file__).resolve().parents[1]

FIXTURE_PRESET = {
    "llama-3.1-405b.json": "llama3_405b",
    "deepseek-v3.json": "deepseek_v3",
    "mixtral-8x7b.json": "mixtral_8x7b",
    "gpt-oss-120b.json": "gpt_oss_120b",
}
NOT_ARCHITECTURE = {"name", "n_params"}  # preset identity and nominal (published) size


def _architecture(m: Model) -> dict:
    return {
        f.name: getattr(m, f.name)
        for f in dataclasses.fields(Model)
        if f.name not in NOT_ARCHITECTURE
    }


@pytest.mark.parametrize("fixture, preset", sorted(FIXTURE_PRESET.items()))
def test_fixture_reproduces_preset_architecture(fixture, preset):
    loaded = model_from_hf_config(DATA / fixture)
    expected = Model.from_mapping(load_preset("model", preset))
    assert _architecture(loaded) == _architecture(expected)
    assert loaded.n_params == 0.0  # no nominal count given: counted from the architecture


def test_name_and_nominal_params_pass_through():
    m = model_from_hf_config(DATA / "mixtral-8x7b.json", name="mx", n_params=46.7e9)
    assert (m.name, m.n_params) == ("mx", 46.7e9)
    assert model_from_hf_config(DATA / "mixtral-8x7b.json").name == "mixtral_8x7b"


def _llama(**changes):
    cfg = json.loads((DATA / "llama-3.1-405b.json").read_text())
    cfg.update(changes)
    return {k: v for k, v in cfg.items() if v is not None}


def test_attention_kind_follows_kv_heads():
    assert model_from_hf_config(_llama(num_key_value_heads=128)).attention == "mha"
    assert model_from_hf_config(_llama(num_key_value_heads=1)).attention == "mqa"
    assert model_from_hf_config(_llama(num_key_value_heads=16)).attention == "gqa"
    missing = model_from_hf_config(_llama(num_key_value_heads=None))
    assert (missing.attention, missing.n_kv_heads) == ("mha", 128)


def test_head_dim_default_and_override():
    assert model_from_hf_config(_llama()).d_head == 16384 / 128
    assert model_from_hf_config(_llama(head_dim=256)).d_head == 256


def test_tied_embeddings_and_missing_flag():
    assert model_from_hf_config(_llama(tie_word_embeddings=True)).tied_embeddings == "true"
    assert model_from_hf_config(_llama(tie_word_embeddings=None)).tied_embeddings == "false"


def test_qwen3_moe_and_sliding_window_rules():
    qwen = {
        "model_type": "qwen3_moe",
        "num_hidden_layers": 94,
        "hidden_size": 4096,
        "num_attention_heads": 64,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "intermediate_size": 12288,
        "moe_intermediate_size": 1536,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": False,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "sliding_window": None,
        "use_sliding_window": False,
        "max_window_layers": 94,
    }
    m = model_from_hf_config(qwen)
    assert _architecture(m) == _architecture(
        Model.from_mapping(load_preset("model", "qwen3_235b_a22b"))
    )
    assert model_from_hf_config({**qwen, "mlp_only_layers": [0, 1]}).n_dense_layers == 2
    windowed = model_from_hf_config(
        {**qwen, "use_sliding_window": True, "sliding_window": 4096, "max_window_layers": 47}
    )
    assert (windowed.sliding_window, windowed.sliding_window_layer_fraction) == (4096, 0.5)
    mistral = model_from_hf_config(_llama(model_type="mistral", sliding_window=4096))
    assert (mistral.sliding_window, mistral.sliding_window_layer_fraction) == (4096, 1.0)


def test_gpt_oss_without_layer_types_alternates_windows():
    cfg = json.loads((DATA / "gpt-oss-120b.json").read_text())
    del cfg["layer_types"]
    assert model_from_hf_config(cfg).sliding_window_layer_fraction == 0.5


def test_unsupported_model_type_names_type_and_supported_list():
    with pytest.raises(ParameterError) as err:
        model_from_hf_config(_llama(model_type="falcon"))
    message = str(err.value)
    assert "'falcon'" in message
    assert all(t in message for t in SUPPORTED_MODEL_TYPES)


@pytest.mark.parametrize(
    "fixture, key",
    [
        ("llama-3.1-405b.json", "hidden_size"),
        ("llama-3.1-405b.json", "model_type"),
        ("deepseek-v3.json", "kv_lora_rank"),
        ("deepseek-v3.json", "n_routed_experts"),
        ("mixtral-8x7b.json", "num_local_experts"),
    ],
)
def test_missing_key_is_named(fixture, key):
    cfg = json.loads((DATA / fixture).read_text())
    del cfg[key]
    with pytest.raises(ParameterError, match=f"'{key}'"):
        model_from_hf_config(cfg)


@pytest.mark.parametrize("fixture", sorted(FIXTURE_PRESET))
def test_preset_yaml_round_trips(fixture):
    text = preset_yaml(DATA / fixture, n_params=123e9)
    assert Model.from_mapping(yaml.safe_load(text)) == model_from_hf_config(
        DATA / fixture, n_params=123e9
    )
    value_lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert all("# " in ln for ln in value_lines), "every generated line names its source"


def test_generated_preset_counts_like_hand_written_one():
    m = Model.from_mapping(yaml.safe_load(preset_yaml(DATA / "deepseek-v3.json")))
    assert float(architecture_params(m)) == pytest.approx(671e9, rel=0.02)


@pytest.mark.subprocess
def test_cli_prints_yaml_that_round_trips(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text((DATA / "gpt-oss-120b.json").read_text())
    out = subprocess.run(
        [sys.executable, "-m", "limits.presets.hf", str(cfg), "--name", "oss"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"},
    ).stdout
    loaded = Model.from_mapping(yaml.safe_load(out))
    assert loaded == model_from_hf_config(cfg, name="oss")


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps(_llama(model_type="falcon")))
    assert main([str(bad)]) == 2
    assert "falcon" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json")]) == 2


# --- the whole shipped corpus and hardening -------------------------------------------------

CORPUS = sorted(p for p in DATA.glob("*--*.json"))


def test_corpus_is_shipped():
    assert len(CORPUS) >= 80, "tests/data/hf holds the public configs (see its README.md)"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_every_shipped_config_imports_or_is_refused_in_one_line(path):
    try:
        text = preset_yaml(path)
    except ParameterError as err:
        message = str(err)
        assert "\n" not in message and message.startswith("hf config")
        assert "not represent" in message or "missing" in message or "not allowed" in message
        return
    model = Model.from_mapping(yaml.safe_load(text))
    assert float(architecture_params(model)) > 1e8


def test_refusal_names_the_missing_feature():
    with pytest.raises(ParameterError, match=r"deepseek_v4.*compressed attention"):
        model_from_hf_config(DATA / "deepseek-ai--DeepSeek-V4-Flash.json")
    with pytest.raises(ParameterError, match=r"nemotron-nas.*block_configs"):
        model_from_hf_config(DATA / "nvidia--Llama-3_3-Nemotron-Super-49B-v1.json")


def test_nested_text_config_is_read():
    vl = model_from_hf_config(DATA / "Qwen--Qwen3-VL-32B-Instruct.json")
    text_only = model_from_hf_config(DATA / "Qwen--Qwen3-32B.json")
    assert vl.max_context == 262144 != text_only.max_context  # the VL model's own context
    assert _architecture(vl.replace(max_context=text_only.max_context)) == _architecture(text_only)


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("Qwen--Qwen3-32B.json", None),  # no quantization_config: weights as trained
        ("Qwen--Qwen3-32B-FP8.json", 1.0),  # quant_method fp8
        ("openai--gpt-oss-20b.json", 0.5),  # quant_method mxfp4
        ("nvidia--GLM-5.1-NVFP4.json", 0.5),  # modelopt NVFP4
        ("moonshotai--Kimi-K2.5.json", 0.5),  # compressed-tensors, 4-bit weight groups
    ],
)
def test_quantization_config_implies_weight_bytes(fixture, expected):
    implied = hf_weight_bytes(DATA / fixture)
    assert (implied and implied[0]) == expected
    if expected is not None:
        assert f"# deployment.weight_bytes = {expected:g} " in preset_yaml(DATA / fixture)


def test_mixed_precision_is_not_guessed():
    path = DATA / "nvidia--Qwen3.6-27B-NVFP4.json"
    with pytest.raises(ParameterError, match="does not imply one weight precision"):
        hf_weight_bytes(path)
    assert "# deployment.weight_bytes: not implied" in preset_yaml(path)


def test_bad_json_is_one_line(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama",')
    with pytest.raises(ParameterError, match="is not valid JSON") as err:
        model_from_hf_config(bad)
    assert "\n" not in str(err.value)
    bad.write_text("[1, 2]")
    with pytest.raises(ParameterError, match="JSON list, not an object"):
        model_from_hf_config(bad)


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"num_attention_heads": "128"}, "num_attention_heads"),  # string for a number
        ({"hidden_size": 16384.5}, "hidden_size"),  # not whole
        ({"vocab_size": True}, "vocab_size"),  # a boolean is not a count
        ({"num_attention_heads": 0}, "num_attention_heads"),  # zero divisor
        ({"num_key_value_heads": 0}, "num_key_value_heads"),
        ({"tie_word_embeddings": "false"}, "tie_word_embeddings"),  # string for a boolean
        (  # a string for a boolean would turn the window on
            {
                "model_type": "qwen2",
                "use_sliding_window": "false",
                "sliding_window": 4096,
                "max_window_layers": 40,
            },
            "use_sliding_window",
        ),
        ({"num_key_value_heads": 7}, "num_key_value_heads"),  # does not divide the heads
    ],
)
def test_wrong_types_are_refused_not_guessed(changes, key):
    with pytest.raises(ParameterError, match=key) as err:
        model_from_hf_config(_llama(**changes))
    assert "\n" not in str(err.value)


def test_newline_in_name_or_path_cannot_inject_yaml(tmp_path):
    with pytest.raises(ParameterError, match="preset name"):
        preset_yaml(DATA / "llama-3.1-405b.json", name="x\nvocab: 1")
    folder = tmp_path / "evil\nvocab: 1"
    folder.mkdir()
    (folder / "config.json").write_text((DATA / "llama-3.1-405b.json").read_text())
    text = preset_yaml(folder)
    parsed = yaml.safe_load(text)
    assert parsed["vocab"] == 128256
    assert all(ln.startswith("#") or ": " in ln for ln in text.splitlines())


def test_cli_refuses_bad_name_in_one_line(capsys):
    assert main([str(DATA / "llama-3.1-405b.json"), "--name", "a\nb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "preset name" in err
