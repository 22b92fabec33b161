"""Names, units and descriptions of everything the limit model returns.

The sweep engine writes these as dataset variables (``units`` and ``long_name`` attrs); the
docs table in docs/model.md is generated from the same place.
"""

from __future__ import annotations

__all__ = [
    "OUTPUTS",
    "BOUND_LABELS",
    "BOUND_OUTPUTS",
    "LABEL_OUTPUTS",
    "DEFAULT_OUTPUTS",
    "DECODE_FIGURES",
    "SERVING_FIGURES",
]

#: index -> label of the ``bound`` variable (which wall binds).
BOUND_LABELS = ("memory", "compute", "sync", "capacity")

#: outputs that hold an index into ``BOUND_LABELS`` (int8)
BOUND_OUTPUTS = ("bound", "serving_bound")

#: label outputs (no elasticity, no float dtype): the walls and the capacity checks
LABEL_OUTPUTS = (*BOUND_OUTPUTS, "feasible", "serving_feasible")

#: the decode step's times and rates (per step, per user, per system)
DECODE_FIGURES = ("step_time", "tbt", "utps", "stps", "ttft", "request_latency")
#: the serving model's times and rates; an answer in their terms is checked with
#: ``serving_feasible`` (``limits.query``), and a calibration predicts them (with the above)
SERVING_FIGURES = (
    "tpot",
    "ttft_at_load",
    "output_tps",
    "output_tps_per_chip",
    "output_tps_per_user",
    "requests_per_s",
)

#: name -> (units, long_name)
OUTPUTS: dict[str, tuple[str, str]] = {
    # decode step
    "step_time": ("s", "decode step time (per-token latency of one step)"),
    "utps": ("tok/s/user", "tokens per second per user"),
    "stps": ("tok/s", "system tokens per second (all replicas)"),
    "tbt": ("s", "mean time between tokens (step_time / tokens_per_step)"),
    "tokens_per_step": ("tok", "expected tokens per user per step (speculative decoding)"),
    "t_mem": ("s", "memory time: bytes read / bandwidth"),
    "t_compute": ("s", "compute time: FLOPs / peak FLOP/s"),
    "t_sync": ("s", "exposed synchronisation time"),
    "t_overhead": ("s", "per-layer software overhead"),
    "t_draft": ("s", "draft-model time per step"),
    "weight_bytes_read": ("B", "weight bytes read per step"),
    "kv_bytes_read": ("B", "KV-cache bytes read per step"),
    "bytes_per_step": ("B", "bytes read per step"),
    "flops_per_step": ("FLOP", "FLOPs per step"),
    "arithmetic_intensity": ("FLOP/B", "decode arithmetic intensity"),
    "ridge_point": ("FLOP/B", "ridge point: peak FLOP/s / bandwidth"),
    "compute_utilization": ("1", "achieved / peak FLOP/s during a step"),
    "bound": ("1", "binding wall"),
    # no KV cache
    "flops_per_token_no_cache": ("FLOP", "FLOPs per token without a KV cache"),
    "step_time_no_cache": ("s", "decode step time without a KV cache"),
    # prefill
    "ttft": ("s", "time to first token of one prompt on an idle replica (isolated prefill)"),
    "prefill_flops": ("FLOP", "prefill FLOPs of one prompt"),
    "prefill_attention_flops": ("FLOP", "attention FLOPs of one prompt's prefill"),
    "prefill_bytes": ("B", "bytes moved by one prompt's prefill"),
    "prefill_intensity": ("FLOP/B", "prefill arithmetic intensity"),
    "request_latency": ("s", "end-to-end latency: ttft + (output_len - 1) x tbt"),
    # serving in steady state (deployment.serving: aggregated or disaggregated)
    "tpot": ("s", "serving: mean time per output token after the first, at load"),
    "ttft_at_load": (
        "s",
        "serving: time to first token at load (+ the prompt queue when arrival_rate > 0)",
    ),
    "output_tps": ("tok/s", "serving: output tokens per second of the whole deployment"),
    "output_tps_per_chip": ("tok/s/chip", "serving: output tokens per second per chip"),
    "output_tps_per_user": ("tok/s/user", "serving: output tokens per second per user"),
    "requests_per_s": ("1/s", "serving: requests completed per second"),
    "serving_chips": ("1", "serving: chips of the deployment (both pools if disaggregated)"),
    "serving_t_mem": ("s", "serving: memory time of the binding pass"),
    "serving_t_compute": ("s", "serving: compute time of the binding pass"),
    "serving_t_sync": ("s", "serving: exposed sync time of the binding pass"),
    "serving_feasible": ("1", "serving: KV at the mean serving context fits in memory"),
    "serving_max_batch": ("1", "serving: largest batch that fits at the mean serving context"),
    "serving_bound": ("1", "serving: binding wall"),
    "serving_energy_per_token": ("J/tok", "serving: provisioned energy per output token"),
    "serving_cost_per_mtok": ("USD/Mtok", "serving: cost per million output tokens"),
    # capacity
    "memory_weights": ("B", "memory for weights per replica"),
    "memory_kv": ("B", "memory for the KV cache of in-flight users per replica"),
    "memory_required": ("B", "memory required per replica"),
    "memory_available": ("B", "memory available per replica"),
    "feasible": ("1", "memory_required <= memory_available"),
    "max_batch": ("1", "largest batch per microbatch that fits in memory"),
    # power and cost
    "chips": ("1", "chips in all replicas"),
    "power": ("W", "provisioned power"),
    "energy_per_token": ("J/tok", "energy per generated token"),
    "stps_per_watt": ("tok/s/W", "system tokens per second per watt (= tokens per joule)"),
    "cost_per_hour": ("USD/h", "cost of the deployment per hour"),
    "cost_per_mtok": ("USD/Mtok", "cost per million generated tokens"),
    "tokens_per_usd": ("tok/USD", "generated tokens per dollar"),
}

#: variables a sweep stores unless told otherwise
DEFAULT_OUTPUTS = (
    "step_time",
    "utps",
    "stps",
    "ttft",
    "memory_required",
    "memory_available",
    "feasible",
    "bound",
    "t_mem",
    "t_compute",
    "t_sync",
    "max_batch",
    "stps_per_watt",
    "cost_per_mtok",
)
