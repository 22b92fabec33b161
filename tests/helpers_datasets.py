"""Datasets in the sweep-store layout for analysis tests: model-evaluated grids and toys.

Layout (as the sweep engine writes it): dims = axis names in the given order, coords in SI
units with `units`/`long_name`, variables named as in `limits.model.outputs.OUTPUTS` with the same
attrs, `bound` int8 with CF flag attrs, provenance `config` YAML in the dataset attrs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
import yaml

import limits
from limits.model.outputs import BOUND_LABELS, OUTPUTS
from limits.model.params import numeric_fields, parameter_index

UNIT_TEXT = {
    "B/s": "B/s",
    "B": "B",
    "FLOP/s": "FLOP/s",
    "s": "s",
    "tok": "tok",
    "1": "1",
    "W": "W",
    "USD/h": "USD/h",
    "USD": "USD",
    "USD/kWh": "USD/kWh",
}


def with_output_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Add `units`/`long_name` (and the `bound` flag attrs) to every known variable."""
    for name in ds.data_vars:
        if name in OUTPUTS:
            units, long_name = OUTPUTS[name]
            ds[name].attrs.update(units=units, long_name=long_name)
    if "bound" in ds:
        ds["bound"].attrs.update(
            flag_values=list(range(len(BOUND_LABELS))), flag_meanings=" ".join(BOUND_LABELS)
        )
    return ds


def model_dataset(
    hardware: str = "xpu_hbm3",
    model: str = "llama3_8b",
    outputs: tuple[str, ...] | None = None,
    fixed: dict | None = None,
    **axes: list[float],
) -> xr.Dataset:
    """`limits.evaluate` on the broadcast grid of `axes` (name -> values, in order), wrapped in
    the store layout. `fixed` sets other parameters."""
    params = limits.load_params(hardware, model, **(fixed or {}))
    names = list(axes)
    grid = {}
    for i, name in enumerate(names):
        shape = [1] * len(names)
        shape[i] = len(axes[name])
        grid[name] = np.asarray(axes[name], dtype=np.float64).reshape(shape)
    out = limits.evaluate(params.replace(**grid))
    shape = tuple(len(axes[n]) for n in names)
    index = parameter_index()
    coords = {
        n: (
            n,
            np.asarray(axes[n], dtype=np.float64),
            {
                "units": UNIT_TEXT.get(index[n][1].unit, index[n][1].unit),
                "long_name": index[n][1].doc,
            },
        )
        for n in names
    }
    keep = outputs or tuple(out)
    data = {k: (names, np.broadcast_to(np.asarray(out[k]), shape).copy()) for k in keep}
    # the provenance a real store records: every parameter value of the run (SI units)
    config = {
        group: ({"name": getattr(params, group).name} if group in ("hardware", "model") else {})
        | {
            k: float(getattr(getattr(params, group), k))
            for k in numeric_fields(type(getattr(params, group)))
        }
        for group in ("hardware", "model", "deployment")
    }
    ds = xr.Dataset(
        data,
        coords=coords,
        attrs={"config": yaml.safe_dump(config), "limits_version": limits.__version__},
    )
    return with_output_attrs(ds)


def toy_pareto() -> xr.Dataset:
    """3 x 3 toy: dims `a`, `b`. Hand-checked facts (see tests):

    utps = [[10, 20, 30], [15, 25, 5], [40, 8, 12]]
    stps = [[90, 70, 60], [80, 65, 50], [20, 95, 10]]
    feasible all True except (a=2, b=1) (the point 8, 95).
    chips = [[8, 16, 32], [16, 32, 64], [64, 128, 128]]
    """
    utps = np.array([[10, 20, 30], [15, 25, 5], [40, 8, 12]], dtype=float)
    stps = np.array([[90, 70, 60], [80, 65, 50], [20, 95, 10]], dtype=float)
    chips = np.array([[8, 16, 32], [16, 32, 64], [64, 128, 128]], dtype=float)
    feasible = np.ones((3, 3), bool)
    feasible[2, 1] = False
    bound = np.where(feasible, 0, 3).astype(np.int8)
    ds = xr.Dataset(
        {
            "utps": (("a", "b"), utps),
            "stps": (("a", "b"), stps),
            "chips": (("a", "b"), chips),
            "feasible": (("a", "b"), feasible),
            "bound": (("a", "b"), bound),
            "cost_per_mtok": (("a", "b"), 1e6 / (stps * 3600.0)),
        },
        coords={
            "a": ("a", [1.0, 2.0, 3.0], {"units": "1", "long_name": "axis a"}),
            "b": ("b", [10.0, 20.0, 30.0], {"units": "s", "long_name": "axis b"}),
        },
    )
    return with_output_attrs(ds)


def toy_batching() -> xr.Dataset:
    """Batching toy: dims `context` (2) x `batch` (6). Hand-checked in test_analysis_batching.

    context 4096: stps = [10, 19, 30, 38, 39.5, 40], all feasible;
    context 8192: stps = [5, 9, 16, 25, 30, 45], batch 32 infeasible.
    memory_required = 10 + 10 x batch, memory_kv = 10 x batch, memory_available = 400.
    """
    batch = np.array([1.0, 2, 4, 8, 16, 32])
    stps = np.array([[10, 19, 30, 38, 39.5, 40], [5, 9, 16, 25, 30, 45]], dtype=float)
    feasible = np.ones((2, 6), bool)
    feasible[1, 5] = False
    mem_kv = np.broadcast_to(10.0 * batch, (2, 6)).copy()
    t_mem = np.broadcast_to(1.0 + 0.1 * batch, (2, 6)).copy()
    t_compute = np.broadcast_to(0.02 * batch, (2, 6)).copy()
    dims = ("context", "batch")
    ds = xr.Dataset(
        {
            "stps": (dims, stps),
            "feasible": (dims, feasible),
            "memory_kv": (dims, mem_kv),
            "memory_required": (dims, 10.0 + mem_kv),
            "memory_weights": (dims, np.full((2, 6), 10.0)),
            "memory_available": (dims, np.full((2, 6), 400.0)),
            "t_mem": (dims, t_mem),
            "t_compute": (dims, t_compute),
            "t_sync": (dims, np.full((2, 6), 0.5)),
            "bound": (dims, np.where(feasible, 0, 3).astype(np.int8)),
        },
        coords={
            "context": ("context", [4096.0, 8192.0], {"units": "tok", "long_name": "context"}),
            "batch": ("batch", batch, {"units": "1", "long_name": "batch"}),
        },
    )
    return with_output_attrs(ds)


def write_store(ds: xr.Dataset, path: Path) -> Path:
    """Write `ds` as a zarr v3 store (chunked, as the engine does) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunked = ds.chunk({d: max(1, n // 2) for d, n in ds.sizes.items()})
    for name in chunked.variables:
        chunked[name].encoding.clear()
    chunked.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return path
