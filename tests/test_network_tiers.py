"""Three network tiers: a collective takes the latency and bandwidth of the tier its group
spans (node, scale-up domain, scale-out); without a scale-up domain nothing changes."""

import numpy as np
import pytest

from limits.autodiff.inverse import LATENCY_PARAMS, max_sync_latency
from limits.model import evaluate
from limits.model.params import Hardware, ParameterError
from limits.model.sync import allreduce_time, collective_tier
from limits.presets import load_params

RACK = dict(
    node_size=4,
    scaleup_size=72,
    sync_latency_intra_node=3e-6,
    sync_latency_scaleup=5e-6,
    sync_latency=15e-6,
    link_bw=900e9,
    scaleup_link_bw=450e9,
)


def params(tp, **hw):
    return load_params("gb200", "llama3_70b", tp=tp, act_bytes=2).replace(**{**RACK, **hw})


@pytest.mark.parametrize("tp, tier", [(2, 0), (4, 0), (8, 1), (64, 1), (128, 2)])
def test_each_group_takes_the_tier_it_spans(tp, tier):
    # llama3_70b has 64 heads: tp = 128 is a multiple of them (allowed)
    assert int(collective_tier(params(tp).hardware, float(tp))) == tier


def test_allreduce_inside_the_scale_up_domain_by_hand():
    """tp = 8 on a 4-chip node of a 72-chip domain: 5 us + 2 x 7/8 x message / 450 GB/s."""
    p = params(8)
    message = 1.0 * 8192 * 2.0  # one token of a 8192-wide hidden state in bf16
    expected = 5e-6 + 2.0 * 7.0 / 8.0 * message / 450e9
    assert float(allreduce_time(p, 8.0, message)) == pytest.approx(expected, rel=1e-12)
    beyond = 15e-6 + 2.0 * 127.0 / 128.0 * message / 900e9
    assert float(allreduce_time(p, 128.0, message)) == pytest.approx(beyond, rel=1e-12)


def test_scale_up_domain_shortens_the_step():
    with_domain = evaluate(params(8))
    without = evaluate(params(8, scaleup_size=0))
    assert float(with_domain["t_sync"]) < float(without["t_sync"])


def test_paper_presets_have_no_scale_up_tier():
    p = load_params("xpu_hbm3", "llama3_405b", tp=32)
    assert float(p.hardware.scaleup_size) == 0
    assert int(collective_tier(p.hardware, 32.0)) == 2
    assert float(evaluate(p)["t_sync"]) == pytest.approx(126 * 2 * 2.25e-6)


def test_scale_up_smaller_than_a_node_is_refused():
    with pytest.raises(
        ParameterError, match=r"scaleup_size = 2 must be 0 \(none\) or >= hardware.node_size = 4"
    ):
        Hardware(node_size=4, scaleup_size=2)


def test_inverse_solves_for_the_scale_up_latency():
    p = params(8, batch=1, context=4096, kv_bytes=1, weight_bytes=1)
    out = max_sync_latency(p, target_utps=50.0)
    assert LATENCY_PARAMS[int(out["latency_param"])] == "sync_latency_scaleup"
    solved = p.replace(sync_latency_scaleup=float(out["sync_latency_max"]))
    assert float(evaluate(solved)["utps"]) == pytest.approx(50.0, rel=1e-9)
    assert np.isfinite(float(out["sync_latency_max"]))
