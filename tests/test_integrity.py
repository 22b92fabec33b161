"""Stores that know whether they are complete: atomic consolidation, the completeness record
checked by open_results and the analysis helpers, ``python -m limits.status``, and
``consolidate --out`` that never deletes what it did not write."""

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from limits.analysis import best_config, open_results
from limits.errors import ConsolidateError, StoreError
from limits.status import main as status_main
from limits.sweep import compose, run
from limits.sweep.consolidate import consolidate
from limits.sweep.consolidate import main as consolidate_main
from limits.sweep.integrity import IncompleteStoreWarning, completeness, stored_chunk

GRID = [
    "grid=point",
    "++grid.tp=[8,16]",
    "++grid.batch=[1,4,16,64]",
    "limits.progress=false",
    "store.variables=[utps,feasible,bound]",
    "store.chunk_points=2",
]


def _job(path, hardware="xpu_hbm3", model="llama3_8b", extra=()):
    cfg = compose([f"hardware={hardware}", f"model={model}", *GRID, *extra, f"store.path={path}"])
    return run(cfg, verbose=False)


def _multirun(root):
    _job(root / "0" / "sweep.zarr", "xpu_hbm3")
    _job(root / "1" / "sweep.zarr", "xpu_hbm4")


def test_killed_consolidation_leaves_nothing_open_results_prefers(tmp_path, monkeypatch):
    _multirun(tmp_path)
    original = xr.Dataset.to_zarr

    def killed(self, store, **kw):  # metadata written, no data: then the process dies
        original(self, store, **{**kw, "compute": False})
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_zarr", killed)
    with pytest.raises(KeyboardInterrupt):
        consolidate(tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / "consolidated.zarr").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    ds = open_results(tmp_path).load()
    assert bool(ds["feasible"].any()) and not bool(np.isnan(ds["utps"]).any())
    ok = best_config(ds.sel(hardware="xpu_hbm3", model="llama3_8b"), "utps")
    assert np.isfinite(float(ok["utps"]))


def test_half_written_consolidated_store_is_not_preferred(tmp_path):
    _multirun(tmp_path)
    out = consolidate(tmp_path)
    import zarr

    group = zarr.open_group(out, mode="r+", zarr_format=3, use_consolidated=False)
    del group.attrs["limits_consolidation_complete"]  # as a kill before the last step leaves it
    zarr.consolidate_metadata(out, zarr_format=3)
    assert not completeness(out).complete
    with pytest.warns(IncompleteStoreWarning, match="consolidated.zarr: INCOMPLETE"):
        ds = open_results(tmp_path)
    assert sorted(ds.hardware.values) == ["xpu_hbm3", "xpu_hbm4"]
    assert completeness(consolidate(tmp_path)).complete  # a re-run replaces it


def test_consolidate_out_existing_directory_deletes_nothing(tmp_path, capsys):
    _multirun(tmp_path)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert consolidate_main([str(tmp_path), "--out", str(precious)]) == 2
    assert "nothing was written or deleted" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "years of work"
    with pytest.raises(ConsolidateError, match="not a consolidated limits store"):
        consolidate(tmp_path, out=tmp_path / "0" / "sweep.zarr")  # a job store is data too
    assert completeness(tmp_path / "0" / "sweep.zarr").complete


def _incomplete(tmp_path):
    """Shards run with different shard.count: some blocks are never written."""
    path = tmp_path / "s.zarr"
    _job(path, extra=["shard.index=0", "shard.count=2"])
    _job(path, extra=["shard.index=1", "shard.count=3"])
    return path


