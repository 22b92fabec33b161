"""Precision-aware compute, engine weight traffic, steady-state serving (docs/serving.md)."""

import dataclasses

import numpy as np
import pytest

import limits
from limits.model import architecture as arch
from limits.model.decode import tensor_peak
from limits.presets import load_params


def _serving(p, mode):
    return dataclasses.replace(p, deployment=dataclasses.replace(p.deployment, serving=mode))


@pytest.mark.parametrize(
    ("hardware", "compute_bytes", "peak"),
    [
        # H100 datasheet (SXM, dense): BF16 989.4 TFLOPS, FP8 1,978.9 TFLOPS, no FP4 path
        ("h100", 2.0, 989.4e12),
        ("h100", 1.0, 1978.9e12),
        ("h100", 0.5, 1978.9e12),
        # HGX B200 datasheet (dense): BF16 2.25, FP8 4.5, FP4 9 PFLOPS
        ("b200", 2.0, 2.25e15),
        ("b200", 1.0, 4.5e15),
        ("b200", 0.5, 9e15),
        # paper preset: one published peak whatever the precision
        ("xpu_hbm3", 0.5, 2.25e15),
        ("xpu_hbm3", 2.0, 2.25e15),
    ],
)
def test_compute_bytes_picks_the_published_peak(hardware, compute_bytes, peak):
    p = load_params(hardware, "llama3_70b", compute_bytes=compute_bytes)
    assert float(tensor_peak(p)) == pytest.approx(peak, rel=1e-12)


def test_compute_bytes_zero_follows_weight_bytes_and_sweeps_elementwise():
    p = load_params("b200", "llama3_70b", weight_bytes=np.array([2.0, 1.0, 0.5]))
    np.testing.assert_allclose(np.asarray(tensor_peak(p)), [2.25e15, 4.5e15, 9e15])
    grid = load_params("b200", "llama3_70b", compute_bytes=np.array([2.0, 1.0, 0.5]))
    np.testing.assert_allclose(np.asarray(tensor_peak(grid)), [2.25e15, 4.5e15, 9e15])
    # weight-only quantisation: 4-bit weights, 16-bit GEMMs
    w4a16 = load_params("b200", "llama3_70b", weight_bytes=0.5, compute_bytes=2.0)
    assert float(tensor_peak(w4a16)) == 2.25e15


def test_prefill_compute_time_halves_with_fp8_on_h100():
    bf16 = limits.evaluate(load_params("h100", "llama3_70b", tp=8, weight_bytes=2.0))
    fp8 = limits.evaluate(
        load_params("h100", "llama3_70b", tp=8, weight_bytes=2.0, compute_bytes=1)
    )
    ratio = float(bf16["prefill_flops"]) / float(fp8["prefill_flops"])
    assert ratio == 1.0
    assert float(bf16["t_compute"]) / float(fp8["t_compute"]) == pytest.approx(1978.9 / 989.4)


def test_engine_weight_traffic_by_hand():
    """Llama-3.1-8B (architecture count): the untied input embedding is a gather of `batch`
    rows, the LM head is read once; the nominal count reads everything."""
    m = load_params("h100", "llama3_8b", n_params=0.0).model
    d = load_params("h100", "llama3_8b", batch=16.0).deployment
    vocab, d_model = 128256.0, 4096.0
    expected = (float(arch.architecture_params(m)) - vocab * d_model + 16.0 * d_model) * 1.0
    assert float(arch.weight_bytes_read(m, d, 16.0)) == pytest.approx(expected, rel=1e-12)
    nominal = load_params("h100", "llama3_8b").model
    assert float(arch.weight_bytes_read(nominal, d, 16.0)) == 8e9
    tied = dataclasses.replace(m, tied_embeddings="true")
    assert float(arch.weight_bytes_read(tied, d, 16.0)) == pytest.approx(
        float(arch.architecture_params(tied)), rel=1e-12
    )


