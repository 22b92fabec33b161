"""Analysis of sweep results: open stores, ask questions (Pareto frontiers, best
configurations, MLPerf scenarios, batching advice), export slices. See docs/analysis.md."""

from ._common import DERIVED, label, metric, parameter
from .batching import batching_advisor, kv_share
from .export import export, to_table
from .frontier import non_dominated, pareto_frontier, pareto_mask
from .open import bound_labels, combine_jobs, job_labels, open_results, open_store
from .scenarios import offline, server, single_stream
from .select import best_config, satisfies

__all__ = ["DERIVED", "label", "metric", "parameter", "batching_advisor", "kv_share", "export",
           "to_table", "non_dominated", "pareto_frontier", "pareto_mask", "bound_labels",
           "combine_jobs", "job_labels", "open_results", "open_store", "offline", "server",
           "single_stream", "best_config", "satisfies"]
