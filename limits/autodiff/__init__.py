"""Derivatives of the limit model: elasticities and exchange rates (forward autodiff), inverse
design (the least bandwidth, the largest sync latency, the fewest chips for a target) and global
sensitivity (Sobol, DGSM)."""

from limits.autodiff.elasticities import (
    derivatives,
    differentiable_parameters,
    elasticities,
    exchange_rate,
    exchange_rate_to_user_units,
)
from limits.autodiff.inverse import max_sync_latency, min_chips, min_mem_bw, required_utps

__all__ = [
    "derivatives",
    "differentiable_parameters",
    "elasticities",
    "exchange_rate",
    "exchange_rate_to_user_units",
    "max_sync_latency",
    "min_chips",
    "min_mem_bw",
    "required_utps",
]