def test_liminal_tp8_row_reproduces_with_no_in_node_sync():
    """LIMINAL (arXiv 2507.14397; docs/references.md s.1): Llama3-405B, batch 1, xPU-HBM3, TP8 gives
    86 and 80 UTPS at 4K and 128K. The model gives 86.6 and 80.2 with an in-node collective
    latency of 0 (80 at 128K bounds it at <= 0.11 us); with the preset's 2.25 us, 82.6 / 76.7."""
    utps = [
        float(
            limits.evaluate(
                load_params(
                    "xpu_hbm3",
                    "llama3_405b",
                    tp=8,
                    batch=1,
                    context=ctx,
                    sync_latency_intra_node=0.0,
                )
            )["utps"]
        )
        for ctx in (4096.0, 131072.0)
    ]
    assert int(utps[0]) == 86 and int(utps[1]) == 80


def _agg(**kw):
    base = dict(tp=8, batch=64, prompt_len=2048, output_len=128, weight_bytes=1, kv_bytes=1)
    return load_params("h200", "llama3_70b", n_params=0.0, **{**base, **kw})


def test_aggregated_serving_identities():
    p = _agg(replicas=3)
    out = limits.evaluate(p)
    d = p.deployment
    assert float(out["output_tps"]) == pytest.approx(3 * 64 / float(out["tpot"]))
    assert float(out["output_tps_per_user"]) == pytest.approx(1.0 / float(out["tpot"]))
    assert float(out["output_tps_per_chip"]) == pytest.approx(float(out["output_tps"]) / 24.0)
    assert float(out["requests_per_s"]) == pytest.approx(float(out["output_tps"]) / 128.0)
    # prefill interference: slower than the pure decode step at the same mean context
    step = limits.evaluate(p.replace(context=float(d.prompt_len + d.output_len / 2)))
    assert float(out["tpot"]) > float(step["step_time"])
    # a whole prompt beside the decoding batch takes longer than on an idle replica
    assert float(out["ttft_at_load"]) > float(out["ttft"])


def test_aggregated_tends_to_the_decode_step_when_prompts_vanish():
    p = _agg(prompt_len=1, output_len=100000, context=50001.0)
    out = limits.evaluate(p)
    assert float(out["tpot"]) == pytest.approx(float(out["step_time"]), rel=1e-3)


def test_prefill_chunk_budget_limits_the_batch():
    free = limits.evaluate(_agg())
    tight = limits.evaluate(_agg(prefill_chunk=256))
    # share = 64 x 2048 / 128 = 1024 prompt tokens per iteration; 256 admit a quarter
    assert float(tight["output_tps"]) < float(free["output_tps"])
    assert float(tight["ttft_at_load"]) > float(free["ttft_at_load"])


def test_disaggregated_serves_the_slower_pool_and_counts_both():
    p = _serving(_agg(prefill_tp=8, prefill_replicas=1, replicas=2), "disaggregated")
    out = limits.evaluate(p)
    assert float(out["serving_chips"]) == 24.0
    more_prefill = limits.evaluate(p.replace(prefill_replicas=4))
    assert float(more_prefill["requests_per_s"]) >= float(out["requests_per_s"])
    assert float(out["ttft_at_load"]) > float(out["ttft"])  # plus the KV transfer
    slow_link = limits.evaluate(p.replace(scaleout_bw=1e9))
    assert float(slow_link["ttft_at_load"]) > float(out["ttft_at_load"])


def test_compute_elasticity_goes_to_the_selected_peak():
    """docs/serving.md: at FP8 on H100 t_compute answers to peak_flops_8bit (and to
    flops_efficiency), not to the 16-bit peak_flops."""
    from limits.autodiff.elasticities import elasticities

    p = load_params("h100", "llama3_70b", tp=8, compute_bytes=1.0)
    e = elasticities(
        p, metrics=["t_compute"], wrt=["peak_flops", "peak_flops_8bit", "flops_efficiency"]
    )
    np.testing.assert_allclose(np.asarray(e["elasticity_t_compute"]), [0.0, -1.0, -1.0])


