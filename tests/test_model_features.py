"""One test (or a few) per model feature, each against hand arithmetic from the definitions in
docs/model.md (expected values are computed here from the formulas, not by the model)."""

import dataclasses
import itertools
import math

import numpy as np
import pytest

import limits
from limits.model import architecture as arch

US = 1e-6
HBM3_BW = 4 * 2.0**40  # B/s per chip
HBM3_PEAK = 2.25e15  # FLOP/s per chip
HBM3_CAP = 96 * 2.0**30  # B per chip


def ev(hardware="xpu_hbm3", model="llama3_70b", **overrides):
    p = limits.load_params(hardware, model, **overrides)
    return {k: float(v) for k, v in limits.evaluate(p).items()}, p


# --- architecture: parameter counts --------------------------------------------------------


@pytest.mark.parametrize(
    "model, published, rel",
    [
        ("llama3_8b", 8.03e9, 2e-3),
        ("llama3_70b", 70.55e9, 2e-3),
        ("llama3_405b", 405.9e9, 2e-3),
        ("deepseek_v3", 671e9, 1e-2),
    ],
)
def test_architecture_count_matches_published_size(model, published, rel):
    """Counting from the Hugging Face config gives the published sizes (DeepSeek-V3: 671B
    without its multi-token-prediction module)."""
    m = limits.load_params("xpu_hbm3", model).model
    assert float(arch.architecture_params(m)) == pytest.approx(published, rel=rel)


def deepseek_arch_params(n_shared=1, n_dense=3):
    d, e = 7168, 3 * 7168 * 2048
    attention = (d * 1536 + 1536 * 128 * 192) + (d * 576 + 512 * 128 * 256) + 128 * 128 * d
    moe_layer = (256 + n_shared) * e + d * 256
    return 2 * 129280 * d + 61 * attention + n_dense * 3 * d * 18432 + (61 - n_dense) * moe_layer


def test_shared_experts_and_first_dense_layers_are_counted():
    m = limits.load_params("xpu_hbm3", "deepseek_v3", n_params=0).model
    assert float(arch.architecture_params(m)) == deepseek_arch_params()
    more_shared = m.replace(n_shared_experts=2.0)
    assert float(arch.architecture_params(more_shared)) == deepseek_arch_params(n_shared=2)
    fewer_dense = m.replace(n_dense_layers=1.0)
    assert float(arch.architecture_params(fewer_dense)) == deepseek_arch_params(n_dense=1)
    # a token uses the shared expert and top_k = 8 routed experts in each of the 58 MoE layers
    active = deepseek_arch_params() - 58 * (256 - 8) * 3 * 7168 * 2048
    assert float(arch.active_params(m)) == active
    assert float(arch.active_params(m)) == pytest.approx(37e9, rel=0.02)  # "~37B active"


# --- MoE: expected distinct experts --------------------------------------------------------


def test_moe_weight_reads_follow_expected_distinct_experts():
    expert = 3 * 7168 * 2048
    routed_total = 58 * 256 * expert
    reads = [
        ev(model="deepseek_v3", tp=8, batch=b, context=1)[0]["weight_bytes_read"]
        for b in (1, 2, 8, 64, 512, 4096, 10**6)
    ]
    # batch 1: the non-routed weights plus top_k = 8 experts per MoE layer (1 B per weight)
    assert reads[0] == pytest.approx(671e9 - routed_total + 58 * 8 * expert, rel=1e-12)
    # batch 2: E (1 - (1 - k/E)^2) distinct experts
    two = 256 * (1 - (1 - 8 / 256) ** 2)
    assert reads[1] == pytest.approx(671e9 - routed_total + 58 * two * expert, rel=1e-12)
    assert reads[-1] == pytest.approx(671e9, rel=1e-12)  # a huge batch touches every expert
    assert all(a < b for a, b in itertools.pairwise(reads[:6]))  # more tokens, more experts
    assert reads[5] <= reads[6]  # saturated: 4096 tokens touch ~all 256 experts


def test_moe_flops_use_active_params_only():
    out, p = ev(model="deepseek_v3", tp=8, batch=4, context=1)
    attention = 4 * 61 * 1 * (2 * 128 * 576 + 2 * 128 * 512)
    assert out["flops_per_step"] == pytest.approx(
        4 * 2 * float(arch.active_params(p.model)) + attention, rel=1e-12
    )


