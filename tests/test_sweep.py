"""The sweep job: config composition, the issue's acceptance command, clean user errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from omegaconf import OmegaConf

import limits
from limits.presets import available
from limits.sweep import SweepError, compose, run, run_overrides
from limits.sweep.config import params_from_cfg

REPO = Path(__file__).resolve().parents[1]
ACCEPTANCE = [
    "hardware=xpu_hbm3",
    "model=llama3_405b",
    "grid=point",
    "++grid.tp=[32]",
    "++grid.context=[4096,131072]",
    "++grid.batch=[1]",
    "++grid.weight_bytes=[1]",
    "++grid.kv_bytes=[1]",
]


@pytest.mark.parametrize("group", ["hardware", "model", "grid"])
def test_every_preset_composes_and_validates(group):
    from limits.sweep.grid import parse_grid, validate_grid

    names = available(group)
    assert names, group
    for name in names:
        # model presets are checked on their own point: the default grid's tp axis (8..64)
        # cannot split the 40 heads of llama2_13b or the 48 of mixtral_8x22b
        extra = ["grid=point"] if group == "model" else []
        cfg = compose([f"{group}={name}", *extra])
        base = params_from_cfg(cfg)
        validate_grid(base, parse_grid(OmegaConf.to_container(cfg.grid)))


def test_default_grid_on_a_model_it_cannot_split_names_the_parameters(tmp_path):
    cfg = compose(["model=llama2_13b", f"store.path={tmp_path / 's.zarr'}"])
    with pytest.raises(
        limits.ParameterError, match=r"deployment\.tp = 16, 32, 64 must divide model\.n_heads = 40"
    ):
        run(cfg, verbose=False)
    assert not (tmp_path / "s.zarr").exists()


def test_default_config_is_the_paper_system_over_four_axes():
    cfg = compose([])
    assert cfg.hardware.name == "xpu_hbm3" and cfg.model.name == "llama3_405b"
    assert list(cfg.grid) == ["tp", "context", "batch", "sync_latency"]
    assert cfg.precision == "float32" and list(cfg.sensitivity.metrics) == []


def test_units_in_overrides_and_unknown_keys():
    cfg = compose(["hardware.mem_bw=8TiB/s", "deployment.context='4 ktok'"])
    p = params_from_cfg(cfg)
    assert p.hardware.mem_bw == 8 * 2.0**40 and p.deployment.context == 4000
    with pytest.raises(Exception, match="not_a_key"):
        compose(["hardware.not_a_key=1"])
    with pytest.raises(Exception, match="nope"):
        compose(["hardware=nope"])


def test_acceptance_point_reproduces_paper_utps(tmp_path):
    path = run_overrides(ACCEPTANCE + [f"store.path={tmp_path / 's.zarr'}"], verbose=False)
    ds = xr.open_zarr(path)
    assert ds.utps.dims == ("tp", "context", "batch", "weight_bytes", "kv_bytes")
    utps = ds.utps.sel(tp=32, batch=1, weight_bytes=1, kv_bytes=1).values
    assert [round(float(u)) for u in utps] == [290, 271]


@pytest.mark.subprocess
def test_acceptance_command_in_a_real_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-m", "limits.sweep", *ACCEPTANCE, f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(tmp_path / "sweep.zarr") in proc.stdout and "best utps" in proc.stdout
    ds = xr.open_zarr(tmp_path / "sweep.zarr")
    assert [round(float(u)) for u in ds.utps.values.ravel()] == [290, 271]
    assert (
        ds.attrs["overrides"] == ACCEPTANCE + [f"hydra.run.dir={tmp_path}"]
        or ds.attrs["overrides"] == ACCEPTANCE
    )


@pytest.mark.subprocess
def test_console_script_finds_the_config(tmp_path):
    """``limits-sweep`` (the installed console script) runs like ``python -m limits.sweep``."""
    script = Path(sys.executable).parent / "limits-sweep"
    if not script.exists():
        pytest.skip("the package is not installed with its console script in this environment")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            str(script),
            "grid=point",
            "++grid.tp=[32]",
            "deployment.batch=1",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(tmp_path / "sweep.zarr") in proc.stdout
    assert round(float(xr.open_zarr(tmp_path / "sweep.zarr").utps.values[0])) == 290


@pytest.mark.subprocess
def test_user_error_is_one_line_and_nonzero_exit(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "grid=point",
            "++grid.mem_bw=[4TiB,8TiB/s]",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "error" in l]
    assert len(lines) == 1 and "grid.mem_bw" in lines[0] and "B/s" in lines[0]
    assert not (tmp_path / "sweep.zarr").exists()


# the catalogue of refused inputs (unknown axes, empty axes, bad units, size limits...) and
# their messages: tests/test_bad_inputs.py


def test_store_path_is_required_outside_hydra():
    with pytest.raises(SweepError, match="store.path"):
        run(compose(["grid=point"]), verbose=False)


def test_default_study_summary(tmp_path, capsys):
    result = run(compose([f"store.path={tmp_path / 's.zarr'}"]))
    out = capsys.readouterr().out
    assert "1,024 points" in out and "best utps" in out and "tok/s/user" in out
    assert "feasible:" in out and str(tmp_path / "s.zarr") in out
    ds = xr.open_zarr(result.path)
    best = float(ds.utps.where(ds.feasible).max())
    np.testing.assert_allclose(result.summary["best_utps"], best, rtol=1e-6)
    np.testing.assert_allclose(result.summary["fraction_feasible"], float(ds.feasible.mean()))


def test_one_compile_per_sweep_and_none_for_a_repeat(tmp_path):
    overrides = [
        "grid=point",
        "++grid.tp=[8,16,32]",
        "++grid.batch=[1,2,3,4,5,6,7]",
        "store.chunk_points=4",
    ]  # 3 x 7 grid, 3 x 2 blocks of 1 x 4 (padded)
    first = run(compose(overrides + [f"store.path={tmp_path / 'a.zarr'}"]), verbose=False)
    assert first.blocks_computed == 6 and first.traces == 1
    second = run(compose(overrides + [f"store.path={tmp_path / 'b.zarr'}"]), verbose=False)
    assert second.traces == 0


def test_hydra_mode_is_never_set_by_the_config_tree():
    """``job._compose_once`` answers Hydra's ``get_mode`` (None) without composing: this holds
    only while no config of this tree sets ``hydra.mode``, which Hydra itself confirms here."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    from limits.sweep.job import CONF_DIR

    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2("t", create_config_search_path(str(CONF_DIR)))
    try:
        for overrides in ([], ["grid=point"], ["hardware=h200", "model=llama3_70b"]):
            assert hydra.get_mode(config_name="config", overrides=list(overrides)) is None
    finally:
        GlobalHydra.instance().clear()