def test_incomplete_store_is_refused_or_masked_and_named(tmp_path, capsys):
    path = _incomplete(tmp_path)
    record = completeness(path)
    assert not record.complete and record.done.size == 4
    missing = record.missing
    assert missing and len(missing) < record.done.size
    with pytest.raises(StoreError, match=r"INCOMPLETE: \d+ of 4 blocks never written"):
        open_results(path)
    with pytest.raises(StoreError, match="python -m limits.sweep .*store.path="):
        open_results(path)
    with pytest.warns(IncompleteStoreWarning):
        ds = open_results(path, allow_incomplete=True, decode_bound=True).load()
    for block in missing:  # blocks of 2 batch values: none of their points read as numbers
        tp, b = block
        sel = dict(tp=tp, batch=slice(2 * b, 2 * b + 2))
        assert np.isnan(ds["utps"].isel(sel)).all()
        assert not ds["feasible"].isel(sel).any()
        assert (ds["bound_label"].isel(sel) == "n/a").all()
    with pytest.warns(IncompleteStoreWarning, match="INCOMPLETE"):
        best_config(ds, "utps")
    assert status_main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out and "python -m limits.sweep" in out
    # the printed command completes the store
    command = completeness(path).command.split()
    _job(path, extra=[])
    assert completeness(path).complete and "shard.count=3" not in command
    assert status_main([str(path)]) == 0
    assert "complete (4 of 4 blocks written)" in capsys.readouterr().out
    full = open_results(path).load()
    assert not np.isnan(full["utps"]).any()


def test_resume_check_treats_nan_settings_as_equal():
    from limits.sweep.store import config_differences

    nan = float("nan")
    assert config_differences({"c": [">=", nan]}, {"c": [">=", nan]}) == []
    assert config_differences({"c": 1.0}, {"c": 2.0}) == ["c: 1.0 (store) != 2.0 (now)"]


def _flip(file):
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped byte", "deleted chunk", "truncated chunk"])
def test_corruption_is_named_on_read_and_recomputed_on_resume(tmp_path, damage, capsys):
    path = tmp_path / "s.zarr"
    _job(path)
    before = open_results(path).load()
    chunk = stored_chunk(path, "utps", (1, 0))
    if damage == "flipped byte":
        _flip(chunk)
    elif damage == "deleted chunk":
        chunk.unlink()
    else:
        chunk.write_bytes(chunk.read_bytes()[:5])
    with pytest.raises(StoreError, match=f"1 written block.* damaged .*{chunk}"):
        open_results(path)
    assert status_main(["--verify", str(path)]) == 1
    assert str(chunk) in capsys.readouterr().out
    result = _job(path)  # resume: the damaged block is computed again, the others kept
    assert result.blocks_computed == 1 and result.blocks_skipped == 3
    assert f"{chunk}" in capsys.readouterr().err
    xr.testing.assert_identical(open_results(path).load(), before)


def test_resume_with_changed_model_code_is_refused(tmp_path, monkeypatch):
    from limits.sweep import integrity

    path = tmp_path / "s.zarr"

    def stop(block):
        raise KeyboardInterrupt

    cfg = compose(["hardware=xpu_hbm3", "model=llama3_8b", *GRID, f"store.path={path}"])
    with pytest.raises(KeyboardInterrupt):
        run(cfg, verbose=False, block_callback=stop)
    written = completeness(path).done.copy()
    assert integrity.source_hash() == integrity.source_hash()  # deterministic
    monkeypatch.setattr(integrity, "source_hash", lambda: "0" * 64)  # the code changed
    with pytest.raises(StoreError, match="written by different limits code"):
        _job(path)
    np.testing.assert_array_equal(completeness(path).done, written)  # nothing mixed in


