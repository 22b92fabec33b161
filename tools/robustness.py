"""The robustness harness: every catalogued bad input and a set of injected faults, counted.

``python -m tools.robustness`` prints one line::

    bad inputs: N tried, N refused in one line, 0 tracebacks, 0 silently accepted;
    faults: M tried, M survived, 0 with data lost

Bad inputs are the sweep catalogue (``tools.bad_inputs.BAD_INPUTS``, run as the command
line would) plus Python API values (``API_BAD_INPUTS``) and hand-written Hugging Face configs
(``HF_BAD_INPUTS``). Each is *refused in one line* when it
raises a ``LimitsError`` (or Hydra's composition error) whose message is one line, a
*traceback* when anything else is raised, *silently accepted* when nothing is.

Each fault (``FAULTS``) breaks a store the way a crash, a disk or a user would, then checks
the promise of docs/security.md: the store is either in its previous state or complete, the
damage is named, and the analysis or a resume returns exactly the numbers of an undisturbed
run. *Survived*: all of that holds. *Data lost*: a check failed (files gone, wrong numbers
returned without a word). tests/test_robustness.py runs it and requires zero tracebacks,
zero silently accepted inputs and zero faults with data lost.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "API_BAD_INPUTS",
    "HF_BAD_INPUTS",
    "FAULTS",
    "Tally",
    "run_bad_inputs",
    "run_faults",
    "main",
]

REPO = Path(__file__).resolve().parents[1]
GRID = (
    "grid=point",
    "++grid.tp=[8,16]",
    "++grid.batch=[1,4,16,64]",
    "limits.progress=false",
    "store.variables=[utps,feasible,bound]",
    "store.chunk_points=2",
)


def _api_cases() -> list[tuple[str, Callable[[], Any]]]:
    import jax.numpy as jnp
    import numpy as np

    import limits

    def params(**kw: Any) -> Callable[[], Any]:
        return lambda: limits.load_params("xpu_hbm3", "llama3_8b", **kw)

    return [
        ("negative bandwidth as a JAX array", params(mem_bw=jnp.asarray(-4e12))),
        ("a JAX grid with one negative value", params(mem_bw=jnp.asarray([4e12, -1.0]))),
        ("complex bandwidth", params(mem_bw=4e12 + 1j)),
        ("integer beyond any float", params(batch=10**400)),
        ("bandwidth that overflows float32", params(mem_bw=1e40)),
        ("boolean array", params(mem_bw=np.array([True]))),
        ("boolean", params(batch=True)),
        ("NaN", params(mem_bw=float("nan"))),
        ("text without a unit kind", params(mem_bw="fast")),
        ("unit of another kind", params(mem_bw="4 TiB")),
        ("unknown parameter", params(bandwidth=4e12)),
        ("tp splitting the heads, as a JAX value", params(tp=jnp.asarray(12.0))),
        ("unknown hardware preset", lambda: limits.load_params("nope", "llama3_8b")),
    ]


#: Python API inputs that must be refused (name, thunk); built lazily (imports JAX)
API_BAD_INPUTS = _api_cases

HF_CONFIG = REPO / "tests" / "data" / "hf" / "llama-3.1-405b.json"


def _hf_cases() -> list[tuple[str, Callable[[], Any]]]:
    """Hand-written Hugging Face configs the importer must refuse (issue 13, case 5): each
    a change to Llama 3.1 405B's public config.json, or a bad file, name or path."""
    import json

    from limits.presets.hf import main, model_from_hf_config, preset_yaml

    good = json.loads(HF_CONFIG.read_text())

    def changed(**changes: Any) -> Callable[[], Any]:
        return lambda: model_from_hf_config({**good, **changes})

    def from_text(text: str) -> Callable[[], Any]:
        def load() -> Any:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "config.json"
                path.write_text(text)
                return model_from_hf_config(path)

        return load

    def cli_exit(*argv: str) -> Callable[[], Any]:
        """The CLI must exit 2 with one line; exit 0 is a silent acceptance."""

        def call() -> Any:
            import contextlib
            import io

            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(list(argv))
            if code != 0:
                from limits.errors import ParameterError

                raise ParameterError(err.getvalue().strip())

        return call

    return [
        ("hf: config that is not valid JSON", from_text('{"model_type": "llama",')),
        ("hf: JSON list instead of an object", from_text("[1, 2]")),
        ("hf: head count as a string", changed(num_attention_heads="128")),
        ("hf: fractional hidden size", changed(hidden_size=16384.5)),
        ("hf: vocab_size true", changed(vocab_size=True)),
        ("hf: zero attention heads (a divisor)", changed(num_attention_heads=0)),
        ("hf: zero KV heads (a divisor)", changed(num_key_value_heads=0)),
        ("hf: KV heads that do not divide the heads", changed(num_key_value_heads=7)),
        ("hf: tie_word_embeddings as the string false", changed(tie_word_embeddings="false")),
        (
            "hf: use_sliding_window as the string false",
            changed(
                model_type="qwen2",
                use_sliding_window="false",
                sliding_window=4096,
                max_window_layers=40,
            ),
        ),
        ("hf: unsupported model_type", changed(model_type="bert")),
        ("hf: newline in the preset name", lambda: preset_yaml(HF_CONFIG, name="x\nvocab: 1")),
        ("hf: newline in --name on the command line", cli_exit(str(HF_CONFIG), "--name", "a\nb")),
    ]