def test_compose_once_skips_only_the_composition_hydra_needs_no_answer_from(monkeypatch):
    from hydra._internal.hydra import Hydra

    from limits.sweep.job import _compose_once

    calls = []
    monkeypatch.setattr(Hydra, "compose_config", lambda self, **kw: calls.append(kw) or None)
    monkeypatch.setattr(sys, "argv", ["limits.sweep", "grid=point"])
    original = Hydra.get_mode
    hydra = object.__new__(Hydra)  # compose_config is stubbed: no state needed
    with _compose_once():
        assert hydra.get_mode("config", ["grid=point"]) is None
        assert calls == []  # answered without composing
        for config_name, overrides in (
            ("config", ["hydra.mode=MULTIRUN"]),
            ("other", []),
            ("config", ["hydra/launcher=basic"]),
        ):
            hydra.get_mode(config_name, overrides)  # Hydra's own answer: it composes
        monkeypatch.setattr(sys, "argv", ["limits.sweep", "--config-dir", "/elsewhere"])
        hydra.get_mode("config", [])
    assert len(calls) == 4
    assert Hydra.get_mode is original  # restored


@pytest.mark.subprocess
def test_tab_completion_offers_presets_and_grid_axes():
    """docs/sweep.md: `limits-sweep` (the console script) completes presets and grid keys
    through Hydra's shell completion."""
    import shutil

    script = Path(sys.executable).with_name("limits-sweep")
    exe = str(script) if script.exists() else shutil.which("limits-sweep")
    assert exe, "the console script limits-sweep is not installed (pip install -e .)"

    def complete(line: str) -> list[str]:
        env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
        proc = subprocess.run(
            [exe, "-sc", "query=bash"], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert {"hardware=h100", "hardware=h200"} <= set(complete("limits-sweep hardware=h"))
    assert any(c.startswith("grid.tp") for c in complete("limits-sweep grid.t"))
