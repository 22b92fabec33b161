"""Frictions a new user met (issue 15), each pinned: the run summary names its device, ..."""

import jax
import pytest

from limits.errors import ConsolidateError
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


# --------------------------------------------------------------------------- axis overrides


def test_a_range_replaces_a_list_axis_and_a_list_a_range_in_place():
    """`grid.batch={...}` over the default list, `grid.context=[...]` over its range: each
    replaces the axis where it stands (its dimension order), with or without `++`."""
    for prefix in ("", "++"):
        cfg = compose(
            [
                f"{prefix}grid.batch={{start:1,stop:256,num:64}}",
                f"{prefix}grid.context=[1024,2048]",
            ]
        )
        assert list(cfg.grid) == ["tp", "context", "batch", "sync_latency"]
        assert dict(cfg.grid.batch) == {"start": 1, "stop": 256, "num": 64}
        assert list(cfg.grid.context) == [1024, 2048]


def test_a_range_over_a_range_keeps_none_of_the_old_keys():
    """The default context range is log-spaced; a new range without `scale` is linear."""
    from limits.sweep.config import mapping
    from limits.sweep.grid import parse_grid

    cfg = compose(["grid.context={start:1024,stop:4096,num:4}"])
    assert "scale" not in cfg.grid.context
    assert parse_grid(mapping(cfg.grid)).axes["context"].tolist() == [1024, 2048, 3072, 4096]


def test_an_axis_the_preset_lacks_is_added_by_either_form_and_a_typo_is_refused():
    from limits.errors import ParameterError
    from limits.sweep.config import mapping
    from limits.sweep.grid import parse_grid

    for prefix in ("", "++"):
        cfg = compose(["grid=point", f"{prefix}grid.batch=[1,8]"])
        assert list(cfg.grid.batch) == [1, 8]
    with pytest.raises(ParameterError, match=r"^grid\.bacth: unknown parameter; valid axis"):
        parse_grid(mapping(compose(["grid=point", "grid.bacth=[1]"]).grid))


@pytest.mark.slow
def test_the_query_and_the_sweep_share_the_axis_replacement():
    from limits.query import from_presets

    ds = from_presets("h200", "llama3_70b", ["grid.batch={start:1,stop:64,num:4,scale:log}"])
    assert list(ds.dims) == ["tp", "batch"]  # the default order: the range took batch's place
    assert ds.batch.values.tolist() == [1, 4, 16, 64]


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_sweep_command_takes_a_range_over_a_list_axis(tmp_path):
    import subprocess
    import sys

    import xarray as xr

    store = tmp_path / "s.zarr"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "grid.batch={start:1,stop:256,num:4}",
            "grid.tp=[8]",
            "grid.context=[4096]",
            f"store.path={store}",
            "limits.progress=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    ds = xr.open_zarr(store)
    assert list(ds.dims) == ["tp", "context", "batch", "sync_latency"]
    assert ds.batch.values.tolist() == [1, 86, 171, 256]
    assert ds.attrs["overrides"][:2] == ["grid.batch={start:1,stop:256,num:4}", "grid.tp=[8]"]


# --------------------------------------------------------------------------- minimal presets


def _user_conf(tmp_path):
    (tmp_path / "hardware").mkdir(parents=True, exist_ok=True)
    (tmp_path / "hardware" / "mini.yaml").write_text("name: mini\nmem_bw: 8 TB/s\n")
    (tmp_path / "hardware" / "mini2.yaml").write_text(
        "defaults: [xpu_hbm3, _self_]\nname: mini2\nmem_bw: 8 TB/s\n"
    )
    return [f"hydra.searchpath=[file://{tmp_path}]"]


def test_a_minimal_hardware_file_is_refused_naming_what_it_lacks(tmp_path):
    from limits.errors import ParameterError
    from limits.sweep.config import params_from_cfg

    with pytest.raises(ParameterError) as err:
        params_from_cfg(compose([*_user_conf(tmp_path), "hardware=mini", "grid=point"]))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        "hardware mini: no value for mem_capacity, peak_flops, sync_latency, "
        "sync_latency_intra_node, pipeline_latency, node_size, chip_power, node_power"
    )
    assert message.endswith("'defaults: [xpu_hbm3, _self_]' at the top of the file")


