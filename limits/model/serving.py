"""Serving in steady state: aggregated (in-flight batching with chunked prefill) or
disaggregated (separate prefill and decode pools), for requests of ``prompt_len`` in and
``output_len`` out tokens (docs/serving.md has the formulas and their assumptions).

Both modes are built from one rule, ``forward_pass``: a pass that decodes some users' tokens
and prefills some prompt tokens on one model instance, timed as
``max(bytes / bandwidth, FLOPs / compute) + sync + fixed overheads``.
"""

from __future__ import annotations

import jax.numpy as jnp

from limits.model import architecture as arch
from limits.model.capacity import capacity
from limits.model.decode import (
    draft_time,
    expected_tokens_per_step,
    flop_rate,
    memory_time,
    pass_overhead,
    prefill_flop_rate,
)
from limits.model.params import Params
from limits.model.sync import sync_time


def serving_context(p: Params):
    """Mean KV length of a decoding request: ``prompt_len + output_len / 2`` [tok]."""
    d = p.deployment
    return d.prompt_len + 0.5 * d.output_len


def forward_pass(p: Params, decode_users, prefill_tokens, tp=None, ep=None, pp=None) -> dict:
    """One forward pass of one instance that decodes ``decode_users`` users (each verifying
    ``draft_len + 1`` tokens at the mean serving context) and prefills ``prefill_tokens`` prompt
    tokens (each attending, on average, to its prompt's causal prefix). Returns ``t_mem``,
    ``t_compute``, ``t_sync``, ``t_overhead`` and ``time`` [s]; ``tp``, ``ep``, ``pp``
    override the deployment's parallelism (the prefill pool)."""
    m, d, c = p.model, p.deployment, p.calibration
    tp = d.tp if tp is None else tp
    decode_tokens = decode_users * (d.draft_len + 1.0)
    tokens = decode_tokens + prefill_tokens
    kv_token = arch.kv_bytes_per_token(m, d)
    ctx = arch.effective_context(m, serving_context(p))
    prompt = d.prompt_len
    kv_written_per_prompt_token = arch.effective_context(m, prompt) / prompt * kv_token
    pairs_per_prompt_token = arch.attended_pairs(m, prompt, c.prefill_attention_mask) / prompt
    streamed = arch.weight_bytes_read(m, d, tokens) + prefill_tokens * kv_written_per_prompt_token
    kv_read = decode_users * ctx * kv_token
    decode_flops = decode_tokens * (
        2.0 * arch.active_params(m) + m.n_layers * ctx * arch.attention_flops_per_pair(m)
    )
    prefill_flops = prefill_tokens * (
        2.0 * arch.active_params(m)
        + m.n_layers * pairs_per_prompt_token * arch.prefill_attention_flops_per_pair(m)
    )
    t_mem = memory_time(p, streamed, kv_read, tp)
    # decode and prompt tokens at their own achieved rates (one rate in the ideal limit)
    t_compute = decode_flops / flop_rate(p, tp) + prefill_flops / prefill_flop_rate(p, tp)
    t_sync = sync_time(p, tokens, tp=tp, ep=ep, pp=pp)
    t_overhead = pass_overhead(p)
    return {
        "t_mem": t_mem,
        "t_compute": t_compute,
        "t_sync": t_sync,
        "t_overhead": t_overhead,
        "time": jnp.maximum(t_mem, t_compute) + t_sync + t_overhead,
    }


