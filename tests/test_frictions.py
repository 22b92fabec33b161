"""Frictions a new user met (issue 15), each pinned: the run summary names its device, ..."""

import jax
import pytest

from limits.sweep.job import compose, run


def test_the_run_summary_names_the_device_and_where_to_go_next(tmp_path, capsys):
    cfg = compose(["grid=point", f"store.path={tmp_path / 's.zarr'}", "limits.progress=false"])
    run(cfg)
    lines = capsys.readouterr().out.splitlines()
    device = jax.devices()[0]
    assert f"1 device(s): {device.platform} ({device.device_kind})" in lines[0]
    assert lines[-1] == (
        f"  next: python -m limits.query best --store {tmp_path / 's.zarr'}; "
        f"python -m limits.explore {tmp_path / 's.zarr'}"
    )


def test_a_yaml_boolean_is_accepted_for_a_true_false_choice():
    """`model.tied_embeddings=true` reaches the config as a bool; it means "true"."""
    from limits.sweep.config import params_from_cfg

    p = params_from_cfg(compose(["grid=point", "model=llama3_8b", "model.tied_embeddings=true"]))
    assert p.model.tied_embeddings == "true"
    q = params_from_cfg(compose(["grid=point", "model=llama3_8b", "model.tied_embeddings=false"]))
    assert q.model.tied_embeddings == "false"


def test_a_context_beyond_the_trained_length_says_how_to_allow_it():
    import pytest

    import limits
    from limits.errors import ParameterError

    with pytest.raises(ParameterError, match=r"set model\.max_context=262144$"):
        limits.load_params("xpu_hbm3", "llama3_405b", context=262144.0)
    p = limits.load_params("xpu_hbm3", "llama3_405b", context=262144.0, max_context=262144.0)
    assert float(limits.evaluate(p)["utps"]) > 0.0


def _heatmap_dataset():
    import numpy as np
    import xarray as xr

    mem_bw = np.array([4.0, 16.0, 64.0]) * 2.0**40
    sync = np.array([0.5e-6, 2.0e-6, 8.0e-6])
    e = np.linspace(-1.0, 1.0, 9).reshape(3, 3, 1)
    return xr.Dataset(
        {"elasticity_utps": (("mem_bw", "sync_latency", "wrt"), e)},
        coords={
            "mem_bw": ("mem_bw", mem_bw, {"units": "B/s"}),
            "sync_latency": ("sync_latency", sync, {"units": "s"}),
            "wrt": np.array(["mem_bw"], dtype=object),
        },
    )


def test_the_elasticity_heatmap_uses_log_axes_in_user_units():
    from limits.plots.sensitivity import elasticity_heatmap

    ax = elasticity_heatmap(_heatmap_dataset(), "utps", "mem_bw", x="mem_bw", y="sync_latency")
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "mem_bw [TiB/s]" and ax.get_ylabel() == "sync_latency [us]"
    lo, hi = ax.get_xlim()
    assert 1.0 < lo < 4.0 and 64.0 < hi < 200.0  # TiB/s, not 4e12 B/s
    lo, hi = ax.get_ylim()
    assert 0.1 < lo < 0.5 and 8.0 < hi < 40.0  # microseconds


def test_tornado_labels_stay_inside_the_figure():
    from limits.plots.sensitivity import tornado

    values = {"sync_latency_intra_node": -0.9, "alltoall_per_moe_layer": 0.2, "mem_bw": 0.8}
    ax = tornado(values, "utps")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    FigureCanvasAgg(fig).draw()
    box = fig.bbox
    renderer = fig.canvas.get_renderer()
    for text in [*ax.get_yticklabels(), ax.title, ax.xaxis.label]:
        extent = text.get_window_extent(renderer)
        assert extent.x0 >= box.x0 - 0.5 and extent.x1 <= box.x1 + 0.5, text.get_text()


@pytest.mark.subprocess
def test_sweep_help_describes_the_command():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "limits.sweep", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("python -m limits.sweep: sweep the analytical limit model")
    assert "limits-sweep -sc install=bash" in run.stdout and "limits.query" in run.stdout
