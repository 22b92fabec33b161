"""Pareto frontiers, constrained best points and MLPerf scenarios on hand-checked toys, plus
brute-force and published-figure checks on model-evaluated grids."""

import itertools

import numpy as np
import pytest
import xarray as xr
from helpers_datasets import model_dataset, toy_batching, toy_pareto, write_store

from limits.analysis import (
    best_config,
    metric,
    non_dominated,
    offline,
    pareto_frontier,
    pareto_mask,
    server,
    single_stream,
)

# toy_pareto points (utps, stps); (8, 95) at a=3, b=20 is infeasible. By hand, the feasible
# frontier is every point except (5, 50) and (12, 10):
TOY_FRONT = {(40, 20), (30, 60), (25, 65), (20, 70), (15, 80), (10, 90)}


def test_pareto_frontier_toy():
    df = pareto_frontier(toy_pareto())
    assert set(zip(df["utps"], df["stps"])) == TOY_FRONT
    assert list(df["utps"]) == sorted(df["utps"], reverse=True)
    row = df[df["utps"] == 25].iloc[0]
    assert (row["a"], row["b"]) == (2.0, 20.0)
    assert df.attrs["units"]["stps"] == "tok/s" and df.attrs["units"]["b"] == "s"


def test_pareto_frontier_without_mask_includes_infeasible_point():
    df = pareto_frontier(toy_pareto(), mask=None)
    # (8, 95) now beats (10, 90)? No: 10 > 8, so both stay; it dominates nothing else.
    assert set(zip(df["utps"], df["stps"])) == TOY_FRONT | {(8, 95)}


def test_pareto_frontier_per_group():
    df = pareto_frontier(toy_pareto(), over="b")  # one frontier per value of a
    got = {a: set(zip(g["utps"], g["stps"])) for a, g in df.groupby("a")}
    assert got == {1.0: {(10, 90), (20, 70), (30, 60)}, 2.0: {(15, 80), (25, 65)}, 3.0: {(40, 20)}}


def test_pareto_per_dollar_and_minimised_cost_agree():
    toy = toy_pareto()
    per_usd = pareto_frontier(toy, y="tokens_per_usd")  # derived: 1e6 / cost_per_mtok
    neg_cost = pareto_frontier(toy, y="-cost_per_mtok")
    # cost_per_mtok is 1e6 / (3600 stps): per dollar, the frontier is the stps frontier
    assert set(zip(per_usd["utps"], per_usd["tokens_per_usd"] / 3600.0)) == TOY_FRONT
    assert per_usd["utps"].tolist() == neg_cost["utps"].tolist()


def test_non_dominated_ties_and_nan():
    x = np.array([5.0, 5.0, 4.0, 5.0, np.nan])
    y = np.array([3.0, 2.0, 3.0, 3.0, 9.0])
    front = non_dominated(x, y)
    assert front.sum() == 1 and front[[0, 3]].sum() == 1  # one of the two identical points


def test_pareto_mask_matches_brute_force_on_model_grid():
    ds = model_dataset(
        tp=[1.0, 2.0, 8.0],
        batch=[1.0, 8.0, 64.0, 512.0],
        context=[4096.0, 32768.0],
        outputs=("utps", "stps", "feasible"),
    )
    front = pareto_mask(ds).values
    u, s, ok = (ds[v].values.ravel() for v in ("utps", "stps", "feasible"))
    for i in range(u.size):
        dominated = any(
            ok[j] and u[j] >= u[i] and s[j] >= s[i] and (u[j], s[j]) != (u[i], s[i])
            for j in range(u.size)
        )
        assert front.ravel()[i] == (bool(ok[i]) and not dominated)


def test_best_config_toy():
    best = best_config(toy_pareto(), "stps", {"utps": (">=", 12), "chips": ("<=", 64)})
    # by hand: admissible points (20,70) (30,60) (15,80) (25,65) (40,20) -> stps 80 at a=2,b=10
    assert (float(best["a"]), float(best["b"]), float(best["stps"])) == (2.0, 10.0, 80.0)
    assert bool(best["satisfied"])
    # ignoring feasibility and chips, the infeasible (8, 95) wins with utps >= 5
    best = best_config(toy_pareto(), "stps", {"utps": (">=", 5)}, feasible_only=False)
    assert float(best["stps"]) == 95.0


def test_best_config_per_group_and_unsatisfiable_group():
    best = best_config(toy_pareto(), "stps", {"utps": (">", 25)}, over="b")
    # a=1: only (30, 60); a=2: none (25 is not > 25); a=3: (40, 20)
    assert best["stps"].values.tolist()[0] == 60.0 and best["stps"].values[2] == 20.0
    assert np.isnan(best["stps"].values[1])
    assert best["satisfied"].values.tolist() == [True, False, True]
    assert best["b"].values[0] == 30.0


