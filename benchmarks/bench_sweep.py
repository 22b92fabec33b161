"""Sweep throughput and memory against a write-only baseline (not a test; prints a report).

Run from the repository root::

    python benchmarks/bench_sweep.py            # the figures and their targets (~3 min)
    python benchmarks/bench_sweep.py --codecs   # plus write speed and size of each store.codec
    python benchmarks/bench_sweep.py --reduce   # plus (d): the same grid reduced over batch
    python benchmarks/bench_sweep.py --startup-only   # only (s), in seconds

It prints, each as the median of ``--repeats`` runs:

(s) start-up: a bare ``python -c "import jax"`` process against a one-point CLI query (``python -m
limits.sweep grid=point ...``, compilation cache warmed by one untimed run), its ``--help``, and
a preset question (``python -m limits.query best --hardware h200 --model llama3_70b --ttft
"300 ms" --tpot "20 ms"``, same warm cache), timed alternately, and their ratios to the bare
``import jax`` (target <= 2 for the one-point query); ``--startup-only`` runs only this part;

(w) a warm single-point ``limits.evaluate`` from Python (target < 1 ms) against a jitted
function of the same parameters that returns one of them (JAX's dispatch alone), timed
alternately;

(a) model points/s without I/O: the jitted block function of ``limits.sweep.engine`` on float32
computing every variable a default sweep stores (``DEFAULT_OUTPUTS``) over every axis (the full
layout: an upper bound of what a lean sweep computes), one block of the default
chunk shape, ``block_until_ready``, compile excluded; (a0) the model's ceiling: XLA writing the
same outputs (shapes, dtypes) from the axis values with one add each, no model;

(b) end-to-end points/s of ``limits.sweep.run`` (the real engine) into a zarr store in a
temporary directory, default codec and chunking; (c) the baseline: the same arrays (read back
from (b)'s store beforehand, so same values, dtypes, codec and chunks) written region by region
with the engine's store writer into a fresh copy of the empty template, without computing
anything; the ratio (b)/(c); (c0) the write path's ceiling: the same arrays, chunk by chunk,
encoded with numcodecs' Blosc (same codec, level, shuffle) and written one file per chunk, in a
plain loop (Blosc's own threads only), timed alternately with (b) and (c); the ratios (b)/(c0)
and (c)/(c0). (c) and (c0) write exactly the arrays the store holds: with the lean layout (the
default) each variable over the axes it depends on, each chunk once; and the stored bytes per
grid point (target <= 25);

with ``--reduce``, (d) end-to-end points/s (grid points evaluated) of the same sweep reduced over
``batch`` on device (``REDUCE``: max stps with utps >= 50 among feasible points) and its
speed-up over (b); and the peak resident memory of the end-to-end sweep (fresh process per size,
``VmHWM`` of ``/proc/self/status``) at 2e7 and 2e8 grid points.

The grid is the default study's axes (xPU-HBM3, Llama3-405B): ``tp`` (8 values) x ``batch``
(250) x ``context`` (250) x ``sync_latency`` (40, or 400 for the 2e8-point sweep).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # import this checkout's `limits`, not an installed copy
    sys.path.insert(0, str(REPO))

from limits.model.outputs import SERVING_FIGURES  # noqa: E402  (after the path above)

#: targets of the issue on a 2-core machine
TARGET_MODEL_PPS = 1e8  # (a) points/s, float32
TARGET_RATIO = 0.5  # (b) / (c), and (b) / (c0) in issue 14
TARGET_STARTUP_RATIO = 2.0  # (s): one-point CLI query / bare `import jax` process
TARGET_EVALUATE_S = 1e-3  # (w): one warm single-point `limits.evaluate` [s]
TARGET_PEAK_RSS_B = 2e9  # peak RSS of the 2e8-point sweep [B]
# "flat": a sweep that held its grid in memory would need 10x the memory for 10x the points;
# the engine's is bounded by a few blocks, but glibc's allocator caches freed block buffers,
# so the high-water mark still varies by ~0.2 GB from run to run (docs/sweep.md).
TARGET_RSS_GROWTH = 1.5  # peak RSS(2e8) / peak RSS(2e7) at most this
TARGET_BYTES_PER_POINT = 25.0  # stored bytes per grid point of the 2e7-point default sweep


def grid_overrides(
    n_sync: int = 40,
    n_batch: int = 250,
    n_context: int = 250,
    tps: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
) -> list[str]:
    """Hydra overrides of the benchmark grid: ``len(tps) x n_batch x n_context x n_sync``."""
    return [
        "grid=point",
        f"++grid.tp=[{','.join(str(t) for t in tps)}]",
        f"++grid.batch={{start:1,stop:{n_batch},num:{n_batch}}}",
        f"++grid.context={{start:1024,stop:131072,num:{n_context}}}",
        f"++grid.sync_latency={{start:0.1us,stop:10us,num:{n_sync},scale:log}}",
        "limits.progress=false",
    ]


#: the reduction of (d): for every other grid point, the batch of most stps with utps >= 50
REDUCE = (
    "reduce.over=[batch]",
    "reduce.objective=stps",
    "reduce.mode=max",
    '++reduce.constraints.utps=[">=",50]',
)


def _median_rate(points: int, seconds: Sequence[float]) -> float:
    return points / statistics.median(seconds)


def _one_block(
    overrides: Sequence[str], variables: Sequence[str] | None = None
) -> tuple[Any, Any, tuple, tuple[int, ...], Any]:
    """The block function of a sweep of ``overrides`` computing ``variables`` (default:
    ``DEFAULT_OUTPUTS``), its cast base parameters, the axis values of its first block, the
    block shape and the dtype."""
    import jax.numpy as jnp
    import numpy as np
    from omegaconf import OmegaConf

    from limits.model.outputs import DEFAULT_OUTPUTS
    from limits.sweep import compose
    from limits.sweep.blocks import BlockFunction
    from limits.sweep.config import params_from_cfg
    from limits.sweep.engine import BlockPlan, cast_params
    from limits.sweep.grid import parse_grid
    from limits.sweep.store import chunk_shape

    cfg = compose(list(overrides))
    dtype = np.dtype(cfg.precision)
    grid = parse_grid(OmegaConf.to_container(cfg.grid, resolve=True))
    chunks = chunk_shape(
        grid.shape,
        int(cfg.store.chunk_points),
        OmegaConf.to_container(cfg.store.chunks),
        grid.names,
    )
    plan = BlockPlan(grid.axes, chunks)
    fn = BlockFunction(grid.names, chunks, tuple(variables or DEFAULT_OUTPUTS))
    base = cast_params(params_from_cfg(cfg), dtype)
    values = tuple(jnp.asarray(v) for v in plan.axis_values((0,) * len(chunks), dtype))
    return fn, base, values, chunks, dtype


def _time_calls(call: Any, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``call`` (after one untimed call: compile)."""
    import jax

    jax.block_until_ready(call())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    return times


