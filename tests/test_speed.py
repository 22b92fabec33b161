"""Start-up and fast paths (issue 14): the store template written with zarr alone opens in
xarray exactly as xarray's own template did; the jitted ``limits.evaluate`` equals the model;
chunk shapes without padded edge blocks; entry points switch JAX's compilation cache on."""

import math
import os
import subprocess
import sys
from pathlib import Path

import dask.array as da
import jax
import numpy as np
import pytest
import xarray as xr
import zarr

import limits
from limits import compile_cache, fast
from limits.sweep import compose, run, store
from limits.sweep.store import (
    StoreLayout,
    VariableSpec,
    chunk_shape,
    codec_for,
    create_store,
    output_attrs,
    quiet_zarr_warnings,
)


def _layout(extra: bool = True) -> StoreLayout:
    axes = {"tp": np.array([8.0, 16.0]), "context": np.array([1024.0, 4096.0, 16384.0])}
    variables = [
        VariableSpec("utps", np.dtype(np.float32), attrs=output_attrs("utps")),
        VariableSpec("bound", np.dtype(np.int8), attrs=output_attrs("bound")),
        VariableSpec("feasible", np.dtype(bool), attrs=output_attrs("feasible")),
        VariableSpec("best_batch", np.dtype(np.float64), attrs={"units": "1", "long_name": "b"}),
        VariableSpec("memory_available", np.dtype(np.float32), dims=("tp",)),  # lean layout
        VariableSpec("ridge_point", np.dtype(np.float32), dims=()),
    ]
    if extra:
        variables.append(
            VariableSpec("elasticity_utps", np.dtype(np.float32), ("wrt",), (2,), {"units": "1"})
        )
    return StoreLayout(
        axes=axes,
        axis_attrs={"tp": {"units": "1", "long_name": "chips"}, "context": {"units": "tokens"}},
        chunks=(1, 2),
        variables=tuple(variables),
        extra_coords={"wrt": np.array(["mem_bw", "sync_latency"], dtype=object)} if extra else {},
        codec="zstd",
        clevel=3,
    )


def _xarray_template(path, layout: StoreLayout, attrs) -> None:
    """The template as the store wrote it before issue 14: an xarray Dataset of dask zeros,
    ``to_zarr(compute=False)``."""
    names = tuple(layout.axes)
    coords = {
        n: (n, np.asarray(v, np.float64), dict(layout.axis_attrs.get(n, {})))
        for n, v in layout.axes.items()
    }
    for n, v in layout.extra_coords.items():
        coords[n] = (n, np.asarray(v, dtype=object), {"long_name": f"{n} parameter names"})
    data, encoding = {}, {}
    size, chunk = dict(zip(names, layout.shape)), dict(zip(names, layout.chunks))
    for var in layout.variables:
        dims = layout.dims_of(var)
        chunks = tuple(chunk[d] for d in dims) + var.extra_shape
        shape = tuple(size[d] for d in dims) + var.extra_shape
        zeros = da.zeros(shape, dtype=var.dtype, chunks=chunks)
        data[var.name] = (dims + var.extra_dims, zeros, dict(var.attrs))
        encoding[var.name] = {
            "compressors": codec_for(layout.codec, layout.clevel),
            "chunks": chunks,
        }
    with quiet_zarr_warnings():
        xr.Dataset(data, coords=coords, attrs=dict(attrs)).to_zarr(
            path, mode="w", compute=False, encoding=encoding, zarr_format=3, consolidated=True
        )


