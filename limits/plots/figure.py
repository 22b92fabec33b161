"""New figures without pyplot: no global state, no backend switch, nothing shown. The caller
saves, displays (a notebook shows a returned ``Figure``) or discards them."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

__all__ = ["new_figure", "figure_and_axes"]


def new_figure(width: float = 6.4, height: float = 4.4) -> tuple[Figure, Any]:
    """A constrained-layout ``Figure`` of ``width`` x ``height`` inches and its one ``Axes``."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def figure_and_axes(ax: Any = None, width: float = 6.4, height: float = 4.4) -> tuple[Figure, Any]:
    """``ax`` and its figure when given, else a new figure (``new_figure``)."""
    if ax is not None:
        return ax.figure, ax
    return new_figure(width, height)