#: Hugging Face configs the importer must refuse (name, thunk)
HF_BAD_INPUTS = _hf_cases


@dataclasses.dataclass
class Tally:
    """Counts of one harness run (and the names behind the bad counts)."""

    inputs_tried: int = 0
    inputs_refused: int = 0
    tracebacks: list[str] = dataclasses.field(default_factory=list)
    silent: list[str] = dataclasses.field(default_factory=list)
    faults_tried: int = 0
    faults_survived: int = 0
    data_lost: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        return (
            f"bad inputs: {self.inputs_tried} tried, {self.inputs_refused} refused in one "
            f"line, {len(self.tracebacks)} tracebacks, {len(self.silent)} silently accepted; "
            f"faults: {self.faults_tried} tried, {self.faults_survived} survived, "
            f"{len(self.data_lost)} with data lost"
        )


def _classify(tally: Tally, what: str, thunk: Callable[[], tuple[str, BaseException | None]]):
    from hydra.errors import HydraException

    from limits.errors import LimitsError

    tally.inputs_tried += 1
    try:
        message, err = thunk()
    except AssertionError as ran:  # tools.bad_inputs.attempt: the sweep ran
        tally.silent.append(f"{what}: {ran}")
        return
    except Exception as err:  # counted as a traceback
        tally.tracebacks.append(f"{what}: {type(err).__name__}: {err}")
        return
    if err is None:
        tally.silent.append(what)
    elif isinstance(err, (LimitsError, HydraException)) and "\n" not in message:
        tally.inputs_refused += 1
    else:
        tally.tracebacks.append(f"{what}: {type(err).__name__}: {message}")


def run_bad_inputs(tally: Tally, workdir: Path) -> None:
    """Every catalogued sweep input and every Python API input."""
    from limits.errors import LimitsError
    from tools.bad_inputs import BAD_INPUTS, attempt

    for i, case in enumerate(BAD_INPUTS):
        store = workdir / f"bad{i}.zarr"

        def thunk(c: Any = case, s: Path = store) -> tuple[str, BaseException | None]:
            return attempt(c.overrides, s)

        _classify(tally, case.what, thunk)
    for what, fn in [*API_BAD_INPUTS(), *HF_BAD_INPUTS()]:

        def call(fn: Callable[[], Any] = fn) -> tuple[str, BaseException | None]:
            try:
                fn()
            except LimitsError as err:
                return str(err), err
            return "", None

        _classify(tally, what, call)


# --------------------------------------------------------------------------- faults


def _sweep(
    path: Path,
    extra: tuple[str, ...] = (),
    hardware: str = "xpu_hbm3",
    grid: tuple[str, ...] = GRID,
    **kw: Any,
):
    from limits.sweep import compose, run

    cfg = compose([f"hardware={hardware}", "model=llama3_8b", *grid, *extra, f"store.path={path}"])
    return run(cfg, verbose=False, **kw)