def test_a_hardware_file_inherits_only_what_it_asks_for(tmp_path):
    import limits
    from limits.sweep.config import params_from_cfg

    p = params_from_cfg(compose([*_user_conf(tmp_path), "hardware=mini2", "grid=point"]))
    paper = limits.load_params("xpu_hbm3", "llama3_405b")
    assert p.hardware.name == "mini2" and float(p.hardware.mem_bw) == 8e12
    assert float(p.hardware.peak_flops) == float(paper.hardware.peak_flops)
    # an override can fill what the file leaves out, too
    q = params_from_cfg(
        compose(
            [*_user_conf(tmp_path), "hardware=mini", "grid=point"]
            + [f"hardware.{k}={v}" for k, v in limits.load_preset("hardware", "h200").items()]
        )
    )
    assert float(q.hardware.mem_bw) == float(limits.load_params("h200").hardware.mem_bw)


def test_load_params_reads_the_same_defaults_line_and_refuses_the_same_way(tmp_path, monkeypatch):
    import shutil

    import limits.presets as presets
    from limits.errors import ParameterError

    shutil.copytree(presets.CONF_DIR, tmp_path / "conf")
    _user_conf(tmp_path / "conf" / "user")
    for name in ("mini", "mini2"):
        shutil.copy(tmp_path / "conf/user/hardware" / f"{name}.yaml", tmp_path / "conf/hardware")
    monkeypatch.setattr(presets, "CONF_DIR", tmp_path / "conf")
    with pytest.raises(ParameterError, match=r"^hardware mini: no value for mem_capacity, "):
        presets.load_params("mini")
    p = presets.load_params("mini2")
    assert float(p.hardware.mem_bw) == 8e12 and p.hardware.name == "mini2"
    assert float(p.hardware.node_power) == 300.0  # xpu_hbm3's, asked for by the file


# --------------------------------------------------------------------------- idle axes, log


@pytest.mark.slow
@pytest.mark.parametrize("tps, idle", [([4, 8], True), ([8, 16], False)])
def test_a_swept_sync_latency_that_no_collective_pays_is_named(tmp_path, capsys, tps, idle):
    """At tp <= node_size (8) no collective leaves the node: sync_latency is never paid, the
    sweep says so before it starts, and indeed every stored output is the same along it."""
    import numpy as np

    from limits.analysis import open_results

    store = tmp_path / "s.zarr"
    cfg = compose(
        [
            "grid=point",
            f"++grid.tp=[{tps[0]},{tps[1]}]",
            "++grid.sync_latency=[1 us,20 us]",
            f"store.path={store}",
            "store.variables=all",
            "limits.progress=false",
        ]
    )
    run(cfg)
    err = capsys.readouterr().err
    ds = open_results(store).load()  # lean: every variable over the grid
    same = all(
        np.array_equal(ds[v].isel(sync_latency=0), ds[v].isel(sync_latency=1), equal_nan=True)
        for v in ds.data_vars
    )
    assert same == idle
    warned = "limits.sweep: warning: grid.sync_latency changes no output" in err
    assert warned == idle
    if idle:
        assert "(tp: 4, 8; ep: 1; node_size: 8; scaleup_size: 0)" in err


@pytest.mark.subprocess
def test_the_run_log_holds_what_the_terminal_showed(tmp_path):
    import re
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "grid=point",
            "++grid.tp=[4,8]",
            "++grid.sync_latency=[1 us,2 us]",
            "limits.progress=false",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    logged = [
        re.sub(r"^\[[^]]*\]\[limits\.sweep\]\[[A-Z]+\] - ", "", line)
        for line in (tmp_path / "sweep.log").read_text().splitlines()
    ]
    shown = proc.stdout.splitlines() + proc.stderr.splitlines()
    assert sorted(logged) == sorted(shown) and len(shown) >= 7
    assert any(line.startswith("limits.sweep: warning: grid.sync_latency") for line in logged)