def test_best_config_minimize_and_errors():
    best = best_config(toy_pareto(), minimize="cost_per_mtok")
    assert float(best["stps"]) == 90.0  # cheapest per token = most tokens per second
    with pytest.raises(KeyError, match="'nonsense'"):
        best_config(toy_pareto(), "nonsense")
    with pytest.raises(KeyError, match="'latency'"):
        best_config(toy_pareto(), "stps", {"latency": ("<=", 1)})
    with pytest.raises(ValueError, match="op one of"):
        best_config(toy_pareto(), "stps", {"utps": ("=>", 1)})
    with pytest.raises(ValueError, match="no point satisfies"):
        best_config(toy_pareto(), "stps", {"utps": (">=", 1000)})


def test_best_config_matches_brute_force_on_model_grid():
    ds = model_dataset(tp=[1.0, 2.0, 8.0], batch=[1.0, 8.0, 64.0, 512.0], context=[4096.0, 32768.0])
    best = best_config(ds, "stps", {"utps": (">=", 150.0), "tp": ("<=", 2)})
    brute = max(
        (float(ds["stps"][i, j, k]), (i, j, k))
        for i, j, k in itertools.product(range(3), range(4), range(2))
        if ds["feasible"][i, j, k] and ds["utps"][i, j, k] >= 150 and ds["tp"][i] <= 2
    )
    i, j, k = brute[1]
    assert float(best["stps"]) == brute[0]
    assert (float(best["tp"]), float(best["batch"]), float(best["context"])) == (
        ds["tp"][i],
        ds["batch"][j],
        ds["context"][k],
    )


def _serving_toy():
    ds = toy_batching()
    ds["step_time"] = (ds["t_mem"] + ds["t_sync"]).assign_attrs(units="s")  # memory-bound
    ds["ttft"] = (0.125 * ds["batch"] * xr.ones_like(ds["stps"])).assign_attrs(units="s")
    return ds


def test_server_and_offline_toy():
    ds = _serving_toy()
    # step_time = 1.5 + 0.1 batch <= 2.5 -> batch <= 8; ttft = batch / 8 <= 2 -> batch <= 16
    srv = server(ds, ttft_max=2.0, tbt_max="2.5 s")
    assert srv["batch"].values.tolist() == [8.0, 8.0]
    assert srv["stps"].values.tolist() == [38.0, 25.0]
    # ttft now binds: batch <= 4
    assert server(ds, "500 ms", 10.0)["batch"].values.tolist() == [4.0, 4.0]
    off = offline(ds)  # largest feasible stps; batch 32 does not fit at context 8192
    assert off["batch"].values.tolist() == [32.0, 16.0]
    assert off["stps"].values.tolist() == [40.0, 30.0]
    assert float(offline(ds, over=None)["stps"]) == 40.0


def test_tbt_derived_from_step_time():
    ds = _serving_toy()
    xr.testing.assert_identical(
        metric(ds, "tbt").drop_attrs(), ds["step_time"].drop_attrs().rename("tbt")
    )


def test_single_stream_reproduces_liminal_golden_point():
    # docs/references.md s.1: Llama3-405B, batch 1, xPU-HBM3, TP32: 290 UTPS at 4096, 271 at 131072
    ds = model_dataset(
        "xpu_hbm3",
        "llama3_405b",
        fixed={"tp": 32.0},
        batch=[1.0, 16.0],
        context=[4096.0, 131072.0],
        outputs=("utps", "feasible"),
    )
    one = single_stream(ds)
    assert "batch" not in one.dims
    assert np.round(one["utps"].values).tolist() == [290.0, 271.0]
    with pytest.raises(ValueError, match="batch = 1"):
        single_stream(ds.sel(batch=[16.0]))
    with pytest.raises(KeyError, match="batch"):
        single_stream(toy_pareto())


def test_chips_derived_from_tp_when_not_stored():
    ds = model_dataset(tp=[1.0, 2.0, 8.0], batch=[1.0, 64.0], outputs=("utps", "stps", "feasible"))
    best = best_config(ds, "stps", {"chips": ("<=", 2)})
    assert float(best["tp"]) == 2.0 and float(best["batch"]) == 64.0
    assert metric(ds, "chips").attrs["units"] == "1"