def _reference(root: Path) -> Any:
    """The numbers of an undisturbed run (read once)."""
    from limits.analysis import open_results

    path = root.parent / "reference.zarr"
    if not path.exists():
        _sweep(path)
    return open_results(path).load()


def _same_as_reference(root: Path, path: Path) -> None:
    import xarray as xr

    from limits.analysis import open_results

    got = open_results(path).load()
    ref = _reference(root)
    for name in ref.data_vars:
        xr.testing.assert_equal(got[name], ref[name])


def _interrupted_sweep(root: Path) -> None:
    path = root / "s.zarr"

    def stop(block: tuple[int, ...]) -> None:
        raise KeyboardInterrupt

    try:
        _sweep(path, block_callback=stop)
    except KeyboardInterrupt:
        pass
    _sweep(path)
    _same_as_reference(root, path)


def _damaged_chunk(how: str) -> Callable[[Path], None]:
    def fault(root: Path) -> None:
        from limits.analysis import open_results
        from limits.errors import StoreError
        from limits.sweep.integrity import stored_chunk

        path = root / "s.zarr"
        _sweep(path)
        chunk = stored_chunk(path, "utps", (1, 0))
        data = bytearray(chunk.read_bytes())
        if how == "flipped byte":
            data[len(data) // 2] ^= 0xFF
            chunk.write_bytes(bytes(data))
        elif how == "truncated chunk":
            chunk.write_bytes(bytes(data[:5]))
        else:
            chunk.unlink()
        try:
            open_results(path)
        except StoreError as err:
            assert str(chunk) in str(err), err
        else:
            raise AssertionError("a damaged store was read without a word")
        result = _sweep(path)  # resume: the damaged block is recomputed
        assert result.blocks_computed == 1, result
        _same_as_reference(root, path)

    return fault


def _damaged_metadata(root: Path) -> None:
    from limits.analysis import open_results
    from limits.errors import StoreError

    path = root / "s.zarr"
    _sweep(path)
    meta = path / "utps" / "zarr.json"
    meta.write_text(meta.read_text()[:40])
    for attempt in (lambda: open_results(path), lambda: _sweep(path)):
        try:
            attempt()
        except StoreError as err:
            assert str(meta) in str(err), err
        else:
            raise AssertionError("a store with damaged metadata was used without a word")
    shutil.rmtree(path)  # the remedy the message gives
    _sweep(path)
    _same_as_reference(root, path)


def _incomplete_shards(root: Path) -> None:
    from limits.analysis import open_results
    from limits.errors import StoreError
    from limits.sweep.integrity import completeness

    path = root / "s.zarr"
    _sweep(path, ("shard.index=0", "shard.count=2"))
    _sweep(path, ("shard.index=1", "shard.count=3"))
    try:
        open_results(path)
    except StoreError as err:
        assert "python -m limits.sweep" in str(err), err
    else:
        raise AssertionError("an incomplete store was read without a word")
    assert not completeness(path).complete
    _sweep(path)  # the printed remedy: one job writes the missing blocks
    _same_as_reference(root, path)


#: a grid of many small blocks (64 points, 32 blocks): a kill lands between block writes
KILL_BATCH = "++grid.batch={start:1,stop:32,num:32}"
KILL_GRID = (*GRID[:2], KILL_BATCH, *GRID[3:])
#: seed of the kill moments (fixed: a failure can be replayed)
KILL_SEED = 13


def _sweep_cli(path: Path, run_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """``python -m limits.sweep`` of the ``KILL_GRID`` sweep into ``path``."""
    return [
        sys.executable,
        "-m",
        "limits.sweep",
        "hardware=xpu_hbm3",
        "model=llama3_8b",
        *KILL_GRID,
        *extra,
        f"store.path={path}",
        f"hydra.run.dir={run_dir}",
    ]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")


def _blocks_marked(path: Path, shard: tuple[int, int] | None = None) -> int:
    """Blocks marked written in the store at ``path`` (its completeness record's chunk files),
    with ``shard = (index, count)`` only that shard's (every count-th block, as the sweep
    deals them)."""
    import json

    import numpy as np

    from limits.sweep.integrity import marked_blocks

    record = path / "_progress" / "block_done"
    try:
        shape = json.loads((record / "zarr.json").read_text())["shape"]
    except (OSError, ValueError):
        return 0
    marked = 0
    for block in marked_blocks(path):
        flat = int(np.ravel_multi_index(block, shape))
        marked += shard is None or flat % shard[1] == shard[0]
    return marked


def _kill_at(
    cmd: list[str],
    path: Path,
    delay: float,
    blocks: int | None = None,
    shard: tuple[int, int] | None = None,
) -> bool:
    """Start ``cmd``; SIGKILL it ``delay`` seconds later or, with ``blocks``, as soon as that
    many blocks (of ``shard``) of the store at ``path`` are marked written. False if it had
    ended first."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    while proc.poll() is None:
        due = (
            _blocks_marked(path, shard) >= blocks
            if blocks is not None
            else time.perf_counter() - t0 >= delay
        )
        if due:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.001)
    return False


def _timed_run(cmd: list[str], path: Path) -> tuple[float, float]:
    """Run ``cmd`` to the end: seconds until the store at ``path`` appeared, and in all."""
    t0 = time.perf_counter()
    appeared = None
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: nothing to fill up or leak
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None:
            if appeared is None and path.exists():
                appeared = time.perf_counter() - t0
            time.sleep(0.002)
        total = time.perf_counter() - t0
        err.seek(0)
        assert proc.returncode == 0, err.read().decode()[-500:]
    return (appeared if appeared is not None else total), total


def _written_blocks_are_final(path: Path, ref: Any) -> int:
    """After a kill: no store (the previous state), or one whose blocks marked written hold
    exactly the final numbers and whose unwritten blocks are refused or masked, never read as
    numbers. Returns the number of blocks written."""
    import warnings

    import numpy as np
    import xarray as xr

    from limits.analysis import open_results
    from limits.errors import StoreError
    from limits.sweep.integrity import IncompleteStoreWarning, completeness

    if not path.exists():
        return 0
    record = completeness(path)
    if not record.complete:
        try:
            open_results(path)
        except StoreError as err:
            assert "INCOMPLETE" in str(err), err
        else:
            raise AssertionError("a killed sweep's store was read without a word")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteStoreWarning)
        masked = open_results(path, allow_incomplete=True).load()
    raw = xr.open_zarr(path).load()  # the stored numbers, unmasked
    done = np.asarray(record.done)
    for name in ref.data_vars:
        chunks = raw[name].encoding["chunks"]
        for block in np.ndindex(*done.shape):
            region = {
                d: slice(i * c, (i + 1) * c) for d, i, c in zip(ref[name].dims, block, chunks)
            }
            if done[block]:  # written: exactly the final numbers
                xr.testing.assert_equal(raw[name][region], ref[name][region])
            else:  # unwritten: never read as numbers
                got = masked[name][region].values
                assert (np.isnan(got) if got.dtype.kind == "f" else got <= 0).all(), name
    return int(np.asarray(record.done).sum())


def _kill_reference(root: Path, extra: tuple[str, ...] = ()) -> Any:
    from limits.analysis import open_results

    path = root / "reference.zarr"
    _sweep(path, extra, grid=KILL_GRID)
    return open_results(path).load()


def _sweep_sigkill(kills: int) -> Callable[[Path], None]:
    """SIGKILL ``python -m limits.sweep`` at ``kills`` random moments (seeded: one during the
    start-up, the others once a random number more blocks is written), each kill resuming
    what the previous one left: every kill leaves no store or written blocks with
    their final numbers; then one resume gives the undisturbed numbers."""

    def fault(root: Path) -> None:
        import random

        import xarray as xr

        from limits.analysis import open_results

        rng = random.Random(KILL_SEED)
        ref = _kill_reference(root)
        timing = root / "timing.zarr"
        appeared, total = _timed_run(_sweep_cli(timing, root / "run"), timing)
        path = root / "s.zarr"
        written: list[int] = []
        for k in range(kills):  # the first at a random moment of the start-up, the others
            # once a random number more blocks is marked written (each kill resumes the last)
            delay = rng.uniform(0.1, 0.9) * appeared if k == 0 else total
            blocks = min(31, written[-1] + rng.randint(1, 10)) if k else None
            _kill_at(_sweep_cli(path, root / "run"), path, delay, blocks)
            written.append(_written_blocks_are_final(path, ref))
        assert any(0 < n < 32 for n in written), (
            f"no kill landed while blocks were written: {written}"
        )
        _sweep(path, grid=KILL_GRID)  # the resume
        got = open_results(path).load()
        for name in ref.data_vars:
            xr.testing.assert_equal(got[name], ref[name])

    return fault


def _shard_sigkill(rounds: int) -> Callable[[Path], None]:
    """Two shards of one store at once; shard 1 SIGKILLed at a random moment (seeded: by time,
    then once a random number of its blocks is written) while shard 0 finishes; re-running
    shard 1 must complete the store with the undisturbed numbers."""

    def fault(root: Path) -> None:
        import random

        import xarray as xr

        from limits.analysis import open_results
        from limits.sweep.integrity import completeness

        rng = random.Random(KILL_SEED + 1)
        ref = _kill_reference(root)
        shards = [("shard.index=0", "shard.count=2"), ("shard.index=1", "shard.count=2")]
        timing = root / "timing.zarr"
        appeared, total = _timed_run(_sweep_cli(timing, root / "run", shards[1]), timing)
        killed: list[int] = []  # blocks of the killed shard written when it was killed
        for k in range(rounds):
            path = root / f"s{k}.zarr"
            other = subprocess.Popen(
                _sweep_cli(path, root / "run0", shards[0]),
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            delay = rng.uniform(0.1, 1.0) * total
            blocks = rng.randint(1, 15) if k % 2 else None  # of its 16 blocks
            _kill_at(_sweep_cli(path, root / "run1", shards[1]), path, delay, blocks, (1, 2))
            assert other.wait(timeout=300) == 0, "the other shard failed"
            _written_blocks_are_final(path, ref)
            killed.append(_blocks_marked(path, (1, 2)))
            _sweep(path, shards[1], grid=KILL_GRID)  # the killed shard again
            assert completeness(path).complete
            got = open_results(path).load()
            for name in ref.data_vars:
                xr.testing.assert_equal(got[name], ref[name])
        assert any(0 < n < 16 for n in killed), (
            f"no kill landed while blocks were written: {killed}"
        )

    return fault


def _multirun(root: Path) -> Path:
    _sweep(root / "0" / "sweep.zarr", hardware="xpu_hbm3")
    _sweep(root / "1" / "sweep.zarr", hardware="xpu_hbm4")
    return root


def _check_multirun(root: Path) -> None:
    import numpy as np

    from limits.analysis import open_results

    ds = open_results(root).load()
    ref = _reference(root)
    np.testing.assert_array_equal(
        ds["utps"].sel(hardware="xpu_hbm3", model="llama3_8b").values, ref["utps"].values
    )
    assert bool(ds["feasible"].any())


def _consolidation_interrupted(root: Path) -> None:
    import xarray as xr

    from limits.sweep.consolidate import consolidate

    _multirun(root)
    original = xr.Dataset.to_zarr

    def killed(self: Any, store: Any, **kw: Any) -> None:
        original(self, store, **{**kw, "compute": False})
        raise KeyboardInterrupt

    xr.Dataset.to_zarr = killed  # type: ignore[method-assign,assignment]
    try:
        consolidate(root)
    except KeyboardInterrupt:
        pass
    finally:
        xr.Dataset.to_zarr = original  # type: ignore[method-assign]
    assert not (root / "consolidated.zarr").exists()
    _check_multirun(root)


def _consolidation_sigkill(kills: int) -> Callable[[Path], None]:
    """SIGKILL ``python -m limits.sweep.consolidate`` at spread-out moments."""

    def fault(root: Path) -> None:
        from limits.sweep.consolidate import consolidate
        from limits.sweep.integrity import completeness

        _multirun(root)
        env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
        cmd = [sys.executable, "-m", "limits.sweep.consolidate", str(root)]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
        full = time.perf_counter() - t0
        shutil.rmtree(root / "consolidated.zarr")
        for k in range(kills):
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(full * (0.3 + 0.7 * k / max(1, kills - 1)))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            out = root / "consolidated.zarr"
            assert not out.exists() or completeness(out).complete, f"kill {k}"
            _check_multirun(root)
            if out.exists():
                shutil.rmtree(out)
        consolidate(root)  # and a run after the kills cleans up their hidden leftovers
        assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
        _check_multirun(root)

    return fault


#: the steps of replacing an existing consolidated store (limits.sweep.integrity.
#: replace_atomically) at which ``_KILL_AT_STEP`` SIGKILLs the consolidation
REPLACE_STEPS = (
    "before the swap",
    "after the swap",
    "while deleting the old store",
    "between the fallback's two renames",  # where renameat2(RENAME_EXCHANGE) is unavailable
)

#: ``python -c`` driver: consolidate ARGV[1], SIGKILL itself at step ARGV[2] of the replacement
_KILL_AT_STEP = """
import os, signal, sys
from pathlib import Path
from limits.sweep import integrity
from limits.sweep.consolidate import consolidate
step, real_exchange = sys.argv[2], integrity.exchange
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def die_on_call(n, name):
    real, calls = getattr(os, name), [0]
    def counted(*args, **kw):
        calls[0] += 1
        if calls[0] == n:
            die()
        return real(*args, **kw)
    setattr(os, name, counted)
def exchange(a, b):
    if step == "before the swap":
        die()
    if step == "between the fallback's two renames":
        die_on_call(2, "rename")  # the first moves the old store aside
        return False
    swapped = real_exchange(a, b)
    if step == "after the swap":
        die()
    die_on_call(3, "unlink")  # a few files of the old store deleted
    return swapped
integrity.exchange = exchange
consolidate(Path(sys.argv[1]))
"""


def _consolidation_replaced_sigkill(root: Path) -> None:
    """Replace an existing consolidated store, SIGKILLed at each step of the replacement: the
    previous store or the complete new one is at its path (the fallback's one window: neither,
    and the next consolidation puts the previous one back)."""
    import zarr

    from limits.sweep.consolidate import consolidate
    from limits.sweep.integrity import completeness, remove_stale_temporaries
    from limits.sweep.store import quiet_zarr_warnings

    _multirun(root)
    out = root / "consolidated.zarr"
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")

    def generation() -> str:
        group = zarr.open_group(out, mode="r", zarr_format=3, use_consolidated=False)
        return str(group.attrs.get("harness_generation", "new"))

    for step in REPLACE_STEPS:
        consolidate(root)
        group = zarr.open_group(out, mode="r+", zarr_format=3, use_consolidated=False)
        group.attrs["harness_generation"] = "old"
        with quiet_zarr_warnings():
            zarr.consolidate_metadata(out, zarr_format=3)
        proc = subprocess.run(
            [sys.executable, "-c", _KILL_AT_STEP, str(root), step],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, f"{step}: {proc.stderr[-300:]}"
        if step == REPLACE_STEPS[-1]:  # neither at the path: the job stores are read
            assert not out.exists(), step
            _check_multirun(root)
            remove_stale_temporaries(out)  # what the next consolidation does first
            assert out.exists(), f"{step}: the previous store was not put back"
        want = "old" if step == "before the swap" or step == REPLACE_STEPS[-1] else "new"
        assert completeness(out).complete and generation() == want, (step, generation())
        _check_multirun(root)
    consolidate(root)  # and a run after the kills cleans up their hidden leftovers
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    _check_multirun(root)


def _multirun_with_failing_jobs(root: Path) -> None:
    """A real multirun of four jobs: one runs, one fails in the sweep (tp cannot split the
    heads), two cannot be composed (no such preset): the good one is kept and complete, each
    bad one is recorded with its reason, reported at the end, exit 2, no traceback."""
    from limits.sweep.integrity import completeness

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "-m",
            "model=llama3_8b,nope",
            "deployment.tp=8,12",
            "grid=point",
            "limits.progress=false",
            f"hydra.sweep.dir={root}",
        ],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1000:]
    assert "3 job(s) of the multirun failed" in proc.stderr, proc.stderr[-1000:]
    assert completeness(root / "0" / "sweep.zarr").complete
    for job in (1, 2, 3):
        assert (root / str(job) / "limits_failed.txt").is_file(), job
        assert not (root / str(job) / "sweep.zarr").exists(), job


def _out_existing_directory(root: Path) -> None:
    from limits.sweep.consolidate import main as consolidate_main

    _multirun(root)
    precious = root / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    code = consolidate_main([str(root), "--out", str(precious)])
    assert code == 2 and (precious / "notes.txt").read_text() == "keep me"


def _code_changed(root: Path) -> None:
    from limits.errors import StoreError
    from limits.sweep import integrity

    path = root / "s.zarr"

    def stop(block: tuple[int, ...]) -> None:
        raise KeyboardInterrupt

    try:
        _sweep(path, block_callback=stop)
    except KeyboardInterrupt:
        pass
    real = integrity.source_hash
    integrity.source_hash = lambda: "0" * 64  # type: ignore[assignment]
    try:
        _sweep(path)
    except StoreError:
        pass
    else:
        raise AssertionError("a resume with changed code mixed old and new blocks")
    finally:
        integrity.source_hash = real  # type: ignore[assignment]
    _sweep(path)
    _same_as_reference(root, path)


def _engine_error_leaves_nothing(root: Path) -> None:
    from tools.bad_inputs import BAD_INPUTS, attempt

    path = root / "s.zarr"
    for case in BAD_INPUTS:
        if case.what in (
            "compression level out of range",
            "NaN constraint",
            "size limit refusing a single point",
        ):
            attempt(case.overrides, path)
            assert not path.exists(), case.what
    _sweep(path)  # the corrected re-run is not blocked
    _same_as_reference(root, path)


#: name -> fault(workdir); each raises AssertionError when data were lost or misreported
FAULTS: dict[str, Callable[[Path], None]] = {
    "sweep interrupted, then resumed": _interrupted_sweep,
    "sweep SIGKILLed (4 random moments), then resumed": _sweep_sigkill(4),
    "shard SIGKILLed while the other runs (2 random moments)": _shard_sigkill(2),
    "flipped byte in a chunk": _damaged_chunk("flipped byte"),
    "truncated chunk": _damaged_chunk("truncated chunk"),
    "deleted chunk": _damaged_chunk("deleted chunk"),
    "truncated zarr.json of a variable": _damaged_metadata,
    "shards with different shard.count": _incomplete_shards,
    "consolidation interrupted after its metadata": _consolidation_interrupted,
    "consolidation SIGKILLed (4 moments)": _consolidation_sigkill(4),
    "consolidated store replaced, SIGKILLed at each step": _consolidation_replaced_sigkill,
    "consolidate --out an existing directory": _out_existing_directory,
    "multirun with jobs that fail and jobs that cannot be composed": _multirun_with_failing_jobs,
    "code changed between run and resume": _code_changed,
    "engine errors, then the corrected re-run": _engine_error_leaves_nothing,
}


def run_faults(tally: Tally, workdir: Path, names: list[str] | None = None) -> None:
    for name, fault in FAULTS.items():
        if names is not None and name not in names:
            continue
        tally.faults_tried += 1
        root = workdir / f"fault{tally.faults_tried}"
        root.mkdir()
        try:
            fault(root)
        except Exception as err:  # any failure of the promise counts
            tally.data_lost.append(f"{name}: {type(err).__name__}: {err}")
        else:
            tally.faults_survived += 1


def main(argv: list[str] | None = None) -> int:
    """Run the harness; print the counts (and what failed); exit 1 if anything did."""
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        run_bad_inputs(tally, Path(tmp))
        run_faults(tally, Path(tmp))
    for item in tally.tracebacks + tally.silent + tally.data_lost:
        print(f"  {item}")
    print(tally.line())
    return 1 if tally.tracebacks or tally.silent or tally.data_lost else 0


if __name__ == "__main__":
    sys.exit(main())
