"""Analysis of sweep results: open stores, ask questions (Pareto frontiers, best
configurations, MLPerf scenarios, batching advice), export slices. See docs/analysis.md."""

from limits.analysis._common import DERIVED, label, metric, parameter
from limits.analysis.batching import batching_advisor, kv_share
from limits.analysis.export import export, to_table
from limits.analysis.frontier import non_dominated, pareto_frontier, pareto_mask
from limits.analysis.open import (
    bound_labels,
    combine_jobs,
    full_grid,
    job_labels,
    open_results,
    open_store,
)
from limits.analysis.scenarios import offline, server, single_stream
from limits.analysis.select import best_config, satisfies
from limits.analysis.serving import serving_frontier, slo_goodput, slo_reduce
from limits.analysis.table import Table, table

__all__ = [
    "DERIVED",
    "label",
    "metric",
    "parameter",
    "batching_advisor",
    "kv_share",
    "export",
    "to_table",
    "non_dominated",
    "pareto_frontier",
    "pareto_mask",
    "bound_labels",
    "combine_jobs",
    "job_labels",
    "open_results",
    "open_store",
    "full_grid",
    "offline",
    "server",
    "single_stream",
    "best_config",
    "satisfies",
    "serving_frontier",
    "slo_goodput",
    "slo_reduce",
    "Table",
    "table",
]
