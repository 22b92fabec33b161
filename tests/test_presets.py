"""Every hardware and model preset loads, holds sane values, names its sources, and each model
preset's architecture fields reproduce its published parameter count."""

import re

import numpy as np
import pytest

import limits
from limits.model.architecture import active_params, architecture_params
from limits.model.params import Hardware, Model
from limits.presets import CONF_DIR, available, load_preset

HARDWARE = available("hardware")
MODELS = available("model")

# New presets this suite is written for; the loops above cover whatever else is present.
EXPECTED_HARDWARE = {
    "h100",
    "h200",
    "b200",
    "mi250x",
    "mi300x",
    "mi325x",
    "tpu_v5e",
    "tpu_v5p",
    "tpu_v6e",
    "gaudi3",
    "groq_lpu",
    "cerebras_wse3",
    "xpu_hbm3",
    "xpu_hbm4",
    "xpu_3d_dram",
    "xpu_sram",
    "xpu_cows",
    "b300",
    "gb200",
    "gb300",
    "mi355x",
    "tpu_v7",
    "trainium2",
    "trainium3",
    "rubin",
    "mi455x",
}
ANNOUNCED_HARDWARE = {"rubin", "mi455x"}  # not shipping: their headers say so
EXPECTED_MODELS = {
    "llama3_8b",
    "llama3_70b",
    "llama3_405b",
    "deepseek_v3",
    "llama2_13b",
    "llama2_70b",
    "mixtral_8x7b",
    "mixtral_8x22b",
    "gpt_oss_120b",
    "qwen3_235b_a22b",
    "qwen3_32b",
    "qwen3_30b_a3b",
    "llama4_scout",
    "llama4_maverick",
    "deepseek_r1",
    "deepseek_v3_2",
    "kimi_k2_5",
    "glm_5",
    "minimax_m2_5",
    "qwen3_5_397b_a17b",
    "gpt_oss_20b",
    "nemotron_3_super",
}


def test_expected_presets_exist():
    assert EXPECTED_HARDWARE <= set(HARDWARE)
    assert EXPECTED_MODELS <= set(MODELS)


@pytest.mark.parametrize("hw", HARDWARE)
def test_every_hardware_preset_loads_with_every_model(hw):
    hardware = Hardware.from_mapping(load_preset("hardware", hw))
    assert hardware.name == hw
    for model in MODELS:
        params = limits.load_params(hw, model)
        assert params.hardware == hardware
        assert params.model.name == model


@pytest.mark.parametrize("hw", HARDWARE)
def test_hardware_values_in_sane_ranges(hw):
    h = Hardware.from_mapping(load_preset("hardware", hw))
    assert 1e11 <= h.mem_bw <= 1e17  # 100 GB/s (LPDDR-class) .. 100 PB/s (wafer SRAM)
    assert 1e8 <= h.mem_capacity <= 1e12  # 100 MB (one SRAM chip) .. 1 TB
    assert 1e13 <= h.peak_flops <= 1e17  # 10 TFLOP/s .. 100 PFLOP/s dense
    # a lower precision is never slower than a higher one (0: no such path)
    assert h.peak_flops_8bit == 0 or h.peak_flops_8bit >= h.peak_flops
    assert h.peak_flops_4bit == 0 or h.peak_flops_4bit >= max(h.peak_flops_8bit, h.peak_flops)
    assert 1e-7 <= h.sync_latency_intra_node <= h.sync_latency <= 1e-4
    assert 1e-7 <= h.pipeline_latency <= 1e-4
    if h.scaleup_size > 0:  # three tiers: node <= scale-up domain <= scale-out
        assert h.node_size < h.scaleup_size
        assert h.sync_latency_intra_node <= h.sync_latency_scaleup <= h.sync_latency
    assert 1 <= h.node_size <= 256
    assert h.link_bw == np.inf or 1e10 <= h.link_bw <= 1e13
    assert 50 <= h.chip_power <= 3e4
    assert 0 <= h.node_power / h.node_size <= 2e3  # host/network share per chip
    assert 50 <= h.chip_power + h.node_power / h.node_size <= 3e4  # all-in per chip (wafer: 23 kW)
    assert 0 <= h.chip_price <= 50  # USD per chip-hour
    assert 0 <= h.chip_capex <= 5e6
    # ridge point (FLOP per byte): ~0.01 for wafer-scale SRAM .. a few hundred for HBM parts
    assert 1e-3 <= h.peak_flops / h.mem_bw <= 1000


@pytest.mark.parametrize("hw", sorted(ANNOUNCED_HARDWARE))
def test_announced_parts_are_marked(hw):
    header = (CONF_DIR / "hardware" / f"{hw}.yaml").read_text().split("\nname:")[0]
    assert "ANNOUNCED, NOT SHIPPING" in header