def test_expert_parallel_all_to_all_adds_sync_only_when_ep_above_1():
    common = dict(
        model="deepseek_v3", tp=8, batch=1, sync_latency=5 * US, sync_latency_intra_node=1 * US
    )
    no_ep = ev(**common, ep=1)[0]["t_sync"]
    with_ep = ev(**common, ep=8)[0]["t_sync"]
    assert no_ep == pytest.approx(61 * 2 * 1 * US, rel=1e-12)  # tp all-reduces only
    assert with_ep - no_ep == pytest.approx(58 * 2 * 1 * US, rel=1e-9)  # 2 all-to-alls/MoE layer
    dense = ev(
        model="llama3_70b", tp=8, batch=1, sync_latency=5 * US, sync_latency_intra_node=1 * US
    )[0]["t_sync"]
    assert dense == pytest.approx(80 * 2 * 1 * US, rel=1e-12)


# --- KV cache: MLA, GQA, sliding window ----------------------------------------------------


def test_mla_caches_a_latent_and_gqa_its_kv_heads():
    mla, _ = ev(model="deepseek_v3", tp=8, batch=3, context=1000, kv_bytes=2)
    gqa, _ = ev(model="llama3_70b", tp=8, batch=3, context=1000, kv_bytes=2)
    assert mla["kv_bytes_read"] == 3 * 1000 * 61 * (512 + 64) * 2
    assert gqa["kv_bytes_read"] == 3 * 1000 * 80 * 2 * 8 * 128 * 2
    assert mla["memory_kv"] == mla["kv_bytes_read"]


def test_mqa_caches_one_kv_head_and_mha_all_of_them():
    """KV bytes per token = L x 2 x h_kv x d_h x kv_bytes with h_kv = 1 (MQA) or h (MHA); the
    KV read of a step scales with it (the preset's nominal n_params keeps the weights fixed)."""
    _, p = ev(tp=8, batch=3, context=1000, kv_bytes=2)
    runs = {}
    for kind, kv_heads in (("mqa", 1.0), ("mha", 64.0)):
        model = p.model.replace(attention=kind, n_kv_heads=kv_heads)
        q = dataclasses.replace(p, model=model)
        assert float(arch.kv_bytes_per_token(model, q.deployment)) == 80 * 2 * kv_heads * 128 * 2
        runs[kind] = {k: float(v) for k, v in limits.evaluate(q).items()}
    assert runs["mqa"]["kv_bytes_read"] == 3 * 1000 * 80 * 2 * 1 * 128 * 2
    assert runs["mha"]["kv_bytes_read"] == 64 * runs["mqa"]["kv_bytes_read"]
    assert runs["mha"]["t_mem"] > runs["mqa"]["t_mem"]


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_sliding_window_caps_kv_reads_and_capacity(fraction):
    window, context = 4096, 131072
    out, _ = ev(
        model="llama3_8b",
        batch=2,
        context=context,
        sliding_window=window,
        sliding_window_layer_fraction=fraction,
    )
    per_token = 32 * 2 * 8 * 128 * 1
    mean_context = fraction * window + (1 - fraction) * context
    assert out["kv_bytes_read"] == 2 * mean_context * per_token
    assert out["memory_kv"] == 2 * mean_context * per_token
    full, _ = ev(model="llama3_8b", batch=2, context=context)
    assert out["kv_bytes_read"] < full["kv_bytes_read"]


def test_sliding_window_bounds_causal_prefill_pairs():
    n, w = 10_000.0, 1000.0
    m = limits.load_params("xpu_hbm3", "llama3_8b", sliding_window=w).model
    assert float(arch.attended_pairs(m, n, "causal")) == w * (w + 1) / 2 + (n - w) * w


# --- synchronisation -----------------------------------------------------------------------


def test_intra_node_and_scale_out_latency_switch_at_node_size():
    common = dict(
        model="llama3_70b",
        batch=1,
        sync_latency=5 * US,
        sync_latency_intra_node=1 * US,
        node_size=8,
    )
    assert ev(**common, tp=8)[0]["t_sync"] == pytest.approx(80 * 2 * 1 * US, rel=1e-12)
    assert ev(**common, tp=16)[0]["t_sync"] == pytest.approx(80 * 2 * 5 * US, rel=1e-12)
    assert ev(**common, tp=1)[0]["t_sync"] == 0.0


@pytest.mark.parametrize("batch", [1, 64])
def test_link_bandwidth_term_grows_with_batch(batch):
    """Ring all-reduce: alpha + 2 (g-1)/g x (tokens x d_model x act_bytes) / link_bw."""
    link_bw, tp = 100e9, 8
    out, _ = ev(model="llama3_70b", tp=tp, batch=batch, link_bw=link_bw, act_bytes=2)
    message = batch * 8192 * 2
    expected = 80 * 2 * (2.25 * US + 2 * (tp - 1) / tp * message / link_bw)
    assert out["t_sync"] == pytest.approx(expected, rel=1e-12)


