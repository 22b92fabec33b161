"""Opening results: single store, run dir, multirun (job stores and consolidated), bound labels."""

import dask.array
import numpy as np
import pytest
import xarray as xr
import yaml
from helpers_datasets import model_dataset, toy_pareto, write_store

from limits.analysis import bound_labels, open_results
from limits.errors import ConsolidateError


@pytest.fixture(scope="module")
def small():
    return model_dataset(
        batch=[1.0, 64.0],
        context=[4096.0, 131072.0],
        outputs=("utps", "stps", "feasible", "bound", "memory_required"),
    )


def test_open_single_store_and_run_dir_lazily(tmp_path, small):
    store = write_store(small, tmp_path / "run" / "sweep.zarr")
    for path in (store, tmp_path / "run"):
        ds = open_results(path)
        assert list(ds.dims) == ["batch", "context"]
        assert isinstance(ds["utps"].data, dask.array.Array)
        assert ds["utps"].data.chunksize == (1, 1)  # chunks as stored
        assert ds["utps"].attrs["units"] == "tok/s/user"
        assert ds["context"].attrs["units"] == "tok"
        xr.testing.assert_allclose(ds["utps"].load(), small["utps"])
        assert "config" in ds.attrs


def test_bound_labels_decode(tmp_path, small):
    ds = open_results(write_store(small, tmp_path / "s.zarr"), decode_bound=True)
    labels = ds["bound_label"].values
    # batch 64 at 128 Ki context does not fit in one 96 GiB chip (8 GiB weights + 64 x 16 GiB)
    assert labels[1, 1] == "capacity"
    assert labels[0, 0] == "memory"  # batch 1: reading the weights dominates
    codes = xr.DataArray(np.array([0, 1, 2, 3], np.int8), dims="i")
    assert bound_labels(codes).values.tolist() == ["memory", "compute", "sync", "capacity"]


def _job(ds, hardware, model):
    ds = ds.copy()
    ds.attrs["config"] = yaml.safe_dump(
        {"hardware": {"name": hardware, "mem_bw": "4 TiB/s"}, "model": {"name": model}}
    )
    return ds


def test_open_multirun_combines_job_stores(tmp_path):
    a = model_dataset(
        "xpu_hbm3", "llama3_8b", batch=[1.0, 8.0], outputs=("utps", "feasible", "bound")
    )
    b = model_dataset(
        "xpu_hbm4", "llama3_70b", batch=[1.0, 8.0], outputs=("utps", "feasible", "bound")
    )
    write_store(_job(a, "xpu_hbm3", "llama3_8b"), tmp_path / "0" / "sweep.zarr")
    write_store(_job(b, "xpu_hbm4", "llama3_70b"), tmp_path / "1" / "sweep.zarr")
    ds = open_results(tmp_path, decode_bound=True)
    assert list(ds["utps"].dims) == ["hardware", "model", "batch"]
    assert ds["hardware"].values.tolist() == ["xpu_hbm3", "xpu_hbm4"]
    assert ds["model"].values.tolist() == ["llama3_70b", "llama3_8b"]
    np.testing.assert_allclose(ds["utps"].sel(hardware="xpu_hbm3", model="llama3_8b"), a["utps"])
    np.testing.assert_allclose(ds["utps"].sel(hardware="xpu_hbm4", model="llama3_70b"), b["utps"])
    # combinations no job computed: NaN, infeasible, bound "n/a"
    missing = ds.sel(hardware="xpu_hbm3", model="llama3_70b")
    assert np.isnan(missing["utps"]).all()
    assert not missing["feasible"].any()
    assert set(missing["bound_label"].values) == {"n/a"}
    assert ds["utps"].attrs["units"] == "tok/s/user"
    assert ds["feasible"].dtype == bool and ds["bound"].dtype == np.int8
    assert isinstance(ds["utps"].data, dask.array.Array)


def test_open_multirun_prefers_consolidated(tmp_path):
    toy = toy_pareto()
    write_store(_job(toy, "xpu_hbm3", "llama3_8b"), tmp_path / "0" / "sweep.zarr")
    consolidated = toy.expand_dims(
        hardware=np.array(["xpu_hbm3"], dtype=object), model=np.array(["llama3_8b"], dtype=object)
    )
    consolidated.attrs["marker"] = "consolidated"
    write_store(consolidated, tmp_path / "consolidated.zarr")
    ds = open_results(tmp_path)
    assert ds.attrs["marker"] == "consolidated"
    assert ds["hardware"].values.tolist() == ["xpu_hbm3"]


def test_open_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results"):
        open_results(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="sweep.zarr"):
        open_results(tmp_path / "empty")
    write_store(toy_pareto(), tmp_path / "m" / "0" / "sweep.zarr")  # no provenance
    with pytest.raises(ConsolidateError, match="hardware"):
        open_results(tmp_path / "m")


@pytest.mark.slow
def test_questions_on_a_lazily_opened_store_match_in_memory(tmp_path):
    from limits.analysis import batching_advisor, best_config, pareto_frontier

    grid = model_dataset(tp=[1.0, 8.0], batch=[1.0, 16.0, 256.0], context=[4096.0, 131072.0])
    lazy = open_results(write_store(grid, tmp_path / "run" / "sweep.zarr"))
    assert isinstance(lazy["stps"].data, dask.array.Array)
    for ds_best in (best_config(lazy, "stps", {"utps": (">=", 100)}, over="batch"),):
        ref = best_config(grid, "stps", {"utps": (">=", 100)}, over="batch")
        np.testing.assert_array_equal(ds_best["stps"].values, ref["stps"].values)
        np.testing.assert_array_equal(ds_best["batch"].values, ref["batch"].values)
    np.testing.assert_array_equal(
        batching_advisor(lazy)["chosen_batch"].values, batching_advisor(grid)["chosen_batch"].values
    )
    assert pareto_frontier(lazy).equals(pareto_frontier(grid))


def test_string_coordinates_open_as_objects_and_plot(tmp_path):
    """zarr v3 may hand back numpy StringDType coords; opening gives object dtype so string
    checks (e.g. frontier_plot colouring by hardware) treat them as labels."""
    from limits.analysis.open import open_store
    from limits.plots import frontier_plot

    ds = toy_pareto().expand_dims(hardware=np.array(["a", "b"], dtype=object))
    ds = ds.assign_coords(hardware=ds["hardware"].values.astype(np.dtypes.StringDType()))
    assert ds["hardware"].dtype.kind == "T"
    ds.to_zarr(tmp_path / "s.zarr", mode="w")
    opened = open_store(tmp_path / "s.zarr")
    assert opened["hardware"].dtype == object
    fig = frontier_plot(opened, color_by="hardware")
    assert fig.axes[0].get_legend() is not None