@pytest.mark.parametrize("model", MODELS)
def test_model_values_in_sane_ranges(model):
    m = Model.from_mapping(load_preset("model", model))
    assert m.name == model
    assert 1e9 <= m.n_params <= 2e12, "presets carry a nominal count"
    assert 1024 <= m.max_context <= 2**24  # Llama 4 Scout: 10M tokens
    assert m.d_model % 64 == 0 and m.d_head % 32 == 0
    if m.ffn == "moe":
        assert m.top_k < m.n_experts and m.d_ff_expert > 0
    else:
        assert m.n_experts == 0 and m.top_k == 0


_VALUE_LINE = re.compile(r"^(\w+):\s*(\S.*)$")


@pytest.mark.parametrize(
    "path",
    sorted(CONF_DIR.glob("hardware/*.yaml")) + sorted(CONF_DIR.glob("model/*.yaml")),
    ids=lambda p: p.stem,
)
def test_every_value_line_names_its_source(path):
    """Each value (other than the preset's own name) has a comment saying where it came from;
    estimates and assumptions say so."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# "), "a header comment names the source document"
    for line in lines:
        m = _VALUE_LINE.match(line)
        if not m or m.group(1) == "name":
            continue
        value, _, comment = m.group(2).partition("#")
        assert value.strip(), f"{path.name}: {line!r} has no value"
        assert len(comment.strip()) >= 4, f"{path.name}: {line!r} has no source comment"


@pytest.mark.parametrize("path", sorted(CONF_DIR.glob("hardware/*.yaml")), ids=lambda p: p.stem)
def test_nonzero_prices_are_marked_as_estimates_or_list_prices(path):
    for line in path.read_text().splitlines():
        m = _VALUE_LINE.match(line)
        if m and m.group(1) in ("chip_price", "chip_capex"):
            value, _, comment = m.group(2).partition("#")
            if float(value.split()[0]) > 0:
                assert re.search(r"estimate|pricing", comment, re.I), line
                assert re.search(r"20\d\d", comment), f"{line!r}: say which year"


@pytest.mark.parametrize("model", MODELS)
def test_architecture_count_matches_nominal_params(model):
    """The architecture fields, counted independently, give the model's published size."""
    m = Model.from_mapping(load_preset("model", model))
    counted = float(architecture_params(m))
    assert counted == pytest.approx(m.n_params, rel=0.02)


# Published totals, independent of the presets' own n_params (docs/references.md s.4).
PUBLISHED_TOTAL = {
    "qwen3_32b": 32.8e9,  # Qwen3-32B model card: 32.8B
    "qwen3_30b_a3b": 30.5e9,  # Qwen3-30B-A3B model card: 30.5B total
    "llama4_scout": 109e9,  # Meta Llama 4 model card: 109B total (with the vision encoder)
    "llama4_maverick": 400e9,  # Meta Llama 4 model card: 400B total
    "deepseek_r1": 671e9,  # DeepSeek-R1 model card: 671B total
    "deepseek_v3_2": 671e9,  # DeepSeek-V3.2 model card: 685B incl. the 14B MTP module
    "kimi_k2_5": 1.04e12,  # Kimi K2 technical report (arXiv 2507.20534): 1.04T total
    "glm_5": 744e9,  # GLM-5 technical report (arXiv 2602.15763): 744B total
    "minimax_m2_5": 230e9,  # MiniMax-M2 model card: 230B total
    "qwen3_5_397b_a17b": 397e9,  # Qwen3.5-397B-A17B model card: 397B total
    "gpt_oss_20b": 20.9e9,  # OpenAI gpt-oss model card: 20.9B total
    "nemotron_3_super": 120e9,  # NVIDIA Nemotron 3 Super model card: 120B total
}


@pytest.mark.parametrize("model, published", sorted(PUBLISHED_TOTAL.items()))
def test_counted_params_match_published_total(model, published):
    m = Model.from_mapping(load_preset("model", model))
    assert float(architecture_params(m)) == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize(
    "model, published_active",
    [
        ("deepseek_v3", 37e9),  # DeepSeek-V3 technical report: 37B activated per token
        ("mixtral_8x7b", 12.9e9),  # Mistral AI: 12.9B active of 46.7B
        ("qwen3_235b_a22b", 22e9),  # Qwen3 model card: 22B activated
        ("qwen3_30b_a3b", 3.3e9),  # Qwen3-30B-A3B model card: 3.3B activated
        ("llama4_scout", 17e9),  # Meta Llama 4 model card: 17B active
        ("llama4_maverick", 17e9),  # Meta Llama 4 model card: 17B active
        ("deepseek_r1", 37e9),  # DeepSeek-R1 model card: 37B activated
        ("kimi_k2_5", 32.6e9),  # Kimi K2 technical report: 32.6B activated
        ("qwen3_5_397b_a17b", 17e9),  # Qwen3.5 model card: 17B activated
    ],
)
def test_moe_active_params(model, published_active):
    m = Model.from_mapping(load_preset("model", model)).replace(n_params=0)
    assert float(active_params(m)) == pytest.approx(published_active, rel=0.03)


def test_active_params_equal_total_for_dense_presets():
    for model in MODELS:
        m = Model.from_mapping(load_preset("model", model))
        if m.ffn == "dense":
            assert float(active_params(m)) == pytest.approx(m.n_params)
