"""Figures from stores and parameters. Every function returns a matplotlib ``Figure`` (or
draws on the ``ax`` given); none switches the backend or shows a window."""

from limits.plots.results import (
    BOUND_COLORS,
    bound_map,
    frontier_plot,
    memory_breakdown,
    roofline,
    serving_frontier_plot,
    time_breakdown,
)
from limits.plots.sensitivity import elasticity_heatmap, tornado

__all__ = [
    "BOUND_COLORS",
    "bound_map",
    "frontier_plot",
    "memory_breakdown",
    "roofline",
    "serving_frontier_plot",
    "time_breakdown",
    "elasticity_heatmap",
    "tornado",
]
