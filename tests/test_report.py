"""The LIMINAL report generator (limits.studies.liminal) on a tiny study store."""

import re

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("matplotlib")

from limits.analysis import open_results
from limits.errors import StoreError
from limits.studies import liminal as report
from limits.studies.common import at, at_known

pytestmark = [pytest.mark.slow]

HARDWARE = ["xpu_hbm3", "xpu_3d_dram"]
MODELS = ["llama3_405b", "deepseek_v3"]
GRID = [
    "grid.tp=[8,32,128]",
    "grid.context={start:4096,stop:131072,num:2,scale:log}",
    "grid.batch=[1,64]",
    "grid.sync_latency=[1us,2.25us]",
]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The liminal recipe on 2 parts x 2 models x 24 points, and its report."""
    root = tmp_path_factory.mktemp("study")
    store = report.run_study(
        "liminal", root / "multirun", overrides=GRID, jobs={"hardware": HARDWARE, "model": MODELS}
    )
    out = root / "docs" / "report.md"
    found = report.write_report(root / "multirun", out)
    return store, out, found


def test_study_store_has_hardware_and_model_dims(study):
    store, _, _ = study
    ds = open_results(store.parent)
    assert list(ds["utps"].dims[:2]) == ["hardware", "model"]
    assert sorted(ds["hardware"].values.tolist()) == sorted(HARDWARE)
    assert sorted(ds["model"].values.tolist()) == sorted(MODELS)
    assert "compute_utilization" in ds and "weight_bytes_read" in ds


def test_one_section_per_published_finding_and_figures_exist(study):
    _, out, found = study
    text = out.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert len(found) == len(report.FINDINGS)
    for f in found:
        assert headings.count(f.title) == 1, f.title
        assert f.verdict in ("agrees", "partly", "differs", "not covered")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images, "the report shows no figure"
    for rel in images:
        path = out.parent / rel
        assert path.is_file() and path.stat().st_size > 1000, rel


def test_findings_are_covered_by_the_tiny_study(study):
    _, _, found = study
    by_key = {f.key: f for f in found}
    for key in (
        "golden",
        "tp128",
        "hbm3_long_context",
        "bandwidth",
        "sync",
        "utilization",
        "capacity",
        "extreme_utps",
        "moe",
    ):
        assert by_key[key].verdict != "not covered", (key, by_key[key].ours)


def test_golden_point_is_read_from_the_store_and_matches_the_paper(study):
    store, _, found = study
    ds = open_results(store)
    golden = {f.key: f for f in found}["golden"]
    for ctx, published in ((4096, 290), (131072, 271)):
        direct = float(
            ds["utps"]
            .sel(hardware="xpu_hbm3", model="llama3_405b")
            .sel(tp=32.0, batch=1.0, context=float(ctx), sync_latency=2.25e-6, method="nearest")
        )
        assert golden.numbers[f"utps_{ctx // 1024}K"] == pytest.approx(direct, rel=1e-12)
        assert round(direct) == published
    assert golden.verdict == "agrees"


def test_long_context_maximum_matches_a_direct_computation(study):
    store, out, found = study
    ds = open_results(store).load()
    f = {f.key: f for f in found}["hbm3_long_context"]
    sub = ds.sel(hardware="xpu_hbm3", model="llama3_405b", context=131072.0)
    utps = sub["utps"].values
    feasible = sub["feasible"].values.astype(bool)
    sync = sub["sync_latency"].values
    at_paper = np.isclose(sync, 2.25e-6)
    direct = utps[..., at_paper][feasible[..., at_paper]].max()
    assert f.numbers["max_utps"] == pytest.approx(float(direct), rel=1e-6)
    assert f.numbers["max_utps_any_sync"] == pytest.approx(float(utps[feasible].max()), rel=1e-6)
    assert f"{direct:.0f} UTPS" in out.read_text()


def test_capacity_finding_reports_stored_max_batch(study):
    store, _, found = study
    ds = open_results(store).load()
    f = {f.key: f for f in found}["capacity"]
    direct = float(
        ds["max_batch"].sel(hardware="xpu_hbm3", model="llama3_405b", tp=8.0, context=4096.0).max()
    )
    assert f.numbers["xpu_hbm3_max_batch_4K"] == direct
    # the 3D-DRAM part (36 GiB per chip) cannot hold 405 GB of weights on 8 chips
    assert f.numbers["xpu_3d_dram_max_batch_4K"] == 0


def test_a_store_without_the_study_dims_reports_not_covered(study):
    store, _, _ = study
    one_job = open_results(store).sel(hardware="xpu_3d_dram", model="deepseek_v3")
    found = report.findings(one_job)
    assert len(found) == len(report.FINDINGS)
    assert {f.key: f for f in found}["golden"].verdict == "not covered"


def test_cli_writes_the_report(study, tmp_path, capsys):
    store, _, _ = study
    out = tmp_path / "r.md"
    report.main([str(store.parent), "--out", str(out), "--figures", str(tmp_path / "figs")])
    assert out.is_file() and (tmp_path / "figs" / "frontier.png").is_file()
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "recipe, n_jobs, n_points",
    [("liminal", 15, 3 * 8 * 7 * 4), ("liminal_small", 6, 3 * 2 * 3 * 2)],
)
def test_study_recipes_compose_and_every_job_grid_is_valid(recipe, n_jobs, n_points):
    """Every (hardware, model) job of the recipes validates (tp divides or is a multiple of
    the heads, context within max_context) without running anything; FP8 weights and KV."""
    import itertools

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from limits.sweep import CONF_DIR
    from limits.sweep.config import params_from_cfg
    from limits.sweep.grid import parse_grid, validate_grid

    def composed(overrides, hydra_cfg=False):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(report.SWEEPS_DIR), version_base="1.3"):
            return compose(
                recipe,
                [f"hydra.searchpath=[file://{CONF_DIR}]", *overrides],
                return_hydra_config=hydra_cfg,
            )

    params = composed([], True).hydra.sweeper.params
    jobs = list(itertools.product(*(str(v).split(",") for v in params.values())))
    assert len(jobs) == n_jobs
    for combo in jobs:
        cfg = composed([f"{k}={v}" for k, v in zip(params, combo)])
        assert cfg.deployment.weight_bytes == 1 and cfg.deployment.kv_bytes == 1
        assert "compute_utilization" in cfg.store.variables
        grid = parse_grid(OmegaConf.to_container(cfg.grid, resolve=True))
        assert grid.size == n_points
        validate_grid(params_from_cfg(cfg), grid)
    GlobalHydra.instance().clear()


def test_at_known_selects_like_at_and_refuses_a_point_the_store_lacks():
    ds = xr.Dataset({"utps": ("tp", [1.0, 2.0])}, coords={"tp": [8.0, 32.0]})
    assert at_known(ds, tp=32).identical(at(ds, tp=32))
    with pytest.raises(StoreError, match="tp"):
        at_known(ds, tp=16)


def test_the_bound_map_figure_shows_more_than_one_wall(study):
    """Issue 15: docs/figures/bound_map.png was one colour (HBM3 is memory-bound everywhere);
    the figure now shows the 3D-DRAM part, where several walls bind."""
    from limits.studies.liminal.figures import FIGURES

    store, _, _ = study
    fig = FIGURES["bound_map.png"](open_results(store.parent))
    legend = fig.axes[0].get_legend()
    walls = [t.get_text() for t in legend.get_texts()]
    assert len(walls) > 1, walls