def test_pipeline_hops_and_pipeline_semantics():
    one, _ = ev(model="llama3_70b", tp=1, pp=1, batch=4, pipeline_latency=3 * US)
    four, _ = ev(model="llama3_70b", tp=1, pp=4, batch=4, pipeline_latency=3 * US)
    assert four["t_sync"] == pytest.approx(4 * 3 * US, rel=1e-12)  # one hop per stage
    assert four["t_mem"] == one["t_mem"]  # a token still reads every weight once
    assert four["stps"] == pytest.approx(4 * 4 * four["utps"], rel=1e-12)  # pp microbatches
    assert four["memory_kv"] == 4 * one["memory_kv"]
    assert four["memory_available"] == 4 * one["memory_available"]


# --- speculative decoding ------------------------------------------------------------------


@pytest.mark.parametrize(
    "draft_len, acceptance, expected",
    [
        (0, 0.9, 1.0),
        (3, 1.0, 4.0),
        (3, 0.0, 1.0),
        (3, 0.6, 1 + 0.6 + 0.36 + 0.216),
        (5, 0.8, (1 - 0.8**6) / (1 - 0.8)),
    ],
)
def test_expected_tokens_per_step(draft_len, acceptance, expected):
    out, _ = ev(draft_len=draft_len, acceptance_rate=acceptance)
    assert out["tokens_per_step"] == pytest.approx(expected, rel=1e-12)
    assert out["tbt"] == pytest.approx(out["step_time"] / expected, rel=1e-12)


def test_draft_cost_is_counted_in_the_step():
    draft_params, k, tp, batch = 1e9, 4, 8, 2
    out, _ = ev(
        model="llama3_70b",
        tp=tp,
        batch=batch,
        draft_len=k,
        acceptance_rate=0.8,
        draft_params=draft_params,
        draft_layers=16,
    )
    one_draft = (
        max(draft_params * 1 / (tp * HBM3_BW), 2 * draft_params * batch / (tp * HBM3_PEAK))
        + 16 * 2 * 2.25 * US
    )
    assert out["t_draft"] == pytest.approx(k * one_draft, rel=1e-12)
    assert out["step_time"] == pytest.approx(
        max(out["t_mem"], out["t_compute"]) + out["t_sync"] + out["t_draft"], rel=1e-12
    )
    # the target verifies k + 1 tokens per user
    assert out["flops_per_step"] > (k + 1) * batch * 2 * 70e9


def test_speculation_helps_when_acceptance_is_high_and_the_draft_cheap():
    plain, _ = ev(model="llama3_70b", tp=8, batch=1)
    good, _ = ev(
        model="llama3_70b",
        tp=8,
        batch=1,
        draft_len=4,
        acceptance_rate=0.9,
        draft_params=1e8,
        draft_layers=8,
    )
    bad, _ = ev(
        model="llama3_70b",
        tp=8,
        batch=1,
        draft_len=4,
        acceptance_rate=0.05,
        draft_params=8e9,
        draft_layers=32,
    )
    assert good["utps"] > 2 * plain["utps"]
    assert bad["utps"] < plain["utps"]


# --- prefill, latency, no cache ------------------------------------------------------------


def test_long_prompt_prefill_is_compute_bound():
    tp, n = 8, 32768
    out, p = ev(model="llama3_70b", tp=tp, prompt_len=n)
    linear = 2 * 70e9 * n
    attention = 80 * n * (n + 1) / 2 * 4 * 64 * 128
    assert out["prefill_flops"] == pytest.approx(linear + attention, rel=1e-12)
    t_compute = (linear + attention) / (tp * HBM3_PEAK)
    assert out["prefill_bytes"] / (tp * HBM3_BW) < t_compute
    assert out["ttft"] == pytest.approx(t_compute + 80 * 2 * 2.25 * US, rel=1e-12)


def test_causal_mask_roughly_halves_prefill_attention():
    causal, p = ev(model="llama3_70b", prompt_len=8192)
    full_p = dataclasses.replace(
        p, calibration=p.calibration.replace(prefill_attention_mask="full")
    )
    full = float(limits.evaluate(full_p)["prefill_attention_flops"])
    assert causal["prefill_attention_flops"] / full == pytest.approx((8192 + 1) / (2 * 8192))


def test_request_latency_is_ttft_plus_remaining_tokens():
    out, _ = ev(model="llama3_70b", tp=8, output_len=500, prompt_len=2000)
    assert out["request_latency"] == pytest.approx(out["ttft"] + 499 * out["tbt"], rel=1e-12)


def test_decoding_without_a_kv_cache_is_much_slower():
    out, _ = ev(model="llama3_70b", tp=8, batch=1, context=8192)
    assert out["step_time_no_cache"] > 10 * out["step_time"]
    assert out["flops_per_token_no_cache"] > 8000 * out["flops_per_step"] / 2


