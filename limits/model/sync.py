"""Exposed synchronisation: collectives per layer, each a latency plus bytes over link bandwidth.

Explicit model (it is where peer tools disagree most):
- a collective among ``g`` chips takes the network tier its group spans: inside one node
  (``g <= node_size``: ``sync_latency_intra_node``, ``link_bw``), inside one scale-up domain
  (``node_size < g <= scaleup_size``: ``sync_latency_scaleup``, ``scaleup_link_bw``), else
  scale-out (``sync_latency``, ``link_bw``); it costs ``alpha + beta(g) * message / bw``;
- all-reduce (ring): ``beta = 2 (g-1)/g``, message = tokens x d_model x act_bytes;
- all-to-all (expert dispatch or combine): ``beta = (g-1)/g``, message = tokens x top_k x
  d_model x act_bytes x expert_imbalance (the busiest rank), tokens of one attention replica;
- tensor parallelism: ``collectives_per_layer`` all-reduces in every layer when ``tp > 1``;
- expert parallelism: ``alltoall_per_moe_layer`` all-to-alls in every MoE layer when ``ep > 1``;
- pipeline parallelism: ``pp`` stage hops of ``pipeline_latency`` per step when ``pp > 1``.
With ``link_bw = inf`` (the paper presets) only latencies remain. The calibration's
``allreduce_efficiency`` and ``alltoall_efficiency`` scale ``link_bw`` (1: the ideal).
"""

from __future__ import annotations

import jax.numpy as jnp

from limits.model.architecture import n_moe_layers
from limits.model.params import Params


def leaves_node(hardware, group):
    """Whether a collective among ``group`` chips leaves one node (and so pays the scale-out
    ``sync_latency`` rather than ``sync_latency_intra_node``). The one place of this rule."""
    return group > hardware.node_size


def in_scaleup_domain(hardware, group):
    """Whether a collective among ``group`` chips leaves its node but stays inside one
    scale-up domain (``scaleup_size = 0``: there is none)."""
    return leaves_node(hardware, group) & (group <= hardware.scaleup_size)


def collective_tier(hardware, group):
    """Network tier a collective among ``group`` chips spans: 0 node, 1 scale-up, 2 scale-out."""
    return jnp.where(
        leaves_node(hardware, group), jnp.where(in_scaleup_domain(hardware, group), 1, 2), 0
    )


#: the latency parameter a collective pays on each tier (``collective_tier``: 0, 1, 2)
TIER_LATENCY = ("sync_latency_intra_node", "sync_latency_scaleup", "sync_latency")


def latencies_paid(p: Params) -> dict:
    """Whether a step at ``p`` pays each latency parameter anywhere (bool arrays broadcast
    over ``p``): every collective group (``tp``, ``ep``; the prefill pool's ``prefill_tp``,
    ``prefill_ep`` in disaggregated serving) of more than one chip pays its tier's latency,
    the disaggregated KV transfer pays ``sync_latency``, pipeline hops (``pp > 1``)
    ``pipeline_latency``. A latency not paid at any point of a grid changes none of its
    outputs (the sweep warns when one is an axis)."""
    hw, d = p.hardware, p.deployment
    disagg = d.serving == "disaggregated"
    groups = [d.tp, d.ep, *((d.prefill_tp, d.prefill_ep) if disagg else ())]
    paid = {}
    for tier, name in enumerate(TIER_LATENCY):
        hit = jnp.asarray(False)
        for g in groups:
            hit = hit | ((jnp.asarray(g) > 1) & (collective_tier(hw, g) == tier))
        paid[name] = hit
    if disagg:
        paid["sync_latency"] = jnp.ones_like(paid["sync_latency"])
    paid["pipeline_latency"] = jnp.asarray(d.pp) > 1
    return paid


def collective_latency(p: Params, group):
    """Latency of one collective among ``group`` chips [s]: the hardware's, by the tier its
    group spans, plus the calibration's ``collective_overhead`` (0 in the ideal limit)."""
    hw = p.hardware
    latency = jnp.where(leaves_node(hw, group), hw.sync_latency, hw.sync_latency_intra_node)
    latency = jnp.where(in_scaleup_domain(hw, group), hw.sync_latency_scaleup, latency)
    return latency + p.calibration.collective_overhead


def collective_bandwidth(p: Params, group):
    """Per-chip link bandwidth of one collective among ``group`` chips [B/s]."""
    hw = p.hardware
    return jnp.where(in_scaleup_domain(hw, group), hw.scaleup_link_bw, hw.link_bw)


def allreduce_time(p: Params, group, message_bytes):
    """One ring all-reduce of ``message_bytes`` among ``group`` chips [s]; 0 for one chip."""
    # divided in turn (not by the product): finite gradients when the bandwidth is inf
    wire = message_bytes / collective_bandwidth(p, group) / p.calibration.allreduce_efficiency
    t = collective_latency(p, group) + 2.0 * (group - 1.0) / group * wire
    return jnp.where(group > 1, t, 0.0)


def alltoall_time(p: Params, group, message_bytes):
    """One all-to-all of ``message_bytes`` per chip among ``group`` chips [s]; 0 for one."""
    wire = message_bytes / collective_bandwidth(p, group) / p.calibration.alltoall_efficiency
    t = collective_latency(p, group) + (group - 1.0) / group * wire
    return jnp.where(group > 1, t, 0.0)


def sync_time(p: Params, tokens, n_layers=None, tp=None, ep=None, pp=None):
    """Exposed sync of one forward pass over ``tokens`` tokens of a microbatch [s].

    ``n_layers`` overrides the model's layer count (used for the draft model, which is dense
    and has no pipeline hops of its own); ``tp``, ``ep``, ``pp`` override the deployment's
    (used for the prefill pool of disaggregated serving).
    """
    m, d, c = p.model, p.deployment, p.calibration
    tp = d.tp if tp is None else tp
    ep = d.ep if ep is None else ep
    pp = d.pp if pp is None else pp
    act_message = tokens * m.d_model * d.act_bytes
    if n_layers is not None:
        return n_layers * c.collectives_per_layer * allreduce_time(p, tp, act_message)
    tp_sync = m.n_layers * c.collectives_per_layer * allreduce_time(p, tp, act_message)
    if m.ffn == "moe":
        ep_sync = (
            n_moe_layers(m)
            * c.alltoall_per_moe_layer
            * alltoall_time(p, ep, act_message * m.top_k * d.expert_imbalance)
        )
    else:
        ep_sync = 0.0
    pp_sync = jnp.where(pp > 1, pp * p.hardware.pipeline_latency, 0.0)
    return tp_sync + ep_sync + pp_sync