def queue_wait(p: Params, service, iteration, instances, held=0.0):
    """Mean wait of a request before its prompt is prefilled [s], when requests arrive at
    random (``arrival_rate > 0``; 0 otherwise: the limit has no queue).

    Each of ``instances`` gets ``lambda = arrival_rate / instances`` requests/s and serves
    prompts in arrival order, ``service`` seconds each (deterministic), between passes of
    ``iteration`` seconds. An arrival waits:

    - the rest of the pass running when it arrives: ``iteration / 2`` (mean residual of a
      fixed-length pass) when the instance is busy: with requests held ``held`` seconds each
      (their decode), the number in progress is Poisson with mean ``a = lambda held``
      (M/G/inf: in-flight batching admits every request), busy with ``1 - exp(-a)``;
    - the prompts ahead of it: the M/D/1 mean wait (Pollaczek-Khinchine with deterministic
      service) ``rho service / (2 (1 - rho))``, ``rho = lambda service``, while ``rho < 1``;
      a run of ``N = burst_requests / instances`` requests bounds it by the wait of
      requests that all arrive at once, ``(N - 1) / 2 x service``; past saturation
      (``rho >= 1``) the queue grows through the run: request ``k`` waits
      ``k (service - 1 / lambda)``, ``(N - 1) / 2 x (service - 1 / lambda)`` on average.
    """
    d = p.deployment
    # inf (all at once, a steady state) is handled by where; the arithmetic only ever sees
    # finite values, so that no inf x 0 makes a derivative nan (forward or reverse mode)
    arrivals = d.arrival_rate > 0
    finite = jnp.isfinite(d.arrival_rate)
    safe_rate = jnp.where(finite, d.arrival_rate, 0.0) / instances
    gap = jnp.where(finite, 1.0 / jnp.where(arrivals, safe_rate, 1.0), 0.0)  # between arrivals
    run = jnp.isfinite(d.burst_requests)
    half_n = 0.5 * (jnp.where(run, d.burst_requests, 1.0) / instances - 1.0)
    rho = jnp.where(finite, safe_rate * service, jnp.inf)
    stable = rho < 1.0
    safe_rho = jnp.where(stable, rho, 0.0)
    md1 = safe_rho * service / (2.0 * (1.0 - safe_rho))
    bounded = jnp.where(run, jnp.minimum(md1, half_n * service), md1)
    excess = jnp.where(stable, 0.0, service - gap)  # >= 0 past saturation
    growing = jnp.where(run, half_n * excess, jnp.where(excess > 0.0, jnp.inf, 0.0))
    queue = jnp.where(stable, bounded, growing)
    busy = jnp.where(finite, 1.0 - jnp.exp(-safe_rate * held), 1.0)
    wait = 0.5 * iteration * busy + queue
    return jnp.where(arrivals, wait, 0.0)


def _outputs(p: Params, tpot, ttft, requests_per_s, chips, walls, fit) -> dict:
    d = p.deployment
    output_tps = requests_per_s * d.output_len
    return {
        "tpot": tpot,
        "ttft_at_load": ttft,
        "output_tps": output_tps,
        "output_tps_per_chip": output_tps / chips,
        "output_tps_per_user": 1.0 / tpot,
        "requests_per_s": requests_per_s,
        "serving_chips": chips,
        "serving_t_mem": walls["t_mem"],
        "serving_t_compute": walls["t_compute"],
        "serving_t_sync": walls["t_sync"],
        "serving_feasible": fit["feasible"],
        "serving_max_batch": fit["max_batch"],
    }


def aggregated(p: Params) -> dict:
    """One pool; every iteration decodes the batch and prefills its share of new prompts.

    In steady state each iteration completes ``batch x e / output_len`` requests per
    microbatch (``e``: tokens per user per iteration), so it must prefill
    ``batch x e x prompt_len / output_len`` prompt tokens to keep the batch full. A
    ``prefill_chunk`` budget below that share leaves decode slots empty: the batch shrinks to
    what the budget admits. TPOT is the mean iteration time / ``e`` (the mean iteration is
    a lower bound on the mean of the iterations' times, which are convex in their tokens).
    TTFT at load: the prompt's chunks, each in an iteration beside the decoding batch, plus
    the wait in the prompt queue when requests arrive at random (``queue_wait``; none when
    ``arrival_rate = 0``: a limit) and the calibration's ``request_overhead``.
    """
    d = p.deployment
    e = expected_tokens_per_step(p)
    share = d.batch * e * d.prompt_len / d.output_len
    budget = jnp.where(d.prefill_chunk > 0, d.prefill_chunk, p.calibration.engine_prefill_budget)
    prefill_tokens = jnp.minimum(share, budget)
    users = prefill_tokens * d.output_len / (d.prompt_len * e)  # = batch unless budget-bound
    mean = forward_pass(p, users, prefill_tokens)
    t_iter = mean["time"] + draft_time(p)
    chunk = jnp.minimum(budget, d.prompt_len)
    first = forward_pass(p, users, chunk)
    ttft = d.prompt_len / chunk * (first["time"] + draft_time(p))
    # a queued prompt is served at best at the prefill compute rate (queued prompts share
    # passes), and no faster than the chunk budget admits its tokens
    service = jnp.maximum(
        forward_pass(p, 0.0, d.prompt_len)["t_compute"], d.prompt_len / budget * first["time"]
    )
    held = d.output_len * t_iter / e  # a request's decode keeps the instance iterating
    wait = queue_wait(p, service, t_iter, d.replicas * d.dp, held)
    ttft = ttft + wait + p.calibration.request_overhead
    # dp attention replicas count as independent instances here (their shared expert reads
    # are not modelled in serving yet)
    chips = d.tp * d.dp * d.pp * d.replicas
    requests_per_s = d.replicas * d.dp * d.pp * users * e / (t_iter * d.output_len)
    fit = capacity(p, context=serving_context(p))
    return _outputs(p, t_iter / e, ttft, requests_per_s, chips, mean, fit)


