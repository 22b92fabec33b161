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


@pytest.mark.parametrize(
    "model, published_active",
    [
        ("deepseek_v3", 37e9),  # DeepSeek-V3 technical report: 37B activated per token
        ("mixtral_8x7b", 12.9e9),  # Mistral AI: 12.9B active of 46.7B
        ("qwen3_235b_a22b", 22e9),  # Qwen3 model card: 22B activated
    ],
)
def test_moe_active_params(model, published_active):
    m = Model.from_mapping(load_preset("model", model))
    assert float(active_params(m)) == pytest.approx(published_active, rel=0.03)


def test_active_params_equal_total_for_dense_presets():
    for model in MODELS:
        m = Model.from_mapping(load_preset("model", model))
        if m.ffn == "dense":
            assert float(active_params(m)) == pytest.approx(m.n_params)
