"""Serving questions on a store: SLO goodput and the tokens/s/user vs tokens/s/chip frontier.

The store must hold the serving outputs (``output_tps_per_chip``, ``output_tps_per_user``,
``tpot``, ``ttft_at_load``, ``serving_feasible``; docs/serving.md). For a grid too large to
store, ``slo_reduce`` gives the same question as an on-device reduction (``reduce`` config).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import xarray as xr

from limits.analysis.frontier import pareto_frontier
from limits.analysis.select import best_config

__all__ = ["SERVING_MASK", "slo_constraints", "slo_goodput", "slo_reduce", "serving_frontier"]

#: the capacity check of the serving outputs (KV at the mean serving context)
SERVING_MASK = "serving_feasible"


def slo_constraints(ttft_max: float, tpot_max: float) -> dict[str, tuple[str, Any]]:
    """``ttft_at_load <= ttft_max`` [s] and ``tpot <= tpot_max`` [s], fitting in memory."""
    return {
        "ttft_at_load": ("<=", float(ttft_max)),
        "tpot": ("<=", float(tpot_max)),
        SERVING_MASK: ("==", True),
    }


def slo_goodput(
    ds: xr.Dataset,
    ttft_max: float,
    tpot_max: float,
    over: str | Iterable[str] | None = None,
) -> xr.Dataset:
    """The best ``output_tps_per_chip`` with ``ttft_at_load <= ttft_max`` and
    ``tpot <= tpot_max`` (seconds) over the dims ``over`` (None: all; e.g. ``["batch", "tp"]``),
    per combination of the other dims (``limits.analysis.best_config``)."""
    return best_config(
        ds,
        maximize="output_tps_per_chip",
        constraints=slo_constraints(ttft_max, tpot_max),
        feasible_only=False,  # the serving capacity check is one of the constraints
        over=over,
    )


def slo_reduce(
    ttft_max: float, tpot_max: float, over: Sequence[str] = ("batch", "tp")
) -> list[str]:
    """Hydra overrides of the same question as an on-device reduction (``reduce`` config):
    only the best point over ``over`` is stored, with ``best_<axis>``."""
    constraints = ",".join(
        f"{name}:['{op}',{float(value) if name != SERVING_MASK else 1}]"
        for name, (op, value) in slo_constraints(ttft_max, tpot_max).items()
    )
    return [
        f"reduce.over=[{','.join(over)}]",
        "reduce.objective=output_tps_per_chip",
        "reduce.mode=max",
        f"+reduce.constraints={{{constraints}}}",
        "reduce.feasible_only=false",
    ]


def serving_frontier(
    ds: xr.Dataset, over: str | Iterable[str] | None = None, columns: Iterable[str] = ()
) -> pd.DataFrame:
    """Pareto frontier of (``output_tps_per_user``, ``output_tps_per_chip``) among points that
    fit (``serving_feasible``): the chart capacity planners compare systems with."""
    return pareto_frontier(
        ds,
        x="output_tps_per_user",
        y="output_tps_per_chip",
        over=over,
        mask=SERVING_MASK,
        columns=("tpot", "ttft_at_load", *columns),
    )