@pytest.mark.parametrize("extra", [True, False])
def test_template_without_xarray_opens_like_xarrays_own(tmp_path, extra):
    layout = _layout(extra)
    attrs = {"title": "t", "nested": {"a": [1, 2]}}
    create_store(tmp_path / "new.zarr", layout, attrs)
    _xarray_template(tmp_path / "old.zarr", layout, {**attrs, "limits_dims": ["tp", "context"]})
    with quiet_zarr_warnings():
        new, old = xr.open_zarr(tmp_path / "new.zarr"), xr.open_zarr(tmp_path / "old.zarr")
    xr.testing.assert_identical(new.load(), old.load())
    for name in old.variables:
        assert new[name].dtype == old[name].dtype
        assert new[name].encoding.get("chunks") == old[name].encoding.get("chunks")
        assert new[name].encoding.get("_FillValue", "unset") == old[name].encoding.get(
            "_FillValue", "unset"
        ) or math.isnan(new[name].encoding["_FillValue"])
    a = zarr.open_group(tmp_path / "new.zarr", mode="r")
    b = zarr.open_group(tmp_path / "old.zarr", mode="r")
    for name in old.data_vars:
        ma, mb = a[name].metadata.to_dict(), b[name].metadata.to_dict()
        for key in ("shape", "data_type", "chunk_grid", "dimension_names", "attributes"):
            assert ma.get(key) == mb.get(key), (name, key)  # 0-d: no dimension_names
        assert [c["name"] for c in ma["codecs"]] == [c["name"] for c in mb["codecs"]]
        assert str(ma["fill_value"]) == str(mb["fill_value"])


# --------------------------------------------------------------------------- limits.evaluate


def _same_outputs(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.dtype == y.dtype and x.shape == y.shape, k
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=0, equal_nan=True, err_msg=k)


@pytest.mark.parametrize(
    "hardware,model",
    [("xpu_hbm3", "llama3_405b"), ("h100", "deepseek_v3"), ("mi300x", "llama3_70b")],
)
@pytest.mark.slow
def test_jitted_evaluate_equals_the_eager_model(hardware, model):
    from limits.model import evaluate as eager

    p = limits.load_params(hardware, model, tp=8)
    _same_outputs(limits.evaluate(p), eager(p))
    grid = p.replace(batch=np.array([[1.0], [8.0], [64.0]]), context=np.array([[1024.0, 8192.0]]))
    _same_outputs(limits.evaluate(grid), eager(grid))


@pytest.mark.slow
def test_jitted_evaluate_compiles_once_per_layout_and_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(fast, "CACHE_SIZE", 2)
    fast.cache_clear()
    p = limits.load_params("xpu_hbm3", "llama3_405b", tp=8)
    limits.evaluate(p)
    limits.evaluate(p.replace(batch=4.0, context=2048.0))  # new values, same layout
    assert fast.cache_info() == {"hits": 1, "misses": 1, "size": 1, "max_size": 2}
    limits.evaluate(p.replace(batch=np.array([1.0, 2.0])))  # a new shape: a new layout
    limits.evaluate(limits.load_params("h100", "deepseek_v3", tp=8))  # a new structure (MoE)
    info = fast.cache_info()
    assert info["misses"] == 3 and info["size"] == 2  # the least recently used went
    fast.cache_clear()


@pytest.mark.slow
def test_jitted_evaluate_inside_jax_transformations():
    p = limits.load_params("xpu_hbm3", "llama3_405b", tp=8)

    def utps(bw):
        return limits.evaluate(p.replace(mem_bw=bw))["utps"]

    bw = float(p.hardware.mem_bw)
    np.testing.assert_allclose(jax.jit(utps)(bw), limits.evaluate(p)["utps"], rtol=1e-12)
    assert float(jax.grad(utps)(bw)) > 0  # more bandwidth, more tokens per user


# --------------------------------------------------------------------------- chunk shapes


