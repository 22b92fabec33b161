"""MLPerf inference scenarios (docs/references.md s.2) as slices and searches of a results set."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import xarray as xr

from limits.analysis.select import best_config
from limits.units import parse_quantity

__all__ = ["single_stream", "server", "offline"]


def single_stream(ds: xr.Dataset, batch_dim: str = "batch") -> xr.Dataset:
    """Single stream: one user at a time, the `batch = 1` slice (all other dims kept)."""
    if batch_dim not in ds.dims:
        raise KeyError(
            f"single_stream needs a {batch_dim!r} axis; dims: {', '.join(map(str, ds.dims))}"
        )
    if 1.0 not in ds[batch_dim].values:
        raise ValueError(
            f"single_stream needs {batch_dim} = 1 in the grid; {batch_dim}: "
            f"{ds[batch_dim].values.tolist()}"
        )
    return ds.sel({batch_dim: 1.0})


def server(
    ds: xr.Dataset,
    ttft_max: float | str,
    tbt_max: float | str,
    over: str | Iterable[str] | None = "batch",
    maximize: str = "stps",
    constraints: Mapping[str, tuple[str, Any]] | None = None,
) -> xr.Dataset:
    """Server: many users, latency-bounded batching. The largest throughput (`maximize`) among
    feasible points with ``ttft <= ttft_max`` and ``tbt <= tbt_max`` (seconds, or strings with
    units such as ``"200 ms"``), searched over `over` (default: the batch; None: all dims).
    `tbt` is derived from `step_time` when not stored (see ``DERIVED``). Returns a computed
    Dataset (see ``best_config``); ``limits.analysis.table(result)`` prints it with units."""
    bounds = {
        "ttft": ("<=", parse_quantity(ttft_max, "s", "ttft_max")),
        "tbt": ("<=", parse_quantity(tbt_max, "s", "tbt_max")),
    }
    return best_config(ds, maximize, {**bounds, **(constraints or {})}, True, over)


def offline(
    ds: xr.Dataset,
    over: str | Iterable[str] | None = "batch",
    maximize: str = "stps",
    constraints: Mapping[str, tuple[str, Any]] | None = None,
) -> xr.Dataset:
    """Offline: all requests at once, batch chosen for throughput. The largest feasible
    throughput searched over `over` (default: the batch; None: all dims)."""
    return best_config(ds, maximize, constraints, True, over)
