"""Scaling out: shards of one grid in separate processes writing one store, and faults (a
SIGKILL at a random point, no space, no permission) that leave a store that opens and resumes
to exactly the uninterrupted result."""

import errno
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
import zarr

from limits.sweep import compose, run
from limits.sweep.consolidate import shared_store_status
from limits.sweep.integrity import marked_blocks
from limits.sweep.job import _task
from limits.sweep.store import PROGRESS_ARRAY, StoreError, create_store

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
SMALL = [
    "grid=point",
    "++grid.tp=[8,16,32]",
    "++grid.context=[1024,4096,16384,131072]",
    "++grid.batch=[1,2,4,8]",
    "store.chunk_points=4",
    "limits.progress=false",
]


def _sweep(path, extra=(), **kw):
    return run(compose(SMALL + list(extra) + [f"store.path={path}"]), verbose=False, **kw)


def _assert_same(a_path, b_path):
    a, b = xr.open_zarr(a_path).load(), xr.open_zarr(b_path).load()
    assert set(a.data_vars) == set(b.data_vars) and a.sizes == b.sizes
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def _done(path):
    return np.asarray(
        zarr.open_group(path, mode="r", use_consolidated=False)[PROGRESS_ARRAY][...], bool
    )


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The uninterrupted, unsharded reference store of SMALL."""
    return _sweep(tmp_path_factory.mktemp("full") / "full.zarr")


# --------------------------------------------------------------------------- shards


def _run_cli(args, cwd, timeout=300):
    """Run ``python -m limits.sweep ARGS`` in its own process group (killed whole on timeout,
    so no launcher worker outlives the test)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "limits.sweep", *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err


def test_sharded_multirun_with_the_joblib_preset(tmp_path, full):
    """``hydra/launcher=local``: the two shards run at the same time in two joblib worker
    processes (both race to create the store, each region-writes its own blocks); the
    multirun callback reports the one shared store instead of consolidating. (devices=1: with
    CPU devices forced to 2, XLA compiles were seen to hang inside joblib's loky workers.)"""
    store = tmp_path / "sharded.zarr"
    rc, out, err = _run_cli(
        [
            "-m",
            "hydra/launcher=local",
            "hydra.launcher.n_jobs=2",
            "shard.index=range(0,2)",
            "shard.count=2",
            "devices=1",
            f"store.path={store}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
            *SMALL,
        ],
        cwd=tmp_path,
    )
    assert rc == 0, err[-3000:]
    assert "(shard 0 of 2)" in out and "(shard 1 of 2)" in out
    assert f"{store} is complete ({full.blocks_total} blocks)" in out
    assert not (tmp_path / "multirun" / "consolidated.zarr").exists()
    assert not list(tmp_path.glob(".sharded.zarr.tmp-*"))  # a creator that lost cleaned up
    _assert_same(full.path, store)


def test_shards_ignore_shard_and_device_settings_in_the_config_check(tmp_path, full):
    store = tmp_path / "s.zarr"
    first = _sweep(store, ["shard.index=0", "shard.count=3"])
    provenance = yaml.safe_load(xr.open_zarr(store).attrs["config"])
    assert provenance["shard"] == {"index": 0, "count": 3}  # the creator's: differs per shard
    assert first.blocks_computed == len(range(0, full.blocks_total, 3))
    assert not _done(store).all()
    _sweep(store, ["shard.index=2", "shard.count=3", "devices=1"])  # same data settings
    last = _sweep(store, ["shard.index=1", "shard.count=3"])
    assert first.blocks_computed + last.blocks_computed <= full.blocks_total
    assert _done(store).all()
    _assert_same(full.path, store)
    with pytest.raises(StoreError, match=r"different settings: hardware\.mem_bw"):
        _sweep(store, ["shard.index=1", "shard.count=3", "hardware.mem_bw=8TB/s"])


