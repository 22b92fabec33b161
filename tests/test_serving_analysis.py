"""SLO goodput (host-side and on-device reduction agree) and the serving Pareto frontier."""

import numpy as np
import pytest
import xarray as xr

from limits.analysis import open_results, serving_frontier, slo_goodput, slo_reduce
from limits.plots import serving_frontier_plot
from limits.sweep import compose, run

SERVING = [
    "output_tps_per_chip",
    "output_tps_per_user",
    "tpot",
    "ttft_at_load",
    "serving_feasible",
]
# the worked example of docs/serving.md, smaller: Llama-3.1-70B FP8 on H200, 4000 in / 500 out
GRID = [
    "hardware=h200",
    "model=llama3_70b",
    "grid=point",
    "++grid.tp=[1,2,4,8]",
    "++grid.batch=[1,4,16,64,256]",
    "++grid.replicas=[1,2]",
    "deployment.prompt_len=4000",
    "deployment.output_len=500",
    "deployment.context=4250",
    "model.n_params=0",
    "precision=float64",
    f"store.variables=[{','.join(SERVING)}]",
]
TTFT, TPOT = 0.3, 0.01


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving") / "full.zarr"
    run(compose([*GRID, f"store.path={path}"]), verbose=False)
    return open_results(path).load()


def test_slo_goodput_matches_brute_force_and_the_device_reduction(full, tmp_path):
    best = slo_goodput(full, TTFT, TPOT, over=["batch", "tp"])
    ok = (
        (full["ttft_at_load"] <= TTFT) & (full["tpot"] <= TPOT) & full["serving_feasible"]
    ).transpose("replicas", "tp", "batch")
    score = full["output_tps_per_chip"].transpose("replicas", "tp", "batch").where(ok)
    expected = score.max(["tp", "batch"]).values
    np.testing.assert_allclose(best["output_tps_per_chip"].values, expected)
    assert np.isfinite(expected).all()  # the SLOs are met somewhere

    result = run(compose([*GRID, *slo_reduce(TTFT, TPOT), f"store.path={tmp_path / 'r.zarr'}"]))
    reduced = xr.open_zarr(result.path).load()
    np.testing.assert_allclose(reduced["output_tps_per_chip"].values, expected)
    assert reduced["tpot"].max() <= TPOT and reduced["ttft_at_load"].max() <= TTFT


def test_serving_frontier_is_non_dominated_and_plots(full):
    df = serving_frontier(full)
    assert len(df) >= 2
    x, y = df["output_tps_per_user"].to_numpy(), df["output_tps_per_chip"].to_numpy()
    assert (np.diff(x) <= 0).all() and (np.diff(y) >= 0).all()  # sorted by x: y rises
    fig = serving_frontier_plot(full)
    ax = fig.axes[0]
    assert "user" in ax.get_xlabel() and "chip" in ax.get_ylabel()
    assert any(line.get_label() == "Pareto frontier" for line in ax.get_lines())