# --- capacity ------------------------------------------------------------------------------


def test_capacity_flag_and_max_batch_by_hand():
    tp, context = 8, 131072
    kv_per_user = context * 126 * 2 * 8 * 128 * 1
    room = tp * HBM3_CAP - 405e9
    max_batch = math.floor(room / kv_per_user)
    fits, _ = ev(model="llama3_405b", tp=tp, context=context, batch=max_batch)
    over, _ = ev(model="llama3_405b", tp=tp, context=context, batch=max_batch + 1)
    assert fits["max_batch"] == max_batch
    assert fits["memory_required"] == 405e9 + max_batch * kv_per_user
    assert fits["feasible"] and not over["feasible"]
    assert limits.BOUND_LABELS[int(over["bound"])] == "capacity"
    small, _ = ev(model="llama3_405b", tp=2)  # 2 x 96 GiB < 405 GB of weights
    assert not small["feasible"] and small["max_batch"] == 0


def test_workspace_and_draft_weights_take_memory():
    out, _ = ev(model="llama3_70b", tp=8, workspace_bytes=2 * 2.0**30, draft_params=1e9)
    assert out["memory_weights"] == 70e9 + 1e9
    assert out["memory_required"] == pytest.approx(
        71e9 + out["memory_kv"] + 8 * 2 * 2.0**30, rel=1e-15
    )


# --- power and cost ------------------------------------------------------------------------


def test_power_and_cost_by_hand():
    tp, pp, replicas = 4, 2, 3
    out, _ = ev(
        model="llama3_70b",
        tp=tp,
        pp=pp,
        replicas=replicas,
        chip_price=2.0,
        chip_capex=30000.0,
        amortization_years=4.0,
        electricity_price=0.1,
    )
    chips = 24
    nodes = 3  # ceil(24 / 8)
    power = chips * 900 + nodes * 300
    hourly = chips * (2.0 + 30000.0 / (4 * 8766)) + power / 1000 * 0.1
    assert out["chips"] == chips
    assert out["power"] == power
    assert out["cost_per_hour"] == pytest.approx(hourly, rel=1e-12)
    assert out["cost_per_mtok"] == pytest.approx(hourly / (out["stps"] * 3600) * 1e6, rel=1e-12)
    assert out["tokens_per_usd"] == pytest.approx(out["stps"] * 3600 / hourly, rel=1e-12)
    assert out["energy_per_token"] == pytest.approx(power / out["stps"], rel=1e-12)
    assert out["stps_per_watt"] == pytest.approx(out["stps"] / power, rel=1e-12)


def test_partial_node_counts_a_whole_node():
    out, _ = ev(model="llama3_70b", tp=4, replicas=3)  # 12 chips -> 2 nodes
    assert out["power"] == 12 * 900 + 2 * 300


# --- calibration ---------------------------------------------------------------------------


def test_efficiencies_scale_memory_and_compute_time():
    ideal, _ = ev(model="llama3_70b", tp=8, batch=16)
    real, _ = ev(model="llama3_70b", tp=8, batch=16, mem_efficiency=0.5, flops_efficiency=0.25)
    assert real["t_mem"] == pytest.approx(2 * ideal["t_mem"], rel=1e-12)
    assert real["t_compute"] == pytest.approx(4 * ideal["t_compute"], rel=1e-12)
    assert real["ridge_point"] == pytest.approx(ideal["ridge_point"] / 2, rel=1e-12)


def test_layer_overhead_adds_per_layer_time():
    base, _ = ev(model="llama3_70b", tp=8)
    slow, _ = ev(model="llama3_70b", tp=8, layer_overhead=10 * US)
    assert slow["t_overhead"] == pytest.approx(80 * 10 * US, rel=1e-12)
    assert slow["step_time"] - base["step_time"] == pytest.approx(80 * 10 * US, rel=1e-9)
    assert slow["ttft"] - base["ttft"] == pytest.approx(80 * 10 * US, rel=1e-9)


def test_memory_bound_step_by_hand():
    """The LIMINAL step at batch 1: (weights + KV) / (tp x bandwidth) + 2 L x latency."""
    out, _ = ev(model="llama3_70b", tp=8, batch=1, context=4096)
    t_mem = (70e9 + 4096 * 80 * 2 * 8 * 128) / (8 * HBM3_BW)
    assert out["t_mem"] == pytest.approx(t_mem, rel=1e-12)
    assert out["step_time"] == pytest.approx(t_mem + 80 * 2 * 2.25 * US, rel=1e-12)
    assert np.isclose(out["utps"], 1 / out["step_time"])