def warm_evaluate(repeats: int = 3, calls: int = 50) -> dict[str, Any]:
    """(w) Seconds of one warm ``limits.evaluate`` of a single point (xPU-HBM3, Llama3-405B,
    tp 32, context 4096) and, timed alternately, of the floor under it: a jitted function of
    the same parameters returning one of them (JAX's dispatch of those inputs alone); medians
    of ``calls`` calls, median over ``repeats`` rounds."""
    import jax

    import limits

    p = limits.load_params("xpu_hbm3", "llama3_405b", tp=32, context=4096)
    floor = jax.jit(lambda params: params.hardware.mem_bw)
    evaluate_s, floor_s = [], []
    for _ in range(repeats):
        evaluate_s.append(statistics.median(_time_calls(lambda: limits.evaluate(p), calls)))
        floor_s.append(statistics.median(_time_calls(lambda: floor(p), calls)))
    return {
        "evaluate_s": statistics.median(evaluate_s),
        "floor_s": statistics.median(floor_s),
    }


def model_rate(
    overrides: Sequence[str], repeats: int = 20, variables: Sequence[str] | None = None
) -> dict[str, Any]:
    """(a) points/s of the jitted block function computing ``variables`` (default:
    ``DEFAULT_OUTPUTS``) on one block (compile excluded) and (a0) points/s of XLA writing the
    same outputs without the model, timed alternately."""
    import jax
    import jax.numpy as jnp

    fn, base, values, chunks, dtype = _one_block(overrides, variables)
    shapes = fn.output_shapes(base, dtype)
    rank = len(chunks)

    @jax.jit
    def write_only(axis_values: tuple) -> dict[str, jax.Array]:
        """The block's outputs (same shapes and dtypes), each one add of the axis values."""
        total = sum(
            jnp.reshape(v, [-1 if i == k else 1 for i in range(rank)])
            for k, v in enumerate(axis_values)
        )
        total = jnp.broadcast_to(total, chunks)
        return {
            name: (total + jnp.asarray(k, total.dtype)).astype(sd.dtype)
            for k, (name, sd) in enumerate(shapes.items())
        }

    model_s, xla_s = [], []
    for _ in range(max(1, repeats // 5)):  # alternate, so both see the same machine load
        model_s += _time_calls(lambda: fn(base, values), 5)
        xla_s += _time_calls(lambda: write_only(values), 5)
    points = math.prod(chunks)
    return {
        "points_per_s": _median_rate(points, model_s),
        "xla_write_pps": _median_rate(points, xla_s),
        "block": chunks,
        "variables": len(shapes),
        "dtype": dtype.name,
    }


#: what a serving sweep stores (e): the steady-state serving outputs (docs/serving.md)
SERVING_VARIABLES = (*SERVING_FIGURES, "serving_bound", "serving_feasible")


def serving_overrides(
    n_sync: int = 20,
    n_batch: int = 250,
    n_prompt: int = 250,
    tps: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
) -> list[str]:
    """(e) the serving grid: the benchmark grid with ``prompt_len`` (128..32768 tokens, 512
    out, FP8) in place of ``context`` (serving outputs do not depend on ``context``)."""
    base = [o for o in grid_overrides(n_sync, n_batch, n_prompt, tps) if "grid.context" not in o]
    return [
        *base,
        f"++grid.prompt_len={{start:128,stop:32768,num:{n_prompt}}}",
        "deployment.output_len=512",
        f"store.variables=[{','.join(SERVING_VARIABLES)}]",
    ]


def serving_vs_decode(
    workdir: Path,
    repeats: int = 3,
    n_sync: int = 20,
    n_batch: int = 250,
    n_other: int = 250,
    tps: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
) -> dict[str, Any]:
    """(e) model and end-to-end points/s of a serving sweep against the plain decode sweep of the
    same size (default variables, ``context`` axis), timed alternately in one run."""
    decode = [*grid_overrides(n_sync, n_batch, n_other, tps), "store.variables=default"]
    serving = serving_overrides(n_sync, n_batch, n_other, tps)
    rates = {
        "decode_model_pps": model_rate(decode, repeats=max(5, repeats))["points_per_s"],
        "serving_model_pps": model_rate(
            serving, repeats=max(5, repeats), variables=SERVING_VARIABLES
        )["points_per_s"],
    }
    seconds: dict[str, list[float]] = {"decode": [], "serving": []}
    points = 0
    for k in range(repeats + 1):  # the first round compiles, untimed
        for name, ov in (("decode", decode), ("serving", serving)):
            result = _sweep(ov, workdir / f"{name}-{k}.zarr")
            shutil.rmtree(result.path)
            points = result.points
            if k:
                seconds[name].append(result.seconds)
    rates["decode_sweep_pps"] = _median_rate(points, seconds["decode"])
    rates["serving_sweep_pps"] = _median_rate(points, seconds["serving"])
    rates["points"] = points
    return rates


def _sweep(overrides: Sequence[str], path: Path):
    """One end-to-end ``limits.sweep.run`` into ``path`` (quiet); its ``SweepResult``."""
    from limits.sweep import compose, run

    return run(compose([*overrides, f"store.path={path}"]), verbose=False)


def _empty_copy(store: Path, dest: Path, data_vars: Sequence[str]) -> None:
    """A copy of ``store`` without its data chunks (and progress): the same empty template."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        here = Path(directory)
        if here == store:
            return [n for n in names if n == "_progress"]
        return [n for n in names if n == "c" and here.name in data_vars]

    shutil.copytree(store, dest, ignore=ignore)


def _blocks(
    store: Path,
) -> tuple[list[str], list[dict[str, tuple[slice, ...]]], list[dict[str, Any]]]:
    """The data variables of ``store`` and, block by block, the chunks it holds read into
    memory (``{name: region}``, ``{name: array}``): in a lean store a variable over fewer axes
    has its chunk in the one block at 0 along the others (``BlockPlan.owns``), so these are
    exactly the arrays the store holds, each once."""
    import numpy as np

    from limits.sweep.engine import BlockPlan
    from limits.sweep.store import DIMS_ATTR, open_store_group

    group = open_store_group(store)
    dims = [str(d) for d in group.attrs[DIMS_ATTR]]
    arrays = {
        n: a
        for n, a in group.arrays()
        if n not in dims and n != "wrt" and not n.startswith("_progress")
    }
    chunk: dict[str, int] = {}
    axes: dict[str, tuple[int, ...]] = {}
    for n, a in arrays.items():
        own = [str(d) for d in a.metadata.dimension_names or () if d in dims]
        axes[n] = tuple(dims.index(d) for d in own)
        chunk.update(zip(own, (int(c) for c in a.chunks)))
    plan = BlockPlan({d: group[d][...] for d in dims}, tuple(chunk[d] for d in dims))
    regions, data = [], []
    for b in plan.blocks():
        region = plan.region(b)
        mine = {n: tuple(region[i] for i in axes[n]) for n in arrays if plan.owns(b, axes[n])}
        regions.append(mine)
        data.append({n: np.ascontiguousarray(arrays[n][r]) for n, r in mine.items()})
    return list(arrays), regions, data


def _write_only(
    store: Path,
    dest: Path,
    names: Sequence[str],
    regions: Sequence[dict[str, tuple[slice, ...]]],
    data: Sequence[dict[str, Any]],
) -> float:
    """Seconds to write the precomputed ``data`` region by region into an empty copy of
    ``store``'s template with the engine's writer (``limits.sweep.store.write_region``)."""
    from limits.sweep.store import open_store_group, write_region

    _empty_copy(store, dest, names)
    target = open_store_group(dest)
    arrays = {n: target[n] for n in names}
    t0 = time.perf_counter()
    for region, values in zip(regions, data):
        write_region(arrays, region, values)
    seconds = time.perf_counter() - t0
    shutil.rmtree(dest)
    return seconds


def _codec_write(
    dest: Path,
    data: Sequence[dict[str, Any]],
    codec: str,
    clevel: int,
) -> float:
    """(c0) Seconds to encode each chunk of ``data`` with numcodecs' Blosc (``codec``, byte
    shuffle, ``clevel``; ``none``: raw bytes) and write it to its own file under ``dest``."""
    from numcodecs import Blosc

    blosc = None if codec == "none" else Blosc(cname=codec, clevel=clevel, shuffle=Blosc.SHUFFLE)
    dest.mkdir()
    t0 = time.perf_counter()
    for k, values in enumerate(data):
        for name, array in values.items():
            encoded = array.data if blosc is None else blosc.encode(array)
            with open(dest / f"{name}.{k}", "wb") as fh:
                fh.write(encoded)
    seconds = time.perf_counter() - t0
    shutil.rmtree(dest)
    return seconds


def sweep_vs_baseline(overrides: Sequence[str], workdir: Path, repeats: int = 3) -> dict[str, Any]:
    """(b) end-to-end points/s of ``limits.sweep.run`` and (c) write-only points/s of the same
    arrays, timed alternately (so both see the same machine load); plus the store's size.

    A first, untimed sweep compiles and produces the arrays the baseline writes.
    """
    source = workdir / "source.zarr"
    first = _sweep(overrides, source)
    names, regions, data = _blocks(source)
    stored = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    from limits.sweep import compose

    cfg = compose(list(overrides))
    codec, clevel = str(cfg.store.codec), int(cfg.store.clevel)
    sweep_s, write_s, codec_s = [], [], []
    for k in range(repeats):
        path = workdir / f"sweep-{k}.zarr"
        sweep_s.append(_sweep(overrides, path).seconds)
        shutil.rmtree(path)
        write_s.append(_write_only(source, workdir / f"baseline-{k}.zarr", names, regions, data))
        codec_s.append(_codec_write(workdir / f"codec-{k}", data, codec, clevel))
    shutil.rmtree(source)
    points = first.points
    return {
        "sweep_pps": _median_rate(points, sweep_s),
        "write_pps": _median_rate(points, write_s),
        "codec_pps": _median_rate(points, codec_s),
        "sweep_s": statistics.median(sweep_s),
        "write_s": statistics.median(write_s),
        "codec_s": statistics.median(codec_s),
        "points": points,
        "variables": len(names),
        "bytes": stored,
    }


def reduced_rate(overrides: Sequence[str], workdir: Path, repeats: int = 3) -> dict[str, Any]:
    """(d) end-to-end points/s (grid points evaluated) of the sweep reduced with ``REDUCE``;
    a first, untimed sweep compiles."""
    overrides = [*overrides, *REDUCE]
    first = _sweep(overrides, workdir / "reduce-first.zarr")
    stored = sum(f.stat().st_size for f in first.path.rglob("*") if f.is_file())
    shutil.rmtree(first.path)
    seconds = []
    for k in range(repeats):
        result = _sweep(overrides, workdir / f"reduce-{k}.zarr")
        seconds.append(result.seconds)
        shutil.rmtree(result.path)
    return {
        "sweep_pps": _median_rate(first.points, seconds),
        "sweep_s": statistics.median(seconds),
        "points": first.points,
        "bytes": stored,
        "blocks": first.blocks_total,
    }


def _wall(cmd: Sequence[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of one process (it must succeed)."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return seconds


#: the preset question of (s): ``python -m limits.query`` evaluating presets in memory
QUERY_BEST = (
    "best",
    "--hardware",
    "h200",
    "--model",
    "llama3_70b",
    "--ttft",
    "300 ms",
    "--tpot",
    "20 ms",
)


def startup(workdir: Path, repeats: int = 3) -> dict[str, Any]:
    """(s) Median wall-clock seconds of a bare ``import jax`` process, a one-point CLI query,
    its ``--help`` and the preset question ``QUERY_BEST``, timed alternately; the compilation
    cache (in ``workdir``) is warmed by one untimed run of each, as a user's second query
    finds it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "LIMITS_COMPILATION_CACHE": str(workdir / "jax-cache"),
    }

    def query(k: int) -> list[str]:
        run_dir = workdir / f"point-{k}"
        return [
            sys.executable,
            "-m",
            "limits.sweep",
            "grid=point",
            f"store.path={run_dir / 'sweep.zarr'}",
            "limits.progress=false",
            f"hydra.run.dir={run_dir}",
        ]

    best = [sys.executable, "-m", "limits.query", *QUERY_BEST]
    _wall(query(-1), env)  # warms the compilation cache
    _wall(best, env)
    jax_s, query_s, help_s, best_s = [], [], [], []
    for k in range(repeats):
        jax_s.append(_wall([sys.executable, "-c", "import jax"], env))
        query_s.append(_wall(query(k), env))
        help_s.append(_wall([sys.executable, "-m", "limits.sweep", "--help"], env))
        best_s.append(_wall(best, env))
    for k in range(-1, repeats):
        shutil.rmtree(workdir / f"point-{k}")
    shutil.rmtree(workdir / "jax-cache", ignore_errors=True)
    jax_median = statistics.median(jax_s)
    return {
        "import_jax_s": jax_median,
        "query_s": statistics.median(query_s),
        "help_s": statistics.median(help_s),
        "best_s": statistics.median(best_s),
        "ratio": statistics.median(query_s) / jax_median,
        "help_ratio": statistics.median(help_s) / jax_median,
        "best_ratio": statistics.median(best_s) / jax_median,
    }


