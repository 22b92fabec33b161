"""Analysis of sweep results: open stores, ask questions (Pareto frontiers, best
configurations, MLPerf scenarios, batching advice), export slices. See docs/analysis.md."""

from ._common import DERIVED, label, metric, parameter
from .open import bound_labels, combine_jobs, job_labels, open_results, open_store

__all__ = ["DERIVED", "label", "metric", "parameter", "bound_labels", "combine_jobs",
           "job_labels", "open_results", "open_store"]
