"""Multirun consolidation: job stores -> one dataset with hardware and model dims."""

import numpy as np
import pytest
import xarray as xr
from omegaconf import OmegaConf

from limits.sweep import compose, run
from limits.sweep.consolidate import ConsolidateCallback, ConsolidateError, consolidate, main

GRID = [
    "grid=point",
    "++grid.tp=[8,16]",
    "++grid.batch=[1,4,16]",
    "limits.progress=false",
    "store.variables=[utps,feasible,bound]",
]


def _job(root, num, hardware, model, extra=()):
    cfg = compose(
        [
            f"hardware={hardware}",
            f"model={model}",
            *GRID,
            *extra,
            f"store.path={root / str(num) / 'sweep.zarr'}",
        ]
    )
    return run(cfg, verbose=False).path


def test_jobs_become_leading_hardware_and_model_dims(tmp_path):
    jobs = {}
    for num, (hw, model) in enumerate(
        [
            ("xpu_hbm3", "llama3_8b"),
            ("xpu_hbm3", "llama3_70b"),
            ("xpu_hbm4", "llama3_8b"),
            ("xpu_hbm4", "llama3_70b"),
        ]
    ):
        jobs[hw, model] = _job(tmp_path, num, hw, model)
    out = consolidate(tmp_path)
    assert out == tmp_path / "consolidated.zarr"
    ds = xr.open_zarr(out)
    assert list(ds.dims) == ["hardware", "model", "tp", "batch"]
    assert ds.utps.dims == ("hardware", "model", "tp", "batch")
    assert list(ds.hardware.values) == ["xpu_hbm3", "xpu_hbm4"]
    assert list(ds.model.values) == ["llama3_8b", "llama3_70b"]
    assert ds.utps.attrs["units"] == "tok/s/user" and ds.bound.dtype == np.int8
    for (hw, model), path in jobs.items():
        job = xr.open_zarr(path)
        for name in job.data_vars:
            np.testing.assert_array_equal(
                ds[name].sel(hardware=hw, model=model).values, job[name].values, err_msg=name
            )
    assert "xpu_hbm4" in ds.attrs["jobs"]


def test_differing_axes_are_a_clear_error(tmp_path):
    _job(tmp_path, 0, "xpu_hbm3", "llama3_8b")
    _job(tmp_path, 1, "xpu_hbm4", "llama3_8b", ["++grid.tp=[8,32]"])
    with pytest.raises(ConsolidateError, match="differ in axis tp"):
        consolidate(tmp_path)
    assert main([str(tmp_path)]) == 2  # CLI: message, exit code 2


def test_duplicate_pairs_name_the_other_difference(tmp_path):
    _job(tmp_path, 0, "xpu_hbm3", "llama3_8b")
    _job(tmp_path, 1, "xpu_hbm3", "llama3_8b", ["deployment.prompt_len=2048"])
    with pytest.raises(ConsolidateError, match="deployment.prompt_len"):
        consolidate(tmp_path)
    from limits.analysis import open_results

    with pytest.raises(ConsolidateError, match="both hold hardware=xpu_hbm3, model=llama3_8b"):
        open_results(tmp_path)  # the same refusal (and error type) when the jobs are combined


def test_callback_and_cli_write_the_consolidated_store(tmp_path, capsys):
    _job(tmp_path, 0, "xpu_hbm3", "llama3_8b")
    _job(tmp_path, 1, "xpu_hbm4", "llama3_8b")
    ConsolidateCallback().on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    )
    assert "consolidated.zarr" in capsys.readouterr().out
    assert xr.open_zarr(tmp_path / "consolidated.zarr").sizes["hardware"] == 2
    assert main([str(tmp_path), "--out", str(tmp_path / "again.zarr")]) == 0
    assert xr.open_zarr(tmp_path / "again.zarr").sizes["model"] == 1


def test_lean_job_stores_consolidate_over_each_variables_own_axes(tmp_path):
    """Lean job stores (each variable over the axes it depends on, which may differ from model
    to model) consolidate with each variable over the union of its jobs' axes, and open to
    each job's values."""
    from limits.analysis import open_results

    lean = ["store.variables=[utps,memory_available,memory_required,ridge_point,ttft]"]
    jobs = {
        (hw, model): _job(tmp_path, num, hw, model, lean)
        for num, (hw, model) in enumerate([("xpu_hbm3", "llama3_8b"), ("xpu_hbm3", "deepseek_v3")])
    }
    out = consolidate(tmp_path)
    plain = xr.open_zarr(out)
    assert plain.memory_available.dims == ("hardware", "model", "tp")
    assert plain.ridge_point.dims == ("hardware", "model")
    ds = open_results(out)
    assert ds.ridge_point.dims == ("hardware", "model", "tp", "batch")
    for (hw, model), path in jobs.items():
        job = open_results(path)
        for name in job.data_vars:
            np.testing.assert_array_equal(
                ds[name].sel(hardware=hw, model=model).values, job[name].values, err_msg=name
            )