def test_losing_the_creation_race_keeps_the_winner(tmp_path, full):
    import dataclasses

    from limits.sweep.store import StoreLayout

    ds = xr.open_zarr(full.path)
    layout = StoreLayout(
        axes={n: ds[n].values for n in ds.dims}, axis_attrs={}, chunks=(1, 1, 4), variables=()
    )
    store = tmp_path / "s.zarr"
    assert create_store(store, layout, {"who": "first"}) is True
    assert create_store(store, dataclasses.replace(layout), {"who": "second"}) is False
    assert zarr.open_group(store, mode="r", use_consolidated=False).attrs["who"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


# --------------------------------------------------------------------------- faults


def _progress_files(store: Path) -> int:
    return len(marked_blocks(store))  # not a file being written (a hidden or `.partial` name)


def test_sigkill_at_a_random_point_leaves_a_store_that_resumes_exactly(tmp_path):
    # 3 x 4 x 32, 192 blocks of 2 points: the kill lands in the first 24 blocks, so the
    # sweep still has ~170 blocks to go when it comes, even on a loaded machine
    grid = SMALL[:-3] + [
        "++grid.batch={start:1,stop:32,num:32}",
        "store.chunk_points=2",
        "limits.progress=false",
    ]
    store = tmp_path / "killed.zarr"
    full = run(compose(grid + [f"store.path={tmp_path / 'full.zarr'}"]), verbose=False)
    kill_after = random.Random(os.environ.get("LIMITS_KILL_SEED", 0)).randint(1, 24)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            *grid,
            f"store.path={store}",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while (
        _progress_files(store) < kill_after and proc.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    done = _done(store)
    assert kill_after <= done.sum() < done.size
    killed = xr.open_zarr(store)  # opens with xarray as it is
    reference = xr.open_zarr(full.path)
    for block in np.ndindex(*done.shape):
        if done[block]:  # a block marked done holds its final data
            region = {
                d: slice(b * c, (b + 1) * c)
                for d, b, c in zip(killed.utps.dims, block, killed.utps.encoding["chunks"])
            }
            for name in killed.data_vars:
                dims = killed[name].dims  # lean layout: a chunk over fewer axes is written
                if any(block[i] for i, d in enumerate(region) if d not in dims):  # by block 0
                    continue  # along the others
                own = {d: r for d, r in region.items() if d in dims}
                np.testing.assert_array_equal(
                    killed[name][own].values, reference[name][own].values, err_msg=name
                )
    resumed = run(compose(grid + [f"store.path={store}"]), verbose=False)
    assert resumed.blocks_skipped == int(done.sum())
    _assert_same(full.path, store)


def _failing_writes(monkeypatch, code, blocks):
    """Make chunk writes raise OSError(code) once ``blocks`` blocks were handed to the writer,
    after two more chunk files (mid-way through the next block). The sweep writes its chunk
    files itself (``limits.sweep.store.ChunkWriter``); zarr's ``LocalStore`` writes the rest."""
    from limits.sweep.store import ChunkWriter

    real_submit, real_write = ChunkWriter.submit, ChunkWriter._write_one
    handed: list[int] = []  # blocks handed over
    failing: dict[int, int] = {}  # id of a region of a failing block -> its chunk files written
    lock = threading.Lock()

    def submit(self, regions, data):
        handed.append(1)
        if len(handed) > blocks:  # the pool may still write earlier blocks: tell them apart
            failing.update((id(r), 0) for r in regions.values())
        return real_submit(self, regions, data)

    def write_one(self, name, region, values):
        with lock:
            if id(region) in failing:
                failing[id(region)] = sum(failing.values()) + 1
                if failing[id(region)] > 2:
                    raise OSError(code, os.strerror(code), str(self.path / name))
        return real_write(self, name, region, values)

    monkeypatch.setattr(ChunkWriter, "submit", submit)
    monkeypatch.setattr(ChunkWriter, "_write_one", write_one)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_write_error_ends_the_run_with_one_line_and_marks_nothing_undone(
    tmp_path, capsys, monkeypatch, code, full
):
    store = tmp_path / "s.zarr"
    _failing_writes(monkeypatch, code, blocks=3)  # mid-way through the 4th block
    with pytest.raises(SystemExit) as info:
        _task(compose(SMALL + [f"store.path={store}"]))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"limits.sweep: error: cannot write store {store}: {os.strerror(code)} ")
    assert int(_done(store).sum()) == 3  # the block whose write failed is not marked done
    monkeypatch.undo()
    resumed = _sweep(store)
    assert resumed.blocks_skipped == 3
    _assert_same(full.path, store)


def test_store_that_cannot_be_created_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    from zarr.storage import LocalStore

    async def refuse_all(self, key, value):  # even the metadata of the template
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), key)

    monkeypatch.setattr(LocalStore, "set", refuse_all)
    with pytest.raises(SystemExit) as info:
        _task(compose(SMALL + [f"store.path={tmp_path / 's.zarr'}"]))
    assert info.value.code == 2
    assert f"cannot write store {tmp_path / 's.zarr'}: Permission denied" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the store nor a half-made template


def test_shared_store_status_lines(tmp_path, full):
    n = full.blocks_total
    assert shared_store_status(full.path).endswith(
        f"is complete ({n} blocks); open it with xarray.open_zarr"
    )
    _sweep(tmp_path / "half.zarr", ["shard.index=0", "shard.count=2"])
    assert f"is incomplete: {n // 2} of {n} blocks written" in shared_store_status(
        tmp_path / "half.zarr"
    )
    assert "cannot be read" in shared_store_status(tmp_path / "missing.zarr")
