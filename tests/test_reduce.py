"""reduce: the on-device best-point reduction equals a brute-force reduction (xarray/numpy) of
the unreduced store; ties, no-valid groups, elasticities, two devices, resume, one compile,
and the refused settings."""

import collections
import operator

import jax
import numpy as np
import pytest
import xarray as xr

from limits.analysis import open_results
from limits.sweep import SweepError, blocks, compose, run
from limits.sweep.blocks import BlockFunction
from limits.sweep.reduce import Reduction
from limits.sweep.store import StoreError

GRID = [
    "grid=point",
    "++grid.tp=[8,16,32]",
    "++grid.context=[1024,8192,65536,131072]",
    "++grid.batch=[1,2,4,8,16,32,64,128,256,512]",
    "precision=float64",
    "store.variables=[utps,stps,ttft,feasible,bound,memory_available,weight_bytes_read]",
]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _sweep(tmp_path, name, *overrides, **kw):
    result = run(compose([*GRID, *overrides, f"store.path={tmp_path / name}"]), verbose=False, **kw)
    return result, xr.open_zarr(result.path).load()


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The unreduced store of GRID (plus elasticities of utps w.r.t. mem_bw and batch)."""
    path = tmp_path_factory.mktemp("full") / "full.zarr"
    run(
        compose(
            [
                *GRID,
                "sensitivity.metrics=[utps]",
                "sensitivity.wrt=[mem_bw,peak_flops]",
                f"store.path={path}",
            ]
        ),
        verbose=False,
    )
    return open_results(path).load()  # every variable over every axis (lean store)


def brute(full, over, objective, mode="max", constraints=(), feasible_only=True):
    """Reference: stack the reduced axes (C order of ``over``), mask, first best index."""
    st = full.stack(_r=list(over))
    valid = ~np.isnan(st[objective].astype(float))
    for name, op, value in constraints:
        valid &= OPS[op](st[name], value)
    if feasible_only:
        valid &= st.feasible
    fill = -np.inf if mode == "max" else np.inf
    score = st[objective].astype(float).where(valid, fill)
    best = score.max("_r") if mode == "max" else score.min("_r")
    index = (valid & (score == best)).argmax("_r")  # first True
    found = valid.any("_r")
    picked = st.isel(_r=index)
    out = {}
    for name in full.data_vars:
        v = picked[name].drop_vars(["_r", *over], errors="ignore")
        out[name] = v.where(
            found, np.nan if v.dtype.kind == "f" else (False if v.dtype == bool else -1)
        ).astype(v.dtype)
    for axis in over:
        out[f"best_{axis}"] = picked[axis].drop_vars(["_r", *over], errors="ignore").where(found)
    out["reduce_found"] = found
    return out


def assert_matches(reduced, reference):
    for name, expected in reference.items():
        got = reduced[name].transpose(*expected.dims)
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got.values, expected.values, rtol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(got.values, expected.values, err_msg=name)


CASES = [
    (["batch"], "stps", "max", [("utps", ">=", 100.0)], True),
    (["batch"], "ttft", "min", [("utps", ">", 60.0)], False),
    (["batch", "tp"], "stps", "max", [("utps", ">=", 50.0), ("ttft", "<=", 2.0)], True),
    (["context", "batch"], "utps", "min", [], True),
]


@pytest.mark.parametrize("over,objective,mode,constraints,feasible_only", CASES)
def test_reduced_store_equals_brute_force(
    full, tmp_path, over, objective, mode, constraints, feasible_only
):
    cons = [f'++reduce.constraints.{n}=["{op}",{v}]' for n, op, v in constraints]
    result, ds = _sweep(
        tmp_path,
        "r.zarr",
        f"reduce.over=[{','.join(over)}]",
        f"reduce.objective={objective}",
        f"reduce.mode={mode}",
        f"reduce.feasible_only={str(feasible_only).lower()}",
        *cons,
        "store.chunk_points=40",
    )
    kept = [d for d in ("tp", "context", "batch") if d not in over]
    assert ds.utps.dims == tuple(kept) and result.traces <= 1 and result.blocks_computed > 1
    ref = brute(
        full.drop_vars(["elasticity_utps", "wrt"]),
        over,
        objective,
        mode,
        constraints,
        feasible_only,
    )
    assert_matches(ds, ref)
    assert ds.best_batch.attrs["units"] == full.batch.attrs["units"]
    assert "reduction" in ds.attrs and objective in ds.attrs["reduction"]


def test_some_groups_have_no_valid_point_and_get_the_documented_fill(full, tmp_path):
    _, ds = _sweep(
        tmp_path, "r.zarr", "reduce.over=[batch]", '++reduce.constraints.utps=[">=",150]'
    )
    found = ds.reduce_found.values
    assert found.any() and not found.all()
    none = ~found
    assert np.isnan(ds.utps.values[none]).all() and np.isnan(ds.best_batch.values[none]).all()
    assert not ds.feasible.values[none].any() and (ds.bound.values[none] == -1).all()
    assert ds.bound.attrs["flag_values"][0] == -1
    assert (ds.utps.values[found] >= 150).all()


def test_ties_pick_the_first_index(full, tmp_path):
    # weight bytes read per step and memory available do not depend on the batch: all tie
    for objective, mode in (("weight_bytes_read", "max"), ("memory_available", "min")):
        _, ds = _sweep(
            tmp_path,
            f"{objective}.zarr",
            "reduce.over=[batch]",
            f"reduce.objective={objective}",
            f"reduce.mode={mode}",
            "reduce.feasible_only=false",
        )
        assert (ds.best_batch.values == 1.0).all()
        np.testing.assert_array_equal(ds.utps.values, full.utps.sel(batch=1).values)


def test_elasticities_are_gathered_at_the_best_point(full, tmp_path):
    _, ds = _sweep(
        tmp_path,
        "r.zarr",
        "reduce.over=[batch]",
        "sensitivity.metrics=[utps]",
        "sensitivity.wrt=[mem_bw,peak_flops]",
        "store.chunk_points=64",
    )
    ref = brute(full, ["batch"], "stps")
    assert ds.elasticity_utps.dims == ("tp", "context", "wrt")
    assert_matches(ds, ref)


def test_reducing_every_axis_gives_one_point(full, tmp_path):
    _, ds = _sweep(tmp_path, "r.zarr", "reduce.over=[batch,context,tp]")
    assert ds.utps.dims == () and bool(ds.reduce_found)
    assert_matches(
        ds, brute(full.drop_vars(["elasticity_utps", "wrt"]), ["batch", "context", "tp"], "stps")
    )


def test_two_devices_equal_one_and_never_split_the_reduced_axis(tmp_path):
    common = ["reduce.over=[batch]", "store.chunk_points=40"]
    one, a = _sweep(tmp_path, "one.zarr", *common, "devices=1")
    two, b = _sweep(tmp_path, "two.zarr", *common, "devices=all")
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    # batch (10) is the longest block axis and divides by 2, but it is reduced: context is split
    fn = BlockFunction(
        ("tp", "context", "batch"),
        (1, 4, 10),
        ("utps",),
        devices=jax.local_devices(),
        reduction=Reduction(("batch",), "stps"),
    )
    assert fn.sharding.n_devices == 2 and fn.sharding.axis == 1 == fn.sharding.out_axis
    assert two.traces <= 1 and one.traces <= 1


def test_resume_after_an_interruption_gives_the_same_store(tmp_path):
    common = ["reduce.over=[batch]", "store.chunk_points=30"]
    _, whole = _sweep(tmp_path, "whole.zarr", *common)

    def stop(block):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path, "resumed.zarr", *common, block_callback=stop)
    resumed, ds = _sweep(tmp_path, "resumed.zarr", *common)
    assert resumed.blocks_skipped >= 1 and resumed.blocks_computed >= 1
    xr.testing.assert_identical(whole.drop_attrs(), ds.drop_attrs())
    np.testing.assert_allclose(resumed.summary["best_stps"], float(ds.stps.max()))
    with pytest.raises(StoreError, match="reduce.over"):  # another reduction: refused
        _sweep(tmp_path, "resumed.zarr", "reduce.over=[context]", "store.chunk_points=30")


def test_one_compile_per_sweep(tmp_path, monkeypatch):
    # compile afresh: an earlier test here may have compiled the same block shape
    monkeypatch.setattr(blocks, "_CACHE", collections.OrderedDict())
    result, _ = _sweep(tmp_path, "r.zarr", "reduce.over=[batch]", "store.chunk_points=21")
    assert result.blocks_computed == 6 and result.traces == 1  # 3 x 4 kept, blocks of 1 x 2


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["reduce.over=[bogus]"],
            "reduce.over: bogus not a grid axis; grid axes: tp, context, batch",
        ),
        (["reduce.over=[batch,batch]"], "reduce.over: axis batch given more than once"),
        (["reduce.over=[batch]", "reduce.objective=speed"], "reduce.objective = 'speed'"),
        (["reduce.over=[batch]", "reduce.mode=best"], "reduce.mode = 'best'; allowed: max, min"),
        (
            ["reduce.over=[batch]", '++reduce.constraints.speed=[">=",1]'],
            "reduce.constraints: 'speed'",
        ),
        (["reduce.over=[batch]", '++reduce.constraints.utps=["=>",1]'], "reduce.constraints.utps"),
        (
            ["reduce.over=[batch]", '++reduce.constraints.ttft=["<=","2 GB"]'],
            "reduce.constraints.ttft",
        ),
        (["reduce.over=[batch]", "++store.chunks.batch=2"], "store.chunks.batch = 2"),
    ],
)
def test_bad_settings_are_refused_before_tracing(tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr(BlockFunction, "_fn", lambda *a: pytest.fail("traced"))
    with pytest.raises(
        (SweepError, ValueError), match=message.replace("[", r"\[").replace("(", r"\(")
    ):
        _sweep(tmp_path, "r.zarr", *overrides)
    assert not (tmp_path / "r.zarr").exists()


def test_constraint_values_take_the_units_of_their_output(full, tmp_path):
    _, a = _sweep(
        tmp_path, "a.zarr", "reduce.over=[batch]", '++reduce.constraints.ttft=["<=","500 ms"]'
    )
    _, b = _sweep(tmp_path, "b.zarr", "reduce.over=[batch]", '++reduce.constraints.ttft=["<=",0.5]')
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_chips_after_reducing_tp_come_from_the_best_tp_not_the_base_config(tmp_path):
    """Regression: after ``reduce.over=[tp]`` the store's best ``tp`` is per point, while the
    saved config still holds the base ``deployment.tp`` (1). ``chips`` must follow ``best_tp``."""
    from limits.analysis import metric, open_results

    _sweep(tmp_path, "r.zarr", "reduce.over=[tp]", "reduce.objective=utps")
    ds = open_results(tmp_path / "r.zarr")
    assert "best_tp" in ds and float(ds["best_tp"].max()) == 32.0
    chips = metric(ds, "chips").load()
    np.testing.assert_array_equal(chips.values, ds["best_tp"].values)  # NaN where none found
    found = ds["reduce_found"].values
    assert found.any() and (chips.values[found] == ds["best_tp"].values[found]).all()
    assert (chips.values[found] > 1).all()