@pytest.mark.slow
def test_whole_number_axes_are_stored_as_integers(tmp_path):
    """tp, context, batch hold int64 coordinates (sync_latency stays float64 seconds), so
    `sel(tp=16)` and printed coordinates read as the numbers a user wrote; the query's
    in-memory grid has the same coordinates."""
    import numpy as np
    import xarray as xr

    from limits.model.params import parameter_index
    from limits.query import from_presets

    store = tmp_path / "s.zarr"
    run(compose([f"store.path={store}", "limits.progress=false"]), verbose=False)
    for ds in (xr.open_zarr(store), from_presets("h200", "llama3_70b")):
        for name in ds.dims:
            integer = parameter_index()[name][1].integer
            assert ds[name].dtype == (np.int64 if integer else np.float64), name
    ds = xr.open_zarr(store)
    assert ds.tp.values.tolist() == [8, 16, 32, 64]
    assert ds.context.values.tolist() == [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
    assert ds.sel(tp=16, batch=8).utps.shape == (8, 4)


# --------------------------------------------------------------------------- pint-xarray


def test_every_stored_unit_parses_with_the_pint_registry():
    pytest.importorskip("pint")
    from limits.model.outputs import OUTPUTS
    from limits.model.params import parameter_index
    from limits.sweep.grid import Grid
    from limits.units import pint_registry

    registry = pint_registry()
    grid = Grid({})  # the units of an axis come from its parameter
    units = {u for u, _ in OUTPUTS.values()} | {grid.units(n) for n in parameter_index()}
    for unit in sorted(units):
        registry.parse_units(unit)  # raises on an unknown unit
    assert registry.Quantity(1.0, "USD/Mtok").to("USD/tok").magnitude == pytest.approx(1e-6)
    assert registry.Quantity(1.0, "tokens").to("tok").magnitude == 1.0  # context's units


@pytest.mark.slow
def test_a_store_quantifies_with_pint_xarray(tmp_path):
    pytest.importorskip("pint_xarray")
    import numpy as np
    import xarray as xr

    from limits.units import pint_registry

    store = tmp_path / "s.zarr"
    run(
        compose([f"store.path={store}", "store.variables=all", "limits.progress=false"]),
        verbose=False,
    )
    raw = xr.open_zarr(store).load()
    ds = raw.pint.quantify(unit_registry=pint_registry())
    gib = ds["memory_required"].pint.to("GiB").pint.magnitude
    np.testing.assert_allclose(gib, raw["memory_required"] / 2.0**30, rtol=1e-6)
    assert str(ds["t_mem"].pint.units) == "second"
    assert ds["utps"].pint.units == pint_registry().parse_units("tok/s/user")
    assert ds["context"].pint.units == pint_registry().parse_units("tok")


# --------------------------------------------------------------------------- what binds


def _binds_line(answer):
    return next(line for line in answer.lines() if line.startswith("what binds:"))


def test_what_binds_a_serving_answer_is_the_serving_pass():
    """A serving answer (TTFT at load, TPOT, output tokens/s per chip) names the wall of the
    serving pass (`serving_bound`) and its times; a decode answer the decode step's."""
    from limits.model.outputs import BOUND_LABELS
    from limits.query import best, from_presets

    ds = from_presets("h200", "llama3_70b", ["grid.tp=[1,2,4,8]", "grid.batch=[1,16,64,128]"])
    serving = best(ds, "tps_per_chip", {"ttft": 0.3, "tpot": 0.02})
    assert serving.objective == "output_tps_per_chip"
    p = serving.point
    line = _binds_line(serving)
    label = BOUND_LABELS[int(p["serving_bound"].values)]
    assert line.startswith(f"what binds: {label} (serving pass walls: serving_t_mem ")
    walls = {w: float(p[f"serving_t_{w}"].values) for w in ("mem", "compute", "sync")}
    top = max(walls, key=lambda w: walls[w])
    assert {"mem": "memory", "compute": "compute", "sync": "sync"}[top] == label
    decode = best(ds, "stps", where={"tbt": ("<=", 0.02)})
    p = decode.point
    line = _binds_line(decode)
    assert line.startswith(
        f"what binds: {BOUND_LABELS[int(p['bound'].values)]} (decode step walls: t_mem "
    )


# --------------------------------------------------------------------------- multiruns


def _job(root, num, overrides):
    """One multirun job as Hydra runs it: its overrides recorded in the store."""
    given = [
        "grid=point",
        "++grid.tp=[8,16]",
        "++grid.batch=[1,16]",
        "store.variables=[utps,feasible,bound]",
        "limits.progress=false",
        *overrides,
    ]
    cfg = compose([*given, f"store.path={root / str(num) / 'sweep.zarr'}"])
    return run(cfg, overrides=given, verbose=False).path


def test_a_multirun_over_a_parameter_stacks_it_as_a_dimension(tmp_path):
    import numpy as np
    import xarray as xr

    from limits.analysis import open_results
    from limits.sweep.consolidate import consolidate

    stores = {}
    for num, (hw, prompt) in enumerate(
        [("xpu_hbm3", 1024), ("xpu_hbm3", 4096), ("xpu_hbm4", 1024), ("xpu_hbm4", 4096)]
    ):
        stores[hw, prompt] = _job(
            tmp_path, num, [f"hardware={hw}", f"deployment.prompt_len={prompt}"]
        )
    combined = open_results(tmp_path)  # before consolidation: the job stores, combined
    ds = xr.open_zarr(consolidate(tmp_path))
    for got in (ds, combined):
        assert list(got.utps.dims) == ["hardware", "model", "prompt_len", "tp", "batch"]
        assert got.prompt_len.values.tolist() == [1024, 4096]
        assert got.prompt_len.attrs["units"] == "tokens"
        for (hw, prompt), path in stores.items():
            job = xr.open_zarr(path)
            np.testing.assert_array_equal(
                got.utps.sel(hardware=hw, model="llama3_405b", prompt_len=prompt).values,
                job.utps.values,
            )
    assert '"prompt_len": 4096' in ds.attrs["jobs"]  # each job's value, with its provenance


def test_a_multirun_over_grid_values_is_refused_with_the_grid_axis_form(tmp_path):
    from limits.sweep.consolidate import consolidate

    _job(tmp_path, 0, ["++grid.context=[4096]"])
    _job(tmp_path, 1, ["++grid.context=[8192]"])
    with pytest.raises(ConsolidateError, match=r"'\+\+grid\.context=\[\.\.\.\]' listing every"):
        consolidate(tmp_path)


def test_a_multirun_over_a_setting_that_is_no_parameter_is_refused(tmp_path):
    from limits.sweep.consolidate import consolidate

    _job(tmp_path, 0, ["store.codec=lz4"])
    _job(tmp_path, 1, ["store.codec=zstd"])
    with pytest.raises(ConsolidateError, match=r"differ in store\.codec \(lz4, zstd\)"):
        consolidate(tmp_path)


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_multirun_command_consolidates_a_parameter_sweep(tmp_path):
    import subprocess
    import sys

    from limits.analysis import open_results

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "-m",
            "model=llama3_8b",
            "deployment.prompt_len=512,2048",
            "grid.tp=[1,2]",
            "grid.context=[4096]",  # a list over the default range
            "grid.batch={start:1,stop:16,num:2}",  # a range over the default list
            "grid.sync_latency=[1 us]",
            "limits.progress=false",
            f"hydra.sweep.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    ds = open_results(tmp_path / "consolidated.zarr")
    dims = ["hardware", "model", "prompt_len", "tp", "context", "batch", "sync_latency"]
    assert list(ds.utps.dims) == dims
    assert ds.prompt_len.values.tolist() == [512, 2048]
    assert ds.batch.values.tolist() == [1, 16]
    ttft = ds.ttft.sel(hardware="xpu_hbm3", model="llama3_8b", tp=1, batch=1).squeeze()
    assert float(ttft.sel(prompt_len=2048)) > float(ttft.sel(prompt_len=512))


def test_the_provenance_records_axis_overrides_as_written():
    from limits.sweep.config import replaceable_axes, without_axis_resets

    given = ["grid.tp=[8]", "++grid.batch={start:1,stop:2,num:2}", "model=llama3_8b"]
    assert replaceable_axes(given)[:4] == [
        "++grid.tp=null",
        "grid.tp=[8]",
        "++grid.batch=",
        "grid.batch={start:1,stop:2,num:2}",
    ]
    assert without_axis_resets(replaceable_axes(given)) == given


@pytest.mark.slow
@pytest.mark.parametrize("variables, idle", [("[utps,stps]", True), ("all", False)])
def test_an_axis_no_stored_output_reads_is_named(tmp_path, capsys, variables, idle):
    """chip_price feeds the cost outputs only: swept while storing utps and stps it changes
    nothing stored, and the sweep says so; with every output stored it does change some."""
    import numpy as np

    from limits.analysis import open_results

    store = tmp_path / "s.zarr"
    cfg = compose(
        [
            "grid=point",
            "++grid.tp=[8,16]",
            "++grid.chip_price=[1 USD/h,3 USD/h]",
            f"store.variables={variables}",
            f"store.path={store}",
            "limits.progress=false",
        ]
    )
    assert run(cfg).traces <= 1  # the check reads the sweep's own trace
    err = capsys.readouterr().err
    ds = open_results(store).load()  # lean: every variable over the grid
    same = all(
        np.array_equal(ds[v].isel(chip_price=0), ds[v].isel(chip_price=1), equal_nan=True)
        for v in ds.data_vars
    )
    assert same == idle
    assert ("limits.sweep: warning: grid.chip_price changes no stored output" in err) == idle