def _waste(shape, chunks) -> float:
    """Points computed (whole blocks, padded edges included) per grid point."""
    blocks = math.prod(-(-n // c) for n, c in zip(shape, chunks))
    return blocks * math.prod(chunks) / math.prod(shape)


@pytest.mark.parametrize(
    "shape,before,after",
    [
        ((8, 250, 250, 20), 1.672, 1.0),  # 1e7 points: 2 x 125 batches, not 209 + 41 (+168 pad)
        ((8, 250, 250, 40), 1.248, 1.008),  # 2e7 points: 3 x 84, not 3 x 104
    ],
)
def test_default_chunks_leave_no_padded_edge_blocks(shape, before, after):
    names = ("tp", "batch", "context", "sync_latency")
    chunks = chunk_shape(shape, 1 << 20, names=names)
    assert math.prod(chunks) <= 1 << 20
    assert _waste(shape, chunks) == pytest.approx(after, abs=5e-4)
    # the rule before: the part of an axis as long as the budget allows
    old = (1, (1 << 20) // (shape[2] * shape[3]), shape[2], shape[3])
    assert _waste(shape, old) == pytest.approx(before, abs=5e-4)


@pytest.mark.parametrize("n", [1, 7, 20, 97, 250, 1000, 4096])
@pytest.mark.parametrize("budget", [1, 3, 16, 104, 209, 5000])
def test_tiled_axis_pads_less_than_one_value_per_block(n, budget):
    (c,) = chunk_shape((n,), budget, names=("a",))
    blocks = -(-n // c)
    assert 1 <= c <= max(1, min(n, budget)) and blocks * c - n < blocks
    assert blocks <= -(-n // max(1, budget)) * 1.25 + 1


def test_resume_keeps_the_chunks_of_a_store_written_with_the_old_rule(tmp_path, monkeypatch):
    small = [
        "grid=point",
        "++grid.tp=[8,16]",
        "++grid.batch=[1,2,4,8,16]",
        "++grid.context=[1024,4096]",
        "store.chunk_points=8",
        "limits.progress=false",
    ]  # chunks (1, 3, 2) now, (1, 4, 2) by the rule before: 2 x 2 blocks either way

    def cfg(name):
        return compose([*small, f"store.path={tmp_path / name}"])

    full = run(cfg("full.zarr"), verbose=False)
    with monkeypatch.context() as m:  # the rule before: as long as the budget allows
        m.setattr(store, "_tile", lambda n, budget: max(1, min(n, budget)))

        def stop(block, count=[0]):  # noqa: B006 - the list is the call counter
            count[0] += 1
            if count[0] == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run(cfg("old.zarr"), verbose=False, block_callback=stop)
    with quiet_zarr_warnings():
        old_chunks = xr.open_zarr(tmp_path / "old.zarr").utps.encoding["chunks"]
    regions = []
    submit = store.ChunkWriter.submit
    monkeypatch.setattr(
        store.ChunkWriter, "submit", lambda w, r, d: regions.append(r) or submit(w, r, d)
    )
    resumed = run(cfg("old.zarr"), verbose=False)
    spans = [(r["utps"][1].start, r["utps"][1].stop) for r in regions]
    assert spans == [(0, 4), (4, 5)]  # the store's chunks
    assert resumed.blocks_skipped == 2 and resumed.blocks_computed == resumed.blocks_total - 2
    with quiet_zarr_warnings():
        a, b = xr.open_zarr(full.path).load(), xr.open_zarr(resumed.path).load()
    assert old_chunks == (1, 4, 2) and b.utps.encoding["chunks"] == old_chunks
    assert a.utps.encoding["chunks"] == (1, 3, 2)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


# --------------------------------------------------------------------------- compilation cache

REPO = Path(__file__).resolve().parents[1]


def test_compilation_cache_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for value in ("", "1", "on"):
        monkeypatch.setenv(compile_cache.ENV, value)
        assert compile_cache.cache_dir() == tmp_path / "limits" / "jax"
    for value in ("0", "off", "False", "no"):
        monkeypatch.setenv(compile_cache.ENV, value)
        assert compile_cache.cache_dir() is None
        assert compile_cache.enable_compilation_cache() is None
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "mine"))
    assert compile_cache.cache_dir() == tmp_path / "mine"
    assert compile_cache.enable_compilation_cache(enabled=False) is None
    assert not (tmp_path / "mine").exists()


@pytest.mark.subprocess
def test_importing_limits_leaves_jax_settings_alone():
    code = (
        "import jax, limits, limits.sweep, limits.analysis; "
        "assert jax.config.jax_compilation_cache_dir is None, jax.config.jax_compilation_cache_dir"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.subprocess
def test_entry_point_tunes_the_collector_of_its_own_process_only():
    """Importing ``limits.cli`` changes nothing; ``entry_point()`` (idempotent) sets the
    collector's thresholds and freezes the heap at exit, after the other exit handlers."""
    code = (
        "import atexit, gc, limits.cli as cli; default = gc.get_threshold(); "
        "frozen = gc.get_freeze_count(); "  # not 0 on Python 3.12: start-up freezes some
        "import limits, limits.sweep, limits.query; assert gc.get_threshold() == default; "
        "n = atexit._ncallbacks(); cli.entry_point(); cli.entry_point(); "
        "assert gc.get_threshold() == cli.GC_THRESHOLDS and atexit._ncallbacks() == n + 1; "
        "atexit.register(lambda: print('handlers ran', gc.get_freeze_count() == frozen))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "handlers ran True"  # a later handler runs before the freeze


def _point_query(tmp_path, name, env, *extra):
    run_dir = tmp_path / name
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "grid=point",
            f"store.path={run_dir / 'sweep.zarr'}",
            f"hydra.run.dir={run_dir}",
            "limits.progress=false",
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.subprocess
@pytest.mark.slow
def test_cli_fills_the_compilation_cache_safely_from_concurrent_processes(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), compile_cache.ENV: str(cache)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    jobs = [_point_query(tmp_path, f"q{k}", env) for k in range(2)]  # at the same time
    for job in jobs:
        out, err = job.communicate(timeout=600)
        assert job.returncode == 0, err[-2000:]
        assert "persistent compilation cache" not in err, err[-2000:]
    entries = [p for p in cache.iterdir() if p.name.endswith("-cache")]
    assert entries  # the block function was stored
    assert list((cache / compile_cache.TRACE_SUBDIR).glob("*.jaxexport"))  # and its trace
    again = _point_query(tmp_path, "q2", env)  # a third run reads it
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0 and "persistent compilation cache" not in err, err[-2000:]
    with quiet_zarr_warnings():
        a, b = (xr.open_zarr(tmp_path / q / "sweep.zarr").load() for q in ("q0", "q2"))
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


@pytest.mark.subprocess
@pytest.mark.slow
def test_cli_compilation_cache_opt_out_by_config(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop(compile_cache.ENV, None)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    job = _point_query(tmp_path, "off", env, "limits.compilation_cache=false")
    out, err = job.communicate(timeout=600)
    assert job.returncode == 0, err[-2000:]
    assert not (tmp_path / "xdg").exists()


# --------------------------------------------------------------------------- trace cache


TRACE_GRID = [  # one device: blocks split over several are traced as before
    "grid=point",
    "devices=1",
    "++grid.tp=[8,16]",
    "++grid.batch=[1,4,16,64]",
    "store.chunk_points=4",
    "limits.progress=false",
]


def _traced_sweep(path, extra=()):
    """A sweep with a fresh block function (none kept from an earlier sweep of the process)."""
    from limits.sweep import blocks

    blocks._CACHE.clear()
    return run(compose([*TRACE_GRID, *extra, f"store.path={path}"]), verbose=False)


def test_trace_cache_skips_the_trace_and_stores_the_same_numbers(tmp_path, monkeypatch):
    """With the trace cache on, the first sweep traces through jax.export and saves the
    module; a later one with the same key runs it without tracing; both store exactly what
    a sweep without the cache stores. A different setting is another key; an entry that does
    not load is traced again and replaced."""
    from limits.sweep import traces

    plain = _traced_sweep(tmp_path / "plain.zarr")
    assert plain.traces >= 1  # 2 on jax 0.12: its eval_shape and call do not share a trace
    cache = tmp_path / "traces"
    monkeypatch.setattr(compile_cache, "_TRACE_DIR", [cache])
    first = _traced_sweep(tmp_path / "first.zarr")
    saved = sorted(cache.glob(f"*{traces.SUFFIX}"))
    assert first.traces == 1 and len(saved) == 1
    second = _traced_sweep(tmp_path / "second.zarr")
    assert second.traces == 0  # loaded, not traced
    with quiet_zarr_warnings():
        stores = [xr.open_zarr(r.path).load() for r in (plain, first, second)]
    for other in stores[1:]:
        xr.testing.assert_identical(stores[0].drop_attrs(), other.drop_attrs())
    fewer = _traced_sweep(tmp_path / "fewer.zarr", ["store.variables=[utps,feasible]"])
    assert fewer.traces == 1 and len(list(cache.glob(f"*{traces.SUFFIX}"))) == 2
    saved[0].write_bytes(saved[0].read_bytes()[:100])  # truncated: does not load
    again = _traced_sweep(tmp_path / "again.zarr")
    assert again.traces == 1 and saved[0].stat().st_size > 100  # traced, saved anew
    with quiet_zarr_warnings():
        xr.testing.assert_identical(
            stores[0].drop_attrs(), xr.open_zarr(again.path).load().drop_attrs()
        )


def test_lapack_set_up_is_skipped_only_for_a_module_without_lapack():
    from jax._src.export import _export as internals

    from limits.sweep import traces

    original = internals._ensure_backends_initialized

    class Module:
        def __init__(self, text: bytes) -> None:
            self.mlir_module_serialized = text

    with traces.without_lapack(Module(b"stablehlo.add")):
        assert internals._ensure_backends_initialized is not original
    assert internals._ensure_backends_initialized is original
    with traces.without_lapack(Module(b"stablehlo.custom_call @lapack_sgesdd_ffi")):
        assert internals._ensure_backends_initialized is original


# --------------------------------------------------------------------------- sweep summary


def _reference_best(values, mask):
    """The summary's rule, written plainly: the first largest finite value among feasible,
    non-NaN points (None when there is none or the largest is infinite)."""
    v = np.asarray(values, np.float64)
    v = np.where(mask, v, -np.inf) if mask is not None else v
    v = np.where(np.isnan(v), -np.inf, v)
    if v.size == 0 or not np.isfinite(v.max()):
        return None
    i = np.unravel_index(int(np.argmax(v)), v.shape)
    return float(v[i]), i


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_mask", [True, False])
def test_summary_picks_the_first_best_feasible_point(seed, with_mask):
    from limits.sweep.job import _Summary

    rng = np.random.default_rng(seed)
    shape = (3, 5, 4)
    axes = {"a": np.arange(3.0), "b": np.arange(5.0) * 10, "c": np.arange(4.0) * 100}
    utps = rng.integers(0, 4, shape).astype(np.float32)  # many ties
    utps[rng.random(shape) < 0.2] = np.nan
    stps = rng.random(shape).astype(np.float32)
    stps[0, 0, 0] = np.inf if seed == 3 else stps[0, 0, 0]  # an infinite best: no headline
    data = {"utps": utps, "stps": stps}
    mask = rng.random(shape) > (0.5 if seed != 2 else 1.0)  # seed 2: nothing feasible
    if with_mask:
        data["feasible"] = mask
    summary = _Summary(axes)
    summary.add(tuple(slice(0, n) for n in shape), data)
    for name in ("utps", "stps"):
        expected = _reference_best(data[name], mask if with_mask else None)
        if expected is None:
            assert name not in summary.best
            continue
        value, i = expected
        assert summary.best[name][0] == value
        assert summary.best[name][1] == {a: float(axes[a][k]) for a, k in zip(axes, i)}
    if with_mask:
        assert summary.feasible == int(mask.sum())
