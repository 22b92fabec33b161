"""Batching advisor: how small a batch keeps most of the throughput, what memory that frees,
and why large batches stay memory-bound (KV-cache reads)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from limits.analysis._common import broadcast_to_points, feasible_mask, metric
from limits.analysis.open import bound_labels

__all__ = ["batching_advisor", "kv_share"]

_EVIDENCE = ("t_mem", "t_compute", "t_sync", "t_overhead")


def kv_share(ds: xr.Dataset) -> xr.DataArray | None:
    """KV-cache share of the bytes read per step: ``kv_bytes_read / bytes_per_step`` when
    stored, else the proxy ``memory_kv / memory_required`` (the KV share of the memory held;
    it equals the share of bytes read for a dense model with pp = 1, no workspace and no
    speculative decoding, where a step reads all weights and every user's KV once).
    None when neither pair is stored. The `method` attr says which was used."""
    if "kv_bytes_read" in ds and "bytes_per_step" in ds:
        share, method = ds["kv_bytes_read"] / ds["bytes_per_step"], "kv_bytes_read / bytes_per_step"
    elif "memory_kv" in ds and "memory_required" in ds:
        share, method = (
            ds["memory_kv"] / ds["memory_required"],
            "proxy: memory_kv / memory_required",
        )
    else:
        return None
    return share.rename("kv_share").assign_attrs(
        units="1", long_name="KV-cache share of bytes read per step", method=method
    )


def batching_advisor(
    ds: xr.Dataset, fraction: float = 0.95, batch_dim: str = "batch"
) -> xr.Dataset:
    """For every combination of the dims other than `batch_dim`: the throughput curve, its
    plateau (max feasible `stps`), the smallest batch reaching `fraction` of the plateau, the
    memory that choice frees and what it could hold, and the evidence of which wall binds.

    **Returns:** a computed (never lazy) Dataset with
    - curves over `batch_dim`: `stps` (feasible only, else NaN), `bound_label`, `kv_share`;
    - `plateau_stps`, `plateau_batch`, `chosen_batch`, `chosen_stps`;
    - `memory_at_plateau`, `memory_at_chosen`, `memory_freed` (= difference of
      `memory_required`), `memory_available`, `memory_freed_fraction` (of available);
    - `extra_replicas` = floor(memory_freed / memory_at_chosen) and `combined_stps` =
      (1 + extra_replicas) x chosen_stps. Assumption: the freed memory can host whole extra
      replicas at the chosen batch, each with its own bandwidth and compute (as if on chips of
      its own). Replicas sharing the same chips would share their bandwidth, so in a
      memory-bound regime `combined_stps` is an upper bound, not a prediction;
    - `bound_at_*`, `t_mem_at_*`, `t_compute_at_*`, `t_sync_at_*` (`t_overhead` when stored),
      `kv_share_at_*` for `*` in (plateau, chosen), when those variables are stored.
    Groups without a feasible point have NaN summaries.
    """
    if batch_dim not in ds.dims:
        raise KeyError(
            f"batching_advisor needs a {batch_dim!r} axis; dims: {', '.join(map(str, ds.dims))}"
        )
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction = {fraction} is out of range; allowed: (0, 1]")
    ds = ds.sortby(batch_dim)
    stps, ok = broadcast_to_points(ds, metric(ds, "stps"), feasible_mask(ds))
    curve = stps.where(ok)
    plateau = curve.max(batch_dim)
    has_point = plateau.notnull()
    i_plateau = curve.fillna(-np.inf).argmax(batch_dim).compute()  # indices: small, eager
    i_chosen = (curve >= fraction * plateau).argmax(batch_dim).compute()  # first that reaches

    def at(da: xr.DataArray, index: xr.DataArray) -> xr.DataArray:
        da = broadcast_to_points(ds, da)[0]
        return da.isel({batch_dim: index}).drop_vars(batch_dim, errors="ignore")

    batch = ds[batch_dim]
    memory = metric(ds, "memory_required")
    out = xr.Dataset({"stps": curve.assign_attrs(stps.attrs)})
    out["plateau_stps"] = at(curve, i_plateau).assign_attrs(
        units=stps.attrs.get("units", ""), long_name="plateau: largest feasible stps"
    )
    out["plateau_batch"] = at(batch, i_plateau).assign_attrs(
        units="1", long_name="batch of the plateau"
    )
    out["chosen_batch"] = at(batch, i_chosen).assign_attrs(
        units="1", long_name=f"smallest batch reaching {fraction:g} of the plateau"
    )
    out["chosen_stps"] = at(curve, i_chosen).assign_attrs(
        units=stps.attrs.get("units", ""), long_name="stps at the chosen batch"
    )
    mem_units = memory.attrs.get("units", "B")
    out["memory_at_plateau"] = at(memory, i_plateau).assign_attrs(
        units=mem_units, long_name="memory required at the plateau batch"
    )
    out["memory_at_chosen"] = at(memory, i_chosen).assign_attrs(
        units=mem_units, long_name="memory required at the chosen batch"
    )
    out["memory_freed"] = (out["memory_at_plateau"] - out["memory_at_chosen"]).assign_attrs(
        units=mem_units, long_name="memory freed by the chosen batch"
    )
    if "memory_available" in ds:
        out["memory_available"] = at(ds["memory_available"], i_chosen).assign_attrs(
            units=mem_units, long_name="memory available per replica"
        )
        out["memory_freed_fraction"] = (out["memory_freed"] / out["memory_available"]).assign_attrs(
            units="1", long_name="freed / available memory"
        )
    out["extra_replicas"] = xr.ufuncs.floor(
        out["memory_freed"] / out["memory_at_chosen"]
    ).assign_attrs(units="1", long_name="extra replicas that fit in the freed memory (upper bound)")
    out["combined_stps"] = ((1.0 + out["extra_replicas"]) * out["chosen_stps"]).assign_attrs(
        units=stps.attrs.get("units", ""),
        long_name="stps of the chosen batch with the extra replicas (upper bound)",
    )
    share = kv_share(ds)
    if share is not None:
        out["kv_share"] = share
    if "bound" in ds:
        out["bound_label"] = bound_labels(ds)
    for where, index in (("plateau", i_plateau), ("chosen", i_chosen)):
        if "bound" in ds:
            out[f"bound_at_{where}"] = at(bound_labels(ds), index).assign_attrs(
                units="", long_name=f"binding wall at the {where} batch"
            )
        for name in _EVIDENCE + (("kv_share",) if share is not None else ()):
            src = share if name == "kv_share" else ds.get(name)
            if src is not None:
                out[f"{name}_at_{where}"] = at(src, index).assign_attrs(src.attrs)
    summaries = [str(n) for n in out.data_vars if batch_dim not in out[n].dims]
    if not bool(has_point.all()):
        for name in summaries:
            out[name] = out[name].where(has_point)
    out.attrs.update(
        fraction=fraction,
        batch_dim=batch_dim,
        replica_assumption="extra replicas get their own bandwidth and compute",
    )
    return out.compute()
