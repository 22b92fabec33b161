"""Lean stores (issue 14): each output stored over the grid axes it depends on, found from the
traced computation; ``open_results`` gives exactly what the full layout gives."""

import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from limits.analysis import open_results
from limits.sweep import compose, run
from limits.sweep import store as store_module
from limits.sweep.blocks import axis_dependence
from limits.sweep.integrity import damaged_blocks, stored_chunk

GRID = [
    "grid=point",
    "++grid.tp=[8,16,32]",
    "++grid.context=[1024,4096,16384,131072]",
    "++grid.batch=[1,4,16,64,128]",
    "++grid.sync_latency=[1 us,5 us]",
    "store.chunk_points=16",  # many blocks, a padded edge along batch
    "store.variables=all",
    "sensitivity.metrics=[utps]",
    "sensitivity.wrt=[mem_bw,sync_latency]",
]


def _run(tmp_path, name, extra=()):
    cfg = compose([*GRID, *extra, f"store.path={tmp_path / name}"])
    return run(cfg, verbose=False)


@pytest.mark.slow
def test_lean_and_full_layouts_open_to_identical_values(tmp_path):
    full = _run(tmp_path, "full.zarr", ["store.layout=full"])
    lean = _run(tmp_path, "lean.zarr")
    assert lean.summary == full.summary
    a, b = open_results(full.path).load(), open_results(lean.path).load()
    assert list(a.data_vars) == list(b.data_vars) and len(a.data_vars) > 20
    for name in a.data_vars:
        assert a[name].dims == b[name].dims, name
        assert a[name].dtype == b[name].dtype, name
        assert a[name].attrs == b[name].attrs, name
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    # the headline found on the device per block is the store's best feasible point
    for name in ("utps", "stps"):
        best = a[name].where(a.feasible)
        at = np.unravel_index(int(np.argmax(best.fillna(-np.inf).values)), best.shape)
        assert lean.summary[f"best_{name}"] == float(best.max())
        assert lean.summary[f"best_{name}_at"] == {d: float(a[d][k]) for d, k in zip(best.dims, at)}
    plain = xr.open_zarr(lean.path)  # plain xarray: each variable over its own axes
    dims = {name: plain[name].dims for name in plain.data_vars}
    assert dims["memory_available"] == ("tp",)  # the chips' memory: tp alone
    assert "sync_latency" not in dims["memory_required"]
    assert dims["utps"] == ("tp", "context", "batch", "sync_latency")
    assert dims["elasticity_utps"][-1] == "wrt"
    # arithmetic broadcasts the lean variables as xarray does: same numbers as the full store
    headroom = (plain.memory_available - plain.memory_required).broadcast_like(a.utps)
    np.testing.assert_array_equal(
        headroom.transpose(*a.utps.dims).values, (a.memory_available - a.memory_required).values
    )
    assert _chunk_bytes(lean.path) < 0.7 * _chunk_bytes(full.path)


def _is_chunk(relative):
    """A data chunk's file: ``VAR/c.0.1`` or (zarr's default encoding) ``VAR/c/0/1``."""
    return len(relative.parts) > 1 and relative.parts[1].split(".")[0] == "c"


def _chunk_bytes(store):
    """Bytes of the variables' chunk files."""
    files = (f for f in store.rglob("*") if f.is_file() and _is_chunk(f.relative_to(store)))
    return sum(f.stat().st_size for f in files)


@pytest.mark.slow
def test_lean_store_shards_resume_and_damage(tmp_path):
    store = tmp_path / "s.zarr"
    extra = [f"store.path={store}", "shard.count=2"]
    cfg = [*GRID[:6], "store.variables=default"]
    for index in (1, 0):
        run(compose([*cfg, *extra, f"shard.index={index}"]), verbose=False)
    reference = run(compose([*cfg, f"store.path={tmp_path / 'one.zarr'}"]), verbose=False)
    a, b = open_results(store).load(), open_results(reference.path).load()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    # the chunk of memory_available (over tp only) is written by block (0, 0, 0, 0) alone
    assert damaged_blocks(store) == {}
    chunk = stored_chunk(store, "memory_available", (0,))
    chunk.unlink()
    assert list(damaged_blocks(store)) == [(0, 0, 0, 0)]
    again = run(compose([*cfg, f"store.path={store}"]), verbose=False)
    assert again.blocks_computed == 1 and chunk.is_file()
    c = open_results(store).load()
    np.testing.assert_array_equal(c.memory_available.values, b.memory_available.values)
    shutil.rmtree(store)


def test_dependence_follows_values_not_shapes():
    def f(base, axes):
        x, y = axes[0][:, None], axes[1][None, :]
        return {
            "x_only": x * base + 0.0 * jnp.zeros_like(y),  # y's shape, not its values
            "both": jnp.where(x > y, x, base),
            "none": base * 2.0,
            "index": base + jnp.arange(3.0)[:, None] + 0.0 * y,  # varies along x's dim
            "called": jax.jit(lambda a, b: a + b)(y, base),
        }

    probe = (jax.ShapeDtypeStruct((3,), jnp.float64), jax.ShapeDtypeStruct((4,), jnp.float64))
    closed, shapes = jax.make_jaxpr(f, return_shape=True)(jnp.float64(1.0), probe)
    deps = dict(zip(sorted(shapes), axis_dependence(closed.jaxpr, 1, 2)))
    assert deps == {
        "x_only": {0},
        "both": {0, 1},
        "none": set(),
        "index": {0, 1},  # an index counts as every axis
        "called": {1},  # followed inside the call
    }


@pytest.mark.parametrize("codec", ["lz4", "none"])
def test_chunk_writer_writes_the_bytes_zarr_writes(tmp_path, monkeypatch, codec):
    """The sweep's own chunk encoder against zarr's pipeline (the writer falls back to zarr
    when it does not know an array's codecs): the same files, byte for byte, edge chunks and
    a 0-d variable included."""
    extra = [f"store.codec={codec}", "store.variables=[utps,bound,feasible,ridge_point]"]
    ours = _run(tmp_path, "ours.zarr", extra)
    monkeypatch.setattr(store_module, "_encoder", lambda array: None)
    theirs = _run(tmp_path, "zarr.zarr", extra)

    def chunks(path):
        return {
            f.relative_to(path): f.read_bytes()
            for f in sorted(path.rglob("*"))
            if f.is_file() and _is_chunk(f.relative_to(path))
        }

    a, b = chunks(ours.path), chunks(theirs.path)
    assert a.keys() == b.keys() and len(a) > 10
    assert Path("ridge_point", "c") in a  # the 0-d variable's one chunk
    for key in a:
        assert a[key] == b[key], key


def test_headline_prefix_is_one_name():
    from limits.sweep import blocks, job

    assert job.HEADLINE_PREFIX == blocks.HEADLINE_PREFIX