def kv_transfer_time(p: Params):
    """Moving one prompt's KV cache from a prefill to a decode instance over the scale-out
    link: ``sync_latency + bytes / (min(prefill_tp, tp) x scaleout_bw)`` [s]."""
    m, d, hw = p.model, p.deployment, p.hardware
    kv = arch.effective_context(m, d.prompt_len) * arch.kv_bytes_per_token(m, d)
    lanes = jnp.minimum(d.prefill_tp, d.tp)
    return hw.sync_latency + kv / hw.scaleout_bw / lanes


def disaggregated(p: Params) -> dict:
    """A prefill pool and a decode pool; the system serves the lesser of their request rates.

    Prefill pool: ``prefill_replicas x prefill_dp`` instances of ``prefill_tp`` chips, each
    prefilling ``prefill_batch`` prompts per pass. Decode pool: ``replicas`` instances of
    ``tp x pp`` chips at ``batch`` users per microbatch (fewer when the prefill pool cannot keep
    them busy). TTFT = one prefill pass + the KV transfer (+ the prompt queue, ``queue_wait``, and
    ``request_overhead``); per-chip figures count both pools.
    """
    d = p.deployment
    e = expected_tokens_per_step(p)
    prefill_pass = forward_pass(
        p, 0.0, d.prefill_batch * d.prompt_len, tp=d.prefill_tp, ep=d.prefill_ep, pp=1.0
    )
    prefill_rate = d.prefill_replicas * d.prefill_dp * d.prefill_batch / prefill_pass["time"]
    full = forward_pass(p, d.batch, 0.0)
    decode_rate_full = (
        d.replicas * d.dp * d.pp * d.batch * e / ((full["time"] + draft_time(p)) * d.output_len)
    )
    users = d.batch * jnp.minimum(1.0, prefill_rate / decode_rate_full)
    step = forward_pass(p, users, 0.0)
    t_iter = step["time"] + draft_time(p)
    requests_per_s = jnp.minimum(prefill_rate, decode_rate_full)
    ttft = (
        prefill_pass["time"]
        + kv_transfer_time(p)
        + queue_wait(
            p,
            prefill_pass["time"] / d.prefill_batch,
            prefill_pass["time"],
            d.prefill_replicas * d.prefill_dp,
            prefill_pass["time"] / d.prefill_batch,
        )
        + p.calibration.request_overhead
    )
    prefill_chips = d.prefill_tp * d.prefill_dp * d.prefill_replicas
    chips = d.tp * d.dp * d.pp * d.replicas + prefill_chips
    decode_fit = capacity(p, context=serving_context(p))
    prefill_fit = capacity(
        p,
        context=d.prompt_len,
        chips=d.prefill_tp,
        microbatches=1.0,
        batch=d.prefill_batch,
        dp=1.0,
    )
    fit = {
        "feasible": decode_fit["feasible"] & prefill_fit["feasible"],
        "max_batch": decode_fit["max_batch"],
    }
    prefill_bound = prefill_rate < decode_rate_full
    walls = {k: jnp.where(prefill_bound, prefill_pass[k], step[k]) for k in step}
    return _outputs(p, t_iter / e, ttft, requests_per_s, chips, walls, fit)


def serving(p: Params) -> dict:
    """Serving outputs of the mode ``deployment.serving`` (static)."""
    return disaggregated(p) if p.deployment.serving == "disaggregated" else aggregated(p)