@pytest.mark.parametrize("over", [None, ["b", "c"], ["c"]])
def test_blocked_frontier_equals_the_whole_array_rule(over):
    """Block by block (a few points at a time) gives the frontier non_dominated gives on the
    whole array: ties (one kept), NaN and masked points, per group."""
    rng = np.random.default_rng(7)
    shape = (3, 5, 7)
    x = rng.integers(0, 6, shape).astype(float)  # few values: many ties
    y = rng.integers(0, 6, shape).astype(float)
    x[0, 0, 0] = np.nan
    ds = xr.Dataset(
        {
            "utps": (("a", "b", "c"), x),
            "stps": (("a", "b", "c"), y),
            "feasible": (("a", "b", "c"), rng.random(shape) > 0.2),
        },
        coords={d: np.arange(n, dtype=float) for d, n in zip("abc", shape)},
    )
    whole = pareto_mask(ds, over=over, block_points=10**9)
    dims = list(ds.dims) if over is None else over
    groups = [d for d in ds.dims if d not in dims]
    xs = ds["utps"].where(ds["feasible"]).transpose(*groups, *dims).values
    ys = ds["stps"].where(ds["feasible"]).transpose(*groups, *dims).values
    gshape = xs.shape[: len(groups)]
    expected = non_dominated(xs.reshape(gshape + (-1,)), ys.reshape(gshape + (-1,)))
    got = whole.transpose(*groups, *dims).values.reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
    for block in (1, 4, 13):
        np.testing.assert_array_equal(pareto_mask(ds, over=over, block_points=block), whole)
        df = pareto_frontier(ds, over=over, block_points=block)
        assert len(df) == int(whole.sum())


@pytest.mark.slow
def test_frontier_memory_is_bounded_by_the_block_size():
    """Peak memory of pareto_frontier grows with block_points, not with the store's size (a
    1e8-point store needed 6.8 GB before): 2e6 lazily stored points read in blocks of 2**14
    need under 16 MB, 1/20 of reading them whole."""
    import tracemalloc

    rng = np.random.default_rng(0)
    shape = (2000, 1000)
    ds = xr.Dataset(
        {v: (("a", "b"), rng.random(shape, dtype=np.float32)) for v in ("utps", "stps")},
        coords={"a": np.arange(2000.0), "b": np.arange(1000.0)},
    ).chunk({"a": 64})
    peaks, fronts = [], []
    for block in (1 << 14, 1 << 30):
        tracemalloc.start()
        fronts.append(pareto_frontier(ds, block_points=block))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert fronts[0].equals(fronts[1]) and 0 < len(fronts[0]) < 100
    assert peaks[0] < 16e6 and peaks[0] < peaks[1] / 20, peaks


def test_answers_are_computed_numbers_that_print_with_units(tmp_path):
    """best_config, server, offline and batching_advisor answer with numbers (no dask), and
    table()/pareto_frontier print each column's units (issue 15, item 1)."""
    import dask.array

    from limits.analysis import Table, batching_advisor, open_store, pareto_frontier, table

    grid = model_dataset(tp=[1.0, 8.0], batch=[1.0, 16.0, 256.0])
    lazy = open_store(write_store(grid, tmp_path / "s.zarr"))
    assert isinstance(lazy["stps"].data, dask.array.Array)
    answers = [
        best_config(lazy, "stps", {"utps": (">=", 10)}),
        server(lazy, "10 s", "1 s"),
        offline(lazy),
        batching_advisor(lazy),
    ]
    for ans in answers:
        assert all(isinstance(v.data, np.ndarray) for v in ans.variables.values())
    shown = repr(table(answers[0]))
    assert "stps [tok/s]" in shown and "utps [tok/s/user]" in shown
    assert len(table(answers[0])) == 1
    front = pareto_frontier(lazy)
    assert isinstance(front, Table) and "stps [tok/s]" in repr(front)
    assert "utps [tok/s/user]" in front._repr_html_()
    assert list(front.columns)[-2:] == ["utps", "stps"]  # names unchanged: only the print


def test_table_prints_small_si_values_and_the_wall_by_name(tmp_path):
    """table() of a best configuration: 5e-07 s is not rounded to 0.0 and the binding wall
    reads as its name, not its int8 code (found running the docs' examples)."""
    from limits.analysis import open_store, table

    grid = model_dataset(tp=[1.0, 8.0], batch=[1.0, 16.0], sync_latency=[5e-7])
    ds = open_store(write_store(grid, tmp_path / "s.zarr"))
    shown = repr(table(best_config(ds, "stps", {"utps": (">=", 1)})))
    assert "5e-07" in shown
    assert any(f" {wall}" in shown for wall in ("memory", "compute", "sync", "capacity"))


def test_stps_per_chip_is_derived_from_chips():
    ds = model_dataset(tp=[1.0, 8.0], batch=[1.0, 16.0])
    per_chip = metric(ds, "stps_per_chip")
    np.testing.assert_allclose(per_chip.values, (ds["stps"] / ds["tp"]).values)
    assert per_chip.attrs["units"] == "tok/s/chip"
