"""The zarr store: schema and provenance, resume after an interruption, config refusal,
elasticity variables with a trailing ``wrt`` dimension, chunking."""

import collections

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
import yaml

import limits
from limits.analysis import open_results
from limits.model.outputs import BOUND_LABELS, DEFAULT_OUTPUTS, OUTPUTS
from limits.sweep import blocks, compose, run
from limits.sweep.store import StoreError, chunk_shape, config_differences

SMALL = [
    "grid=point",
    "++grid.tp=[8,16,32]",
    "++grid.context=[1024,4096,16384,131072]",
    "++grid.batch=[1,4,16]",
    "store.chunk_points=8",
]  # 3x4x3 grid, chunks (1,3,3)


def _run(tmp_path, extra=(), name="s.zarr", **kw):
    return run(
        compose(SMALL + list(extra) + [f"store.path={tmp_path / name}"]), verbose=False, **kw
    )


def test_schema_dims_coords_units_and_provenance(tmp_path):
    result = _run(tmp_path, ["hardware.mem_bw=8TiB/s"])
    ds = xr.open_zarr(result.path)
    assert list(ds.dims) == ["tp", "context", "batch"]
    assert set(ds.data_vars) == set(DEFAULT_OUTPUTS)
    assert ds.attrs["limits_dims"] == ["tp", "context", "batch"]
    for name, var in ds.data_vars.items():  # lean layout: the axes it depends on, in order
        assert var.dims == tuple(d for d in ("tp", "context", "batch") if d in var.dims)
        assert var.attrs["units"] == OUTPUTS[name][0] and var.attrs["long_name"]
    for axis in ("tp", "context", "batch"):
        assert ds[axis].attrs["units"] and ds[axis].attrs["long_name"]
    assert ds.context.attrs["units"] == "tokens"
    np.testing.assert_array_equal(ds.context.values, [1024, 4096, 16384, 131072])
    assert ds.bound.dtype == np.int8 and ds.feasible.dtype == bool
    assert ds.bound.attrs["flag_values"] == [0, 1, 2, 3]
    assert ds.bound.attrs["flag_meanings"].split() == list(BOUND_LABELS)
    assert ds.utps.dtype == np.float32
    config = yaml.safe_load(ds.attrs["config"])
    assert config["hardware"]["mem_bw"] == "8TiB/s" and config["grid"]["tp"] == [8, 16, 32]
    assert ds.attrs["limits_version"] == limits.__version__
    assert {"jax", "numpy", "xarray", "zarr", "hydra"} <= set(ds.attrs["library_versions"])
    assert ds.attrs["created"] and ds.attrs["git_commit"]
    assert ds.utps.encoding["chunks"] == (1, 2, 3)  # chunk_points=8: whole inner axes first
    cname = ds.utps.encoding["compressors"][0].cname  # an enum on zarr 3.1, a str on 3.4
    assert getattr(cname, "value", cname) == "lz4"
    assert (
        result.blocks_total
        == result.blocks_computed
        == np.prod([-(-n // c) for n, c in zip(ds.utps.shape, ds.utps.encoding["chunks"])])
    )


def test_store_values_match_direct_evaluation(tmp_path):
    ds = xr.open_zarr(_run(tmp_path, ["precision=float64"]).path).load()
    p = limits.load_params(
        "xpu_hbm3", "llama3_405b", tp=16, context=4096, batch=4, weight_bytes=1, kv_bytes=1
    )
    out = limits.evaluate(p)
    point = ds.sel(tp=16, context=4096, batch=4)
    for name in ("utps", "stps", "ttft", "memory_required"):
        np.testing.assert_allclose(point[name].values, np.asarray(out[name]), rtol=1e-12)
    assert int(point.bound) == int(out["bound"])


class Interrupt(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    full = _run(tmp_path, name="full.zarr")
    assert full.blocks_total > 3

    def stop_after_two(block, count=[0]):  # noqa: B006 - the list is the call counter
        count[0] += 1
        if count[0] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run(tmp_path, name="resumed.zarr", block_callback=stop_after_two)
    resumed = _run(tmp_path, name="resumed.zarr")
    assert resumed.blocks_skipped == 2
    assert resumed.blocks_computed == full.blocks_total - 2
    a, b = xr.open_zarr(full.path).load(), xr.open_zarr(resumed.path).load()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert resumed.summary["best_utps"] == full.summary["best_utps"]
    again = _run(tmp_path, name="resumed.zarr")  # complete: nothing left to do
    assert again.blocks_computed == 0


def test_resume_is_said_with_the_progress_bar_off(tmp_path, capsys):
    """``limits.progress=false`` hides the bar, not the line that says a run resumes."""

    def stop_after_one(block):
        raise Interrupt

    with pytest.raises(Interrupt):
        _run(tmp_path, block_callback=stop_after_one)
    path = tmp_path / "s.zarr"
    run(compose([*SMALL, f"store.path={path}", "limits.progress=false"]))
    out = capsys.readouterr().out
    assert f"limits.sweep: resuming {path}: 1 of " in out, out


def test_store_written_with_other_settings_is_refused(tmp_path):
    _run(tmp_path)
    with pytest.raises(StoreError, match="different settings") as info:
        _run(tmp_path, ["hardware.mem_bw=8TiB/s", "++grid.batch=[1,2]"])
    message = str(info.value)
    assert "hardware.mem_bw" in message and "grid.batch" in message
    assert "\n" not in message
    _run(tmp_path, ["limits.max_points=1e9", "limits.progress=false"])  # cosmetic: accepted


def test_elasticity_variables_get_a_wrt_dimension(tmp_path, monkeypatch):
    def elasticities(params, metrics, wrt):  # stand-in: d ln utps / d ln x = -1 for all x
        out = limits.evaluate(params)
        shape = jnp.broadcast_shapes(*(jnp.shape(params.deployment.tp), jnp.shape(out[metrics[0]])))
        return {f"elasticity_{m}": -jnp.ones(shape + (len(wrt),), out[m].dtype) for m in metrics}

    monkeypatch.setattr(blocks, "elasticities", elasticities)
    monkeypatch.setattr(blocks, "_CACHE", collections.OrderedDict())  # compile afresh
    result = _run(
        tmp_path,
        [
            "sensitivity.metrics=[utps,stps]",
            "sensitivity.wrt=[mem_bw,tp]",
            "store.variables=[utps,bound]",
        ],
    )
    ds = open_results(result.path)
    assert set(ds.data_vars) == {"utps", "bound", "elasticity_utps", "elasticity_stps"}
    assert ds.elasticity_utps.dims == ("tp", "context", "batch", "wrt")
    # the stand-in depends on no axis: stored over wrt alone
    assert xr.open_zarr(result.path).elasticity_utps.dims == ("wrt",)
    assert list(ds.wrt.values) == ["mem_bw", "tp"]
    assert ds.elasticity_utps.attrs["units"] == "1"
    assert (ds.elasticity_stps.values == -1).all()


def test_unknown_wrt_parameter_is_a_user_error(tmp_path):
    with pytest.raises(limits.ParameterError, match="sensitivity.wrt"):
        _run(tmp_path, ["sensitivity.metrics=[utps]", "sensitivity.wrt=[bandwidth]"])


def test_chunk_shape_fills_inner_axes_first():
    assert chunk_shape((10, 20, 30), 600, names=("a", "b", "c")) == (1, 20, 30)
    assert chunk_shape((10, 20, 30), 100, names=("a", "b", "c")) == (1, 3, 30)
    assert chunk_shape((10, 20, 30), 10**9, names=("a", "b", "c")) == (10, 20, 30)
    assert chunk_shape((10, 20), 50, {"a": 5}, names=("a", "b")) == (5, 20)
    assert chunk_shape((), 50) == ()
    with pytest.raises(StoreError, match="store.chunks: z"):
        chunk_shape((10,), 5, {"z": 1}, names=("a",))


def test_config_differences_lists_changed_keys():
    diffs = config_differences({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1, 2]}, "d": 3})
    assert [d.split(":")[0] for d in diffs] == ["a.b", "d"]