def test_serving_cost_counts_both_pools():
    """Cost per output token divides the hourly cost of both pools' chips and nodes."""
    p = _serving(_agg(prefill_tp=8, prefill_replicas=1, chip_price=2.0), "disaggregated")
    out = limits.evaluate(p)
    hw, chips = p.hardware, float(out["serving_chips"])
    assert chips == 16.0
    power = chips * float(hw.chip_power) + 2.0 * float(hw.node_power)  # two 8-chip nodes
    hourly = chips * (2.0 + float(hw.chip_capex) / (4.0 * 8766.0)) + power / 1000.0 * 0.08
    expected = hourly / (float(out["output_tps"]) * 3600.0) * 1e6
    assert float(out["serving_cost_per_mtok"]) == pytest.approx(expected, rel=1e-9)


def _fifo_mean_wait(rate, service, n, runs, seed=0):
    """Mean wait in a FIFO queue with one deterministic server, simulated by Lindley's
    recursion ``w[k+1] = max(0, w[k] + service - gap[k])`` over ``runs`` runs of ``n``
    requests arriving at random (Poisson; all at once for an infinite rate)."""
    rng = np.random.default_rng(seed)
    w = np.zeros(runs)
    total = np.zeros(runs)
    for _ in range(n - 1):
        gap = rng.exponential(1.0 / rate, runs) if np.isfinite(rate) else np.zeros(runs)
        w = np.maximum(0.0, w + service - gap)
        total += w
    return float(total.mean() / n)


@pytest.mark.parametrize(
    ("rate", "n", "rel"),
    [
        (0.5, 20_000, 0.05),  # stable (rho = 0.5): M/D/1, Pollaczek-Khinchine
        (2.0, 500, 0.05),  # past saturation: the queue grows through the run
        (np.inf, 500, 1e-12),  # all at once
    ],
)
def test_queue_wait_is_the_fifo_queue_it_describes(rate, n, rel):
    from limits.model.serving import queue_wait

    p = load_params("h100", "llama3_8b", arrival_rate=rate, burst_requests=float(n))
    service = 1.0  # s per prompt; no pass in progress (iteration 0)
    model = float(queue_wait(p, service, 0.0, 1.0))
    simulated = _fifo_mean_wait(rate, service, n, runs=64 if np.isfinite(rate) else 1)
    assert model == pytest.approx(simulated, rel=rel)


def test_no_arrivals_no_queue_and_the_wait_grows_with_the_rate():
    p = load_params("h100", "llama3_70b", tp=4.0, batch=64.0, prompt_len=1024.0)
    rates = np.array([0.0, 1.0, 4.0, 16.0, 64.0, np.inf])
    ttft = np.asarray(
        limits.evaluate(p.replace(arrival_rate=rates, burst_requests=500.0))["ttft_at_load"]
    )
    assert ttft[0] == pytest.approx(float(limits.evaluate(p)["ttft_at_load"]), rel=1e-15)
    assert (np.diff(ttft) > 0).all()


@pytest.mark.slow
def test_the_ideal_ttft_under_load_stays_below_every_measurement():
    """The queue makes the limit follow the load, not cross the measurements: on every
    shipped TTFT row measured at a request rate, the ideal model is below the measured."""
    from limits.validate import PUBLIC_MEASUREMENTS, read_measurements, validate

    rows = [
        r
        for r in read_measurements(PUBLIC_MEASUREMENTS)
        if r["metric"] == "ttft_ms" and r["arrival_rate"]
    ]
    assert len(rows) == 72
    for r in validate(rows):
        assert r["limit"] < float(r["value"]), (r["hardware"], r["model"], r["arrival_rate"])