_RSS_CHILD = """
import json, resource, sys
sys.path.insert(0, {repo!r})
from limits.sweep import compose, run
result = run(compose({overrides!r}), verbose=False)
try:  # the high-water mark of this process' own memory (ru_maxrss keeps the parent's after fork)
    with open("/proc/self/status") as f:
        peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
except OSError:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = rss if sys.platform == "darwin" else rss * 1024
print(json.dumps({{"peak_rss_B": peak, "points": result.points, "seconds": result.seconds}}))
"""


def peak_memory(overrides: Sequence[str], path: Path) -> dict[str, Any]:
    """Peak RSS [B] of one end-to-end sweep in a fresh Python process (compile included)."""
    code = _RSS_CHILD.format(repo=str(REPO), overrides=[*overrides, f"store.path={path}"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"peak-memory sweep failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(path, ignore_errors=True)
    return result


def codec_table(
    overrides: Sequence[str],
    workdir: Path,
    repeats: int = 3,
    codecs: Sequence[str] = ("lz4", "zstd", "none"),
) -> list[dict[str, Any]]:
    """``sweep_vs_baseline`` for each ``store.codec``: points/s and stored bytes."""
    rows = []
    for codec in codecs:
        sub = workdir / f"codec-{codec}"
        sub.mkdir()
        rows.append(
            {
                "codec": codec,
                **sweep_vs_baseline([*overrides, f"store.codec={codec}"], sub, repeats),
            }
        )
        shutil.rmtree(sub)
    return rows


# --------------------------------------------------------------------------- report


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _pps(x: float) -> str:
    return f"{x / 1e6:6.1f} M points/s"


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def machine() -> str:
    """One line: host, CPUs, Python, jax and its platform, zarr."""
    import jax
    import zarr

    return (
        f"{platform.node()}, {os.cpu_count()} CPUs ({platform.machine()}), Python "
        f"{platform.python_version()}, jax {jax.__version__} ({jax.devices()[0].platform}), "
        f"zarr {zarr.__version__}"
    )


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median)")
    ap.add_argument(
        "--variables",
        default="default",
        help="store.variables of the sweeps, e.g. '[utps,stps,bound,feasible]' "
        "(default: the 14 variables of a default sweep)",
    )
    ap.add_argument("--codecs", action="store_true", help="also measure every store.codec")
    ap.add_argument(
        "--reduce", action="store_true", help="also time the sweep reduced over batch on device (d)"
    )
    ap.add_argument(
        "--serving",
        action="store_true",
        help="also time a 1e7-point serving sweep against the plain decode sweep (e)",
    )
    ap.add_argument(
        "--serving-only", action="store_true", help="run only (e) (with --serving-sync points)"
    )
    ap.add_argument(
        "--serving-sync",
        type=int,
        default=20,
        help="sync_latency values of (e): 20 gives 8 x 250 x 250 x 20 = 1e7 points",
    )
    ap.add_argument(
        "--layout", default="lean", choices=("lean", "full"), help="store.layout of the sweeps"
    )
    ap.add_argument("--skip-memory", action="store_true", help="skip the 2e7/2e8 RSS sweeps")
    ap.add_argument("--skip-startup", action="store_true", help="skip the start-up timings (s)")
    ap.add_argument("--startup-only", action="store_true", help="run only the start-up timings (s)")
    ap.add_argument(
        "--dir", default=None, help="where the temporary stores go (default: the system temp dir)"
    )
    args = ap.parse_args(argv)

    var = [f"store.variables={args.variables}", f"store.layout={args.layout}"]
    small = [*grid_overrides(n_sync=40), *var]  # 8 x 250 x 250 x 40 = 2e7 points
    big = [*grid_overrides(n_sync=400), *var]  # 2e8 points
    print(f"limits sweep benchmark, {_dt.date.today()}: {machine()}")
    print(
        f"grid: xpu_hbm3 x llama3_405b, tp[8] x batch[250] x context[250] x "
        f"sync_latency[40 | 400] = 2e7 | 2e8 points; store.variables={args.variables}; "
        f"store.layout={args.layout}; "
        f"default codec and chunks; median of {args.repeats}; {_load()}"
    )
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="limits-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        if args.serving or args.serving_only:
            e = serving_vs_decode(work, args.repeats, args.serving_sync)
            ratio_e = e["serving_sweep_pps"] / e["decode_sweep_pps"]
            print(
                f"(e) serving sweep ({len(SERVING_VARIABLES)} serving variables, prompt_len axis) "
                f"vs plain decode sweep (default variables, context axis), {e['points']:.0e} "
                f"points each:\n    model: serving {_pps(e['serving_model_pps'])}, decode "
                f"{_pps(e['decode_model_pps'])};  end-to-end: serving "
                f"{_pps(e['serving_sweep_pps'])}, decode {_pps(e['decode_sweep_pps'])};  "
                f"ratio {ratio_e:.2f}  target >= 0.5  {_verdict(ratio_e >= 0.5)}"
            )
            if args.serving_only:
                print(f"total {time.perf_counter() - t_start:.0f} s; {_load()}")
                return 0
        if not args.skip_startup or args.startup_only:
            st = startup(work, args.repeats)
            print(
                f"(s) start-up: bare `python -c 'import jax'` {st['import_jax_s']:.2f} s; "
                f"one-point CLI query {st['query_s']:.2f} s; --help {st['help_s']:.2f} s;  "
                f"query / import jax = {st['ratio']:.2f}   target <= {TARGET_STARTUP_RATIO}  "
                f"{_verdict(st['ratio'] <= TARGET_STARTUP_RATIO)}"
            )
            print(
                f"    --help / import jax = {st['help_ratio']:.2f};  `python -m limits.query "
                f"{' '.join(repr(a) if ' ' in a else a for a in QUERY_BEST)}` "
                f"{st['best_s']:.2f} s, / import jax = {st['best_ratio']:.2f}"
            )
            if args.startup_only:
                print(f"total {time.perf_counter() - t_start:.0f} s; {_load()}")
                return 0
        w = warm_evaluate(args.repeats)
        print(
            f"(w) warm single-point limits.evaluate: {w['evaluate_s'] * 1e3:.3f} ms   target "
            f"< {TARGET_EVALUATE_S * 1e3:g} ms  {_verdict(w['evaluate_s'] < TARGET_EVALUATE_S)};"
            f"  a jitted function returning one parameter (dispatch alone) "
            f"{w['floor_s'] * 1e3:.3f} ms, ratio {w['evaluate_s'] / w['floor_s']:.1f}"
        )
        a = model_rate(small, repeats=max(20, args.repeats))
        ok_a = a["points_per_s"] >= TARGET_MODEL_PPS
        print(
            f"(a) model, no I/O, {a['variables']} variables, {a['dtype']}, block "
            f"{'x'.join(map(str, a['block']))}:  {_pps(a['points_per_s'])}   target >= "
            f"{TARGET_MODEL_PPS:.0e}  {_verdict(ok_a)}"
        )
        print(
            f"(a0) XLA's own write of the same outputs, no model:  {_pps(a['xla_write_pps'])}"
            f"   (a)/(a0) = {a['points_per_s'] / a['xla_write_pps']:.2f}"
        )
        bc = sweep_vs_baseline(small, work, args.repeats)
        ratio = bc["sweep_pps"] / bc["write_pps"]
        per_point = bc["bytes"] / bc["points"]
        print(
            f"(b) end-to-end sweep into zarr, 2e7 points, {bc['variables']} variables:  "
            f"{_pps(bc['sweep_pps'])}   ({bc['sweep_s']:.2f} s per sweep); stored "
            f"{per_point:.2f} B/point  target <= {TARGET_BYTES_PER_POINT:g}  "
            f"{_verdict(per_point <= TARGET_BYTES_PER_POINT)}"
        )
        print(
            f"(c) write-only baseline, same arrays/codec/chunks:   {_pps(bc['write_pps'])}   "
            f"({bc['write_s']:.2f} s)"
        )
        print(
            f"    (b)/(c) = {ratio:.2f}   target >= {TARGET_RATIO}  "
            f"{_verdict(ratio >= TARGET_RATIO)}"
        )
        codec_ratio = bc["sweep_pps"] / bc["codec_pps"]
        print(
            f"(c0) minimal encode-and-write, the arrays the store holds, same codec, one file "
            f"per chunk: "
            f"{_pps(bc['codec_pps'])}   ({bc['codec_s']:.2f} s)"
        )
        print(
            f"    (b)/(c0) = {codec_ratio:.2f}   target >= {TARGET_RATIO}  "
            f"{_verdict(codec_ratio >= TARGET_RATIO)};  (c)/(c0) = "
            f"{bc['write_pps'] / bc['codec_pps']:.2f}"
        )
        if args.reduce:
            d = reduced_rate(small, work, args.repeats)
            print(
                f"(d) same sweep reduced over batch on device ({' '.join(REDUCE[:2])}, "
                f"utps >= 50): {_pps(d['sweep_pps'])} grid points evaluated   "
                f"({d['sweep_s']:.2f} s, {d['blocks']} blocks, {_gb(d['bytes'])} stored); "
                f"{d['sweep_pps'] / bc['sweep_pps']:.1f}x (b)"
            )
        if not args.skip_memory:
            m_small = peak_memory(small, work / "rss-2e7.zarr")
            m_big = peak_memory(big, work / "rss-2e8.zarr")
            growth = m_big["peak_rss_B"] / m_small["peak_rss_B"]
            for label, m in (("2e7", m_small), ("2e8", m_big)):
                print(
                    f"peak RSS of a fresh end-to-end sweep, {label} points: "
                    f"{_gb(m['peak_rss_B'])}   ({m['seconds']:.1f} s, "
                    f"{_pps(m['points'] / m['seconds']).strip()} incl. compile)"
                )
            print(
                f"    2e8 points: {_gb(m_big['peak_rss_B'])} < {_gb(TARGET_PEAK_RSS_B)}  "
                f"{_verdict(m_big['peak_rss_B'] < TARGET_PEAK_RSS_B)};  flat: "
                f"RSS(2e8)/RSS(2e7) = {growth:.2f} <= {TARGET_RSS_GROWTH}  "
                f"{_verdict(growth <= TARGET_RSS_GROWTH)}"
            )
        if args.codecs:
            print(
                "\nstore.codec (Blosc, byte shuffle, clevel 5), 2e7 points, "
                f"{bc['variables']} variables:"
            )
            print(
                f"  {'codec':<6} {'end-to-end':>17} {'write-only':>17} {'stored':>9} {'B/point':>8}"
            )
            for row in codec_table(small, work, args.repeats):
                print(
                    f"  {row['codec']:<6} {_pps(row['sweep_pps'])} {_pps(row['write_pps'])} "
                    f"{_gb(row['bytes']):>9} {row['bytes'] / row['points']:8.2f}"
                )
    print(f"total {time.perf_counter() - t_start:.0f} s; {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
