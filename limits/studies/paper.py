"""The LIMINAL paper's published constants (arXiv 2507.14397; docs/references.md s.1), quoted
by the studies for comparison only, and the systems the paper centres on."""

from __future__ import annotations

from typing import Final, TypedDict

__all__ = ["PAPER", "BASE_HW", "BIG_MODEL", "MOE_MODEL"]


class PaperValues(TypedDict):
    """The type of each published value (the studies do arithmetic on them)."""

    golden_utps: dict[int, int]
    golden_tp: int
    scale_out_sync_s: float
    tp128_utps: int
    hbm3_long_context_utps: int
    bandwidth_factor: int
    bandwidth_gain: tuple[float, float]
    fast_bandwidth_factor: int
    sync_knee_s: float
    sync_needed_s: float
    low_batch_utilization: float
    large_model_bytes: float
    fast_sync_utps: int
    extreme_utps: int
    cows_mem_bw: float


#: the paper's published values (docs/references.md s.1), quoted for comparison only
PAPER: Final[PaperValues] = {
    "golden_utps": {4096: 290, 131072: 271},  # Llama3-405B, HBM3, TP32, batch 1
    "golden_tp": 32,
    "scale_out_sync_s": 2.25e-6,  # the paper's all-reduce latency
    "tp128_utps": 600,  # "128 HBM3 chips easily reach 600 UTPS"
    "hbm3_long_context_utps": 1000,  # "no HBM3 config reaches 1000 at long ctx"
    "bandwidth_factor": 8,  # "raising bandwidth 8x ..."
    "bandwidth_gain": (1.1, 4.5),  # "... buys only 1.1-4.5x UTPS"
    "fast_bandwidth_factor": 10,  # "once bandwidth is ~10x HBM3 ..."
    "sync_knee_s": 2.5e-6,  # "... sync below 2.5 us gives large gains"
    "sync_needed_s": 1e-6,  # "~1 us is needed"
    "low_batch_utilization": 0.01,  # "at most about 1 %"
    "large_model_bytes": 100e9,  # "hundreds of GB"
    "fast_sync_utps": 2000,  # "2000+ UTPS reachable with fast sync"
    "extreme_utps": 10000,  # "10,000+ needs smaller models or context"
    "cows_mem_bw": 2250 * 2.0**40,  # xPU-COWS: 2250 TB/s (binary) per chip [B/s]
}

BASE_HW = "xpu_hbm3"
BIG_MODEL = "llama3_405b"
MOE_MODEL = "deepseek_v3"
