"""Start-up and fast paths (issue 14): the store template written with zarr alone opens in
xarray exactly as xarray's own template did; the jitted ``limits.evaluate`` equals the model;
chunk shapes without padded edge blocks; entry points switch JAX's compilation cache on."""

import math

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

from limits.sweep.store import (
    StoreLayout,
    VariableSpec,
    codec_for,
    create_store,
    output_attrs,
    quiet_zarr_warnings,
)


def _layout(extra: bool = True) -> StoreLayout:
    axes = {"tp": np.array([8.0, 16.0]), "context": np.array([1024.0, 4096.0, 16384.0])}
    variables = [
        VariableSpec("utps", np.dtype(np.float32), attrs=output_attrs("utps")),
        VariableSpec("bound", np.dtype(np.int8), attrs=output_attrs("bound")),
        VariableSpec("feasible", np.dtype(bool), attrs=output_attrs("feasible")),
        VariableSpec("best_batch", np.dtype(np.float64), attrs={"units": "1", "long_name": "b"}),
    ]
    if extra:
        variables.append(
            VariableSpec("elasticity_utps", np.dtype(np.float32), ("wrt",), (2,), {"units": "1"})
        )
    return StoreLayout(
        axes=axes,
        axis_attrs={"tp": {"units": "1", "long_name": "chips"}, "context": {"units": "tokens"}},
        chunks=(1, 2),
        variables=tuple(variables),
        extra_coords={"wrt": np.array(["mem_bw", "sync_latency"], dtype=object)} if extra else {},
        codec="zstd",
        clevel=3,
    )


def _xarray_template(path, layout: StoreLayout, attrs) -> None:
    """The template as the store wrote it before issue 14: an xarray Dataset of dask zeros,
    ``to_zarr(compute=False)``."""
    names = tuple(layout.axes)
    coords = {
        n: (n, np.asarray(v, np.float64), dict(layout.axis_attrs.get(n, {})))
        for n, v in layout.axes.items()
    }
    for n, v in layout.extra_coords.items():
        coords[n] = (n, np.asarray(v, dtype=object), {"long_name": f"{n} parameter names"})
    data, encoding = {}, {}
    for var in layout.variables:
        chunks = layout.chunks + var.extra_shape
        zeros = da.zeros(layout.shape + var.extra_shape, dtype=var.dtype, chunks=chunks)
        data[var.name] = (names + var.extra_dims, zeros, dict(var.attrs))
        encoding[var.name] = {
            "compressors": codec_for(layout.codec, layout.clevel),
            "chunks": chunks,
        }
    with quiet_zarr_warnings():
        xr.Dataset(data, coords=coords, attrs=dict(attrs)).to_zarr(
            path, mode="w", compute=False, encoding=encoding, zarr_format=3, consolidated=True
        )


@pytest.mark.parametrize("extra", [True, False])
def test_template_without_xarray_opens_like_xarrays_own(tmp_path, extra):
    layout = _layout(extra)
    attrs = {"title": "t", "nested": {"a": [1, 2]}}
    create_store(tmp_path / "new.zarr", layout, attrs)
    _xarray_template(tmp_path / "old.zarr", layout, attrs)
    with quiet_zarr_warnings():
        new, old = xr.open_zarr(tmp_path / "new.zarr"), xr.open_zarr(tmp_path / "old.zarr")
    xr.testing.assert_identical(new.load(), old.load())
    for name in old.variables:
        assert new[name].dtype == old[name].dtype
        assert new[name].encoding.get("chunks") == old[name].encoding.get("chunks")
        assert new[name].encoding.get("_FillValue", "unset") == old[name].encoding.get(
            "_FillValue", "unset"
        ) or math.isnan(new[name].encoding["_FillValue"])
    a = zarr.open_group(tmp_path / "new.zarr", mode="r")
    b = zarr.open_group(tmp_path / "old.zarr", mode="r")
    for name in old.data_vars:
        ma, mb = a[name].metadata.to_dict(), b[name].metadata.to_dict()
        for key in ("shape", "data_type", "chunk_grid", "dimension_names", "attributes"):
            assert ma[key] == mb[key], (name, key)
        assert [c["name"] for c in ma["codecs"]] == [c["name"] for c in mb["codecs"]]
        assert str(ma["fill_value"]) == str(mb["fill_value"])
