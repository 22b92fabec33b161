"""Smoke test of benchmarks/bench_sweep.py on a tiny grid (no timing is asserted)."""

import importlib.util
from pathlib import Path

import pytest

from limits.model.outputs import DEFAULT_OUTPUTS

pytestmark = [pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sweep.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_functions_run_on_a_tiny_grid(bench, tmp_path):
    tiny = bench.grid_overrides(n_sync=3, n_batch=4, n_context=5, tps=(8, 16))
    a = bench.model_rate(tiny, repeats=2)
    assert a["variables"] == len(DEFAULT_OUTPUTS) and a["dtype"] == "float32"
    assert a["block"] == (2, 4, 5, 3) and a["points_per_s"] > 0 and a["xla_write_pps"] > 0

    bc = bench.sweep_vs_baseline(tiny, tmp_path, repeats=1)
    assert bc["points"] == 2 * 4 * 5 * 3 and bc["variables"] == len(DEFAULT_OUTPUTS)
    assert bc["sweep_pps"] > 0 and bc["write_pps"] > 0 and bc["bytes"] > 0
    assert bc["codec_pps"] > 0

    rows = bench.codec_table(tiny, tmp_path, repeats=1, codecs=("none", "lz4"))
    assert [r["codec"] for r in rows] == ["none", "lz4"]
    # uncompressed chunks hold at least 4 B per point for each float32 variable
    assert rows[0]["bytes"] >= 4 * bc["points"] * (len(DEFAULT_OUTPUTS) - 2)

    d = bench.reduced_rate(tiny, tmp_path, repeats=1)
    assert d["points"] == bc["points"] and d["sweep_pps"] > 0 and d["bytes"] > 0

    m = bench.peak_memory([*tiny, "store.variables=[utps,bound]"], tmp_path / "rss.zarr")
    assert m["points"] == bc["points"] and m["peak_rss_B"] > 50e6
    assert list(tmp_path.iterdir()) == []  # every store it wrote is gone


def test_serving_benchmark_runs_on_a_tiny_grid(bench, tmp_path):
    e = bench.serving_vs_decode(tmp_path, repeats=1, n_sync=2, n_batch=3, n_other=4, tps=(8, 16))
    assert e["points"] == 2 * 3 * 4 * 2
    assert min(e[k] for k in e if k.endswith("_pps")) > 0


@pytest.mark.subprocess
@pytest.mark.slow
def test_startup_baselines_run(bench, tmp_path):
    st = bench.startup(tmp_path, repeats=1)
    assert 0 < st["import_jax_s"] and 0 < st["query_s"] and 0 < st["help_s"] and 0 < st["best_s"]
    assert st["ratio"] == pytest.approx(st["query_s"] / st["import_jax_s"])
    assert st["best_ratio"] == pytest.approx(st["best_s"] / st["import_jax_s"])
    assert list(tmp_path.iterdir()) == []  # the stores and the compilation cache are gone