@pytest.mark.slow
@pytest.mark.subprocess
def test_multirun_keeps_the_other_jobs_and_reports_the_failed_one_at_the_end(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "-m",
            "model=llama3_8b",
            "grid=point",
            "deployment.tp=12,8",  # tp=12 cannot split the 32 heads: job 0 fails
            "limits.progress=false",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    tail = proc.stderr.strip().splitlines()[-2:]
    assert tail[0].startswith("limits.sweep: 1 job(s) of the multirun failed")
    assert tail[1].startswith("  job 0 (model=llama3_8b grid=point deployment.tp=12 ")
    assert "deployment.tp = 12" in tail[1]
    assert completeness(tmp_path / "1" / "sweep.zarr").complete  # job 1 ran after job 0 failed
    assert not (tmp_path / "0" / "sweep.zarr").exists()


@pytest.mark.slow
@pytest.mark.subprocess
def test_multirun_job_that_cannot_be_composed_fails_alone(tmp_path):
    """Hydra composes a job before its code runs: an unknown preset or a value of the wrong type
    for one job is recorded as that job's failure (hydra_plugins/limits_multirun) and the
    others run; the multirun reports them at the end and exits 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "-m",
            "model=nope,llama3_8b",  # jobs 0, 1: no such preset
            "shard.index=0,x",  # jobs 1, 3: not an integer
            "grid=point",
            "limits.progress=false",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    tail = proc.stderr.strip().splitlines()[-4:]
    assert tail[0] == "limits.sweep: 3 job(s) of the multirun failed (the others are kept):"
    assert tail[1].startswith("  job 0 (model=nope shard.index=0 ") and "model/nope" in tail[1]
    assert tail[2].startswith("  job 1 (model=nope shard.index=x ")
    assert tail[3].startswith("  job 3 (model=llama3_8b shard.index=x ")
    assert "shard.index=x" in tail[3] and "Integer" in tail[3]
    assert completeness(tmp_path / "2" / "sweep.zarr").complete  # ran after two failures
    for job in (0, 1, 3):
        assert not (tmp_path / str(job) / "sweep.zarr").exists()
        assert (tmp_path / str(job) / "limits_failed.txt").is_file()


def test_consolidation_removes_what_killed_consolidations_left(tmp_path):
    import subprocess
    import sys

    _multirun(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".consolidated.zarr.tmp-{dead.stdout.strip()}-deadbeef"
    (stale / "utps").mkdir(parents=True)
    alive = tmp_path / ".consolidated.zarr.tmp-1-cafe"  # pid 1 runs: not ours to delete
    alive.mkdir()
    consolidate(tmp_path)
    assert not stale.exists() and alive.exists()


def test_damaged_metadata_is_named_on_read_and_on_resume(tmp_path):
    path = tmp_path / "s.zarr"
    _job(path)
    meta = path / "utps" / "zarr.json"
    meta.write_text(meta.read_text()[:40])
    with pytest.raises(StoreError, match=f"unreadable metadata in {meta}"):
        open_results(path)
    with pytest.raises(StoreError, match=f"unreadable metadata in {meta}"):
        _job(path)


def _tree(root, text):
    root.mkdir()
    (root / "zarr.json").write_text(text)
    return root


def test_replacing_a_directory_swaps_it_in_one_step(tmp_path):
    from limits.sweep.integrity import exchange, replace_atomically

    a, b = _tree(tmp_path / "a", "A"), _tree(tmp_path / "b", "B")
    assert exchange(a, b)  # Linux renameat2(RENAME_EXCHANGE) on this file system
    assert (a / "zarr.json").read_text() == "B" and (b / "zarr.json").read_text() == "A"
    replace_atomically(a, b)
    assert (b / "zarr.json").read_text() == "B" and not a.exists()


def test_two_rename_fallback_and_its_leftover_put_back(tmp_path, monkeypatch):
    import os

    from limits.sweep import integrity

    monkeypatch.setattr(integrity, "exchange", lambda a, b: False)  # no renameat2 here
    out = _tree(tmp_path / "out.zarr", "old")
    integrity.replace_atomically(_tree(tmp_path / ".out.zarr.tmp-1-x", "new"), out)
    assert (out / "zarr.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    # a writer killed between the two renames: the old store aside, the new one not in place
    dead = 2**22 + 1  # above the largest pid Linux hands out (pid_max <= 2**22)
    aside = tmp_path / f".out.zarr.tmp-{dead}-y-old"
    os.rename(out, aside)
    _tree(tmp_path / f".out.zarr.tmp-{dead}-y", "half")
    integrity.remove_stale_temporaries(out)
    assert (out / "zarr.json").read_text() == "new"  # the previous store is back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


OLD_STORE = Path(__file__).parent / "data" / "store_before_checksums" / "sweep.zarr"


def test_store_from_before_checksums_is_named_and_upgraded(tmp_path, capsys):
    """A store written by limits before CRC32C and the code hash (tests/data, made by commit
    c969eab): --verify says what it lacks and the command that adds checksums; --upgrade adds
    them without changing a number; then damage is named like in any new store."""
    import shutil

    path = tmp_path / "sweep.zarr"
    shutil.copytree(OLD_STORE, path)
    before = open_results(path).load()
    assert status_main(["--verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "written before checksums" in out and "records no hash of the code" in out
    assert f"python -m limits.status --upgrade {path}" in out
    assert "decoded (no checksums)" in out

    assert status_main(["--upgrade", str(path)]) == 0
    assert "checksums added" in capsys.readouterr().out
    after = open_results(path).load()
    for name in before.variables:
        xr.testing.assert_identical(after[name], before[name])
    assert all(f.name != ".sweep.zarr" and "tmp" not in f.name for f in tmp_path.iterdir())
    assert status_main(["--verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "matched its checksum" in out and "written before checksums" not in out
    assert "records no hash of the code" in out  # not invented by the upgrade
    assert status_main(["--upgrade", str(path)]) == 0
    assert "already has checksums" in capsys.readouterr().out
    chunk = stored_chunk(path, "utps", (1, 0))
    _flip(chunk)  # after the upgrade: named, like in any new store
    with pytest.raises(StoreError, match=f"damaged .*{chunk}"):
        open_results(path)


def test_upgrade_refuses_a_store_with_a_chunk_that_does_not_decode(tmp_path):
    import shutil

    from limits.sweep.upgrade import upgrade

    path = tmp_path / "sweep.zarr"
    shutil.copytree(OLD_STORE, path)
    chunk = stored_chunk(path, "utps", (0, 1))
    chunk.write_bytes(chunk.read_bytes()[:5])
    listing = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(
        StoreError, match=f"cannot add checksums: 1 chunk.*{chunk}.*nothing was changed"
    ):
        upgrade(path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == listing
    with pytest.raises(StoreError, match="not a limits sweep store"):
        upgrade(path / "utps")


def test_a_sweep_removes_templates_left_by_a_killed_writer(tmp_path):
    """A sweep killed while writing its store template leaves a hidden `.NAME.tmp-PID-*`
    directory; the next sweep into that path removes it (its writer no longer runs) and leaves
    a live writer's alone."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    store = tmp_path / "sweep.zarr"
    stale = tmp_path / f".sweep.zarr.tmp-{int(dead.stdout)}-0123abcd"
    live = tmp_path / f".sweep.zarr.tmp-{os.getpid()}-0123abcd"
    for d in (stale, live):
        (d / "c").mkdir(parents=True)
    cfg = compose(["grid=point", f"store.path={store}", "limits.progress=false"])
    run(cfg, verbose=False)
    assert store.exists() and not stale.exists() and live.exists()


def test_a_chunk_write_killed_midway_leaves_the_old_file_and_a_resume_removes_the_rest(
    tmp_path, monkeypatch
):
    """Chunk files and completeness marks are written through a hidden sibling renamed over
    them: a writer dying mid-write (simulated: the write fails after half the bytes) leaves
    the old file whole, so a killed sweep's store still opens; the next sweep into the store
    removes siblings whose writer is gone and keeps a live writer's."""
    import subprocess
    import sys

    from limits.sweep.integrity import PARTIAL_SUFFIX, write_file_atomically

    target = tmp_path / "0"
    target.write_bytes(b"old chunk")
    real = Path.write_bytes

    def dies_midway(self, data):
        real(self, data[: len(data) // 2])
        raise KeyboardInterrupt  # as a signal would

    monkeypatch.setattr(Path, "write_bytes", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        write_file_atomically(target, b"the new chunk's bytes")
    monkeypatch.undo()
    assert target.read_bytes() == b"old chunk" and os.listdir(tmp_path) == ["0"]

    store = tmp_path / "sweep.zarr"
    _job(store)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    chunks = stored_chunk(store, "utps", (0, 0)).parent
    stale = chunks / f".c.0.0.{int(dead.stdout)}-1{PARTIAL_SUFFIX}"
    live = chunks / f".c.0.0.{os.getpid()}-1{PARTIAL_SUFFIX}"
    for f in (stale, live):
        f.write_bytes(b"half")
    xr.open_zarr(store).load()  # hidden siblings are never read
    stored_chunk(store, "_progress/block_done", (1, 0)).unlink()  # one block to redo
    _job(store)
    assert not stale.exists() and live.exists()
