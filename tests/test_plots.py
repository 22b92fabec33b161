"""Each plot runs on a model-evaluated grid, draws the expected artists and labels with units."""

import numpy as np
import pytest
from helpers_datasets import model_dataset, toy_pareto
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from limits import plots
from limits.analysis import pareto_frontier
from limits.model.outputs import DEFAULT_OUTPUTS


@pytest.fixture(scope="module")
def grid():
    return model_dataset(
        tp=[1.0, 8.0], batch=[1.0, 16.0, 256.0, 2048.0], context=[4096.0, 131072.0]
    )


def _render(fig):
    assert isinstance(fig, Figure)
    FigureCanvasAgg(fig).draw()  # renders with Agg without error
    return fig.axes[0]


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_roofline_roof_points_and_fallback(grid):
    ax = _render(plots.roofline(grid))
    roof, ridge = ax.lines
    x, y = roof.get_data()
    np.testing.assert_allclose(y, np.minimum(2.25e15, x * 4 * 2.0**40))  # xPU-HBM3 per chip
    assert ridge.get_xdata()[0] == pytest.approx(2.25e15 / (4 * 2.0**40))
    feasible = grid["feasible"].values
    assert sum(len(c.get_offsets()) for c in ax.collections) == feasible.sum()
    assert _legend(ax)[0] == "memory-bound"
    assert ax.get_xlabel() == "arithmetic intensity [FLOP/B]"
    assert "[FLOP/s]" in ax.get_ylabel()
    # from the default outputs only (no FLOPs or bytes stored) the points are the same:
    # intensity = t_compute peak / (t_mem bw), attained = t_compute peak / step_time
    minimal = grid[list(DEFAULT_OUTPUTS)]
    fallback = _render(plots.roofline(minimal))
    np.testing.assert_allclose(
        fallback.collections[0].get_offsets(), ax.collections[0].get_offsets(), rtol=1e-9
    )
    attained = (grid["flops_per_step"] / (grid["step_time"] * grid["tp"])).values[feasible]
    np.testing.assert_allclose(
        np.sort(ax.collections[0].get_offsets()[:, 1]), np.sort(attained), rtol=1e-9
    )
    with pytest.raises(ValueError, match="arithmetic_intensity"):
        plots.roofline(grid[["stps"]])


def test_frontier_plot_colours_by_chips_and_hardware(grid):
    ax = _render(plots.frontier_plot(grid, color_by="chips"))
    points = ax.collections[0].get_offsets()
    assert len(points) == grid["feasible"].values.sum()
    colorbar_label = ax.figure.axes[1].get_ylabel()
    assert colorbar_label == "chips in all replicas [1]"
    (front,) = ax.lines
    assert len(front.get_xdata()) == len(pareto_frontier(grid))
    assert ax.get_xlabel() == "tokens per second per user [tok/s/user]"
    multi = toy_pareto().expand_dims(hardware=np.array(["xpu_hbm3", "xpu_sram"], dtype=object))
    ax = _render(plots.frontier_plot(multi, color_by="hardware"))
    assert _legend(ax) == ["hardware=xpu_hbm3", "hardware=xpu_sram"]
    assert len(ax.collections) == 2


def test_bound_map_categories_and_legend(grid):
    one = grid.sel(tp=8.0)
    ax = _render(plots.bound_map(one, "batch", "context"))
    (image,) = ax.images
    codes = np.asarray(image.get_array())
    assert codes.shape == (2, 4)  # rows: context, columns: batch
    # 2 Ki users at 128 Ki context need ~17 TB of KV: capacity (code 3); batch 1: memory (0)
    assert codes[1, 3] == 3 and codes[0, 0] == 0
    assert _legend(ax) == ["memory", "capacity"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "16", "256", "2 Ki"]
    assert ax.get_ylabel().endswith("[tok]")
    with pytest.raises(ValueError, match="tp"):
        plots.bound_map(grid, "batch", "context")


def test_memory_breakdown_lines(grid):
    ax = _render(plots.memory_breakdown(grid.sel(tp=8.0), x="context", hue="batch"))
    labels = _legend(ax)
    assert labels[:4] == [
        "KV cache, batch=1",
        "KV cache, batch=16",
        "KV cache, batch=256",
        "KV cache, batch=2 Ki",
    ]
    assert labels[4:] == ["weights", "available"]  # constant over batch: one line each
    kv_line = ax.lines[1]  # batch 16: 16 users x context x 65,536 B/token (Llama3-8B, 1 B)
    np.testing.assert_allclose(kv_line.get_ydata(), 16 * np.array([4096, 131072]) * 65536.0)
    assert ax.get_ylabel() == "memory per replica [B]"


def test_time_breakdown_stacks_to_step_time(grid):
    one = grid.sel(tp=8.0, context=4096.0)
    ax = _render(plots.time_breakdown(one, "batch"))
    n = one.sizes["batch"]
    stacked = [p for p in ax.patches if p.get_fill()]
    outlines = [p for p in ax.patches if not p.get_fill()]
    assert len(outlines) == n and len(stacked) == n * 5  # mem, compute, sync, overhead, draft
    heights = np.zeros(n)
    for i, patch in enumerate(stacked):
        heights[i % n] += patch.get_height()
    np.testing.assert_allclose(heights, one["step_time"].values, rtol=1e-12)
    assert ax.get_ylabel() == "time per decode step [s]"
    assert "sync (t_sync)" in _legend(ax)


def test_roofline_on_multirun_slice_reads_that_jobs_provenance():
    from limits.analysis import combine_jobs

    jobs = [
        model_dataset(hw, "llama3_8b", outputs=tuple(DEFAULT_OUTPUTS), batch=[1.0, 64.0])
        for hw in ("xpu_hbm3", "xpu_hbm4")
    ]
    ds = combine_jobs(jobs)
    assert "config" not in ds.attrs  # the jobs' configs differ: dropped when combined
    ax = _render(plots.roofline(ds.sel(hardware="xpu_hbm4", model="llama3_8b")))
    # the xPU-HBM4 job recorded 18 TiB/s and 2.25 PFLOP/s -> ridge point 2.25e15 / (18 x 2^40)
    assert ax.lines[1].get_xdata()[0] == pytest.approx(2.25e15 / (18 * 2.0**40))
    with pytest.raises(ValueError, match="hardware"):
        plots.roofline(ds.sel(model="llama3_8b"))  # two chips: pick one
