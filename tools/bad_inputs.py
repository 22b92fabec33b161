"""The catalogue of bad inputs a sweep refuses, and the message each one gets.

Every case is a list of ``python -m limits.sweep`` overrides (on top of ``grid=point`` and a
store path) and the setting its message must name. ``attempt`` runs a case exactly as the
command line would, up to the error: Hydra's own errors (unknown preset or key, a value of the
wrong type) come from composing the config; the engine's come from ``limits.sweep.run``, which
checks every parameter, axis and size before it traces or compiles anything. The table in
docs/scale_out.md is generated from these cases (``python -m tools.docs_tables``) and
tests/test_bad_inputs.py checks each of them, so the docs and the code cannot disagree.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BadInput", "BAD_INPUTS", "attempt", "first_paragraph", "bad_input_table"]

BASE = ("grid=point",)  # a single point of the default study: xpu_hbm3 x llama3_405b


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One refused input: what it is, its overrides, the setting the message must name."""

    what: str
    overrides: tuple[str, ...]
    names: str


def _case(what: str, names: str, *overrides: str) -> BadInput:
    return BadInput(what, overrides, names)


BAD_INPUTS: tuple[BadInput, ...] = (
    # numbers that make no sense
    _case("negative bandwidth", "hardware.mem_bw", "hardware.mem_bw=-4TB/s"),
    _case("zero peak compute", "hardware.peak_flops", "hardware.peak_flops=0"),
    _case("NaN capacity", "hardware.mem_capacity", "hardware.mem_capacity=nan"),
    _case("infinite bandwidth", "hardware.mem_bw", "hardware.mem_bw=inf"),
    _case("efficiency above 1", "calibration.mem_efficiency", "calibration.mem_efficiency=1.5"),
    _case("negative latency on an axis", "sync_latency", "++grid.sync_latency=[-1us,1us]"),
    _case("zero batch on an axis", "deployment.batch", "++grid.batch=[0,1]"),
    _case("infinite context on an axis", "deployment.context", "++grid.context=[4096,inf]"),
    # units
    _case("capacity unit for a bandwidth", "hardware.mem_bw", "hardware.mem_bw=4 TiB"),
    _case("unknown unit", "hardware.mem_bw", "hardware.mem_bw=4 parsecs"),
    _case("wrong unit on an axis", "grid.mem_bw", "++grid.mem_bw=[4TiB,8TiB/s]"),
    _case("text instead of a number", "hardware.mem_bw", "hardware.mem_bw=fast"),
    _case("units on a count", "deployment.batch", "deployment.batch=4 GB"),
    # names
    _case("unknown hardware preset", "hardware/nope", "hardware=nope"),
    _case("unknown model preset", "model/gpt5", "model=gpt5"),
    _case("unknown parameter", "hardware.bandwidth", "hardware.bandwidth=4TB/s"),
    _case("unknown axis", "grid.bogus", "++grid.bogus=[1]"),
    _case("misspelt setting added with +", "did you mean precision", "+precison=float64"),
    _case("misspelt setting added with ++", "did you mean store.codec", "++store.codecs=zstd"),
    _case("unknown parameter added with +", "hardware.bandwidth", "+hardware.bandwidth=4TB/s"),
    _case("unknown top-level setting", "batch", "+batch=8"),
    _case("bad override syntax", "override_grammar", "hardware.mem_bw=["),
    _case("unknown output variable", "store.variables", "store.variables=[utps,speed]"),
    _case(
        "unknown sensitivity parameter",
        "sensitivity.wrt",
        "sensitivity.metrics=[utps]",
        "sensitivity.wrt=[bandwidth]",
    ),
    # axes
    _case("empty axis", "grid.tp", "++grid.tp=[]"),
    _case("empty range", "grid.context", "++grid.context={start:1024,stop:4096,num:0}"),
    _case("repeated axis values", "grid.batch", "++grid.batch=[1,1]"),
    _case("log range from zero", "grid.batch", "++grid.batch={start:0,stop:8,num:4,scale:log}"),
    # whole numbers
    _case("fractional tp on an axis", "deployment.tp", "++grid.tp=[8,12.5]"),
    _case("fractional batch", "deployment.batch", "deployment.batch=2.5"),
    _case("fractional layer count", "model.n_layers", "model.n_layers=125.5"),
    # network tiers and hybrid layers that cannot be
    _case(
        "scale-up domain smaller than a node", "hardware.scaleup_size", "hardware.scaleup_size=4"
    ),
    _case("no attention layer left", "model.n_linear_layers", "model.n_linear_layers=126"),
    _case("fractional shard index", "shard.index", "shard.index=0.5"),
    # parallelism that does not divide the model, context beyond the model
    _case("tp that cannot split the heads", "deployment.tp", "++grid.tp=[8,12,16]"),
    _case(
        "ep that cannot split the experts",
        "deployment.ep",
        "model=deepseek_v3",
        "deployment.tp=384",
        "deployment.ep=3",
    ),
    _case("ep on a dense model", "deployment.ep", "deployment.tp=8", "deployment.ep=2"),
    _case("unknown serving mode", "deployment.serving", "deployment.serving=sideways"),
    _case(
        "prefill tp that cannot split the heads",
        "deployment.prefill_tp",
        "deployment.prefill_tp=3",
    ),
    _case("negative compute bytes", "deployment.compute_bytes", "deployment.compute_bytes=-1"),
    _case("more pipeline stages than layers", "deployment.pp", "deployment.pp=127"),
    _case(
        "context longer than the model's", "deployment.context", "++grid.context=[131072,262144]"
    ),
    # sweep settings
    _case(
        "too many points",
        "limits.max_points",
        "++grid.batch={start:1,stop:1000,num:1000}",
        "++grid.context={start:1,stop:131072,num:1000}",
        "limits.max_points=1e5",
    ),
    _case(
        "too many bytes",
        "limits.max_bytes",
        "++grid.batch={start:1,stop:1000,num:1000}",
        "limits.max_bytes=10kB",
    ),
    _case("unknown precision", "precision", "precision=float16"),
    _case("unknown codec", "store.codec", "store.codec=brotli"),
    _case("compression level out of range", "store.clevel", "store.clevel=99"),
    _case("size limit refusing a single point", "limits.max_points", "limits.max_points=0"),
    _case(
        "huge range (refused before it is built)",
        "limits.max_points",
        "++grid.batch={start:1,stop:1e6,num:10000000000000}",
    ),
    _case(
        "elasticity of a label",
        "sensitivity.metrics",
        "sensitivity.metrics=[bound]",
        "sensitivity.wrt=[mem_bw]",
    ),
    _case("missing interpolation", "hardware.mem_bw", "hardware.mem_bw=${nope}"),
    _case("chunk length for a missing axis", "store.chunks", "++store.chunks.bogus=2"),
    _case("shard index out of range", "shard.index", "shard.index=2", "shard.count=2"),
    _case("shards without a shared store", "store.path", "shard.count=2", "store.path=null"),
    _case("no devices", "devices", "devices=0"),
    # reductions (grid=point has no axes: these add a batch axis to reduce over)
    _case("reduction over a missing axis", "reduce.over", "++grid.batch=[1,2]", "reduce.over=[tp]"),
    _case(
        "reduction over an axis twice",
        "reduce.over",
        "++grid.batch=[1,2]",
        "reduce.over=[batch,batch]",
    ),
    _case(
        "unknown reduction objective",
        "reduce.objective",
        "++grid.batch=[1,2]",
        "reduce.over=[batch]",
        "reduce.objective=speed",
    ),
    _case(
        "unknown reduction mode",
        "reduce.mode",
        "++grid.batch=[1,2]",
        "reduce.over=[batch]",
        "reduce.mode=best",
    ),
    _case(
        "constraint on an unknown output",
        "reduce.constraints",
        "++grid.batch=[1,2]",
        "reduce.over=[batch]",
        '++reduce.constraints.speed=[">=",50]',
    ),
    _case(
        "unknown constraint operator",
        "reduce.constraints.utps",
        "++grid.batch=[1,2]",
        "reduce.over=[batch]",
        '++reduce.constraints.utps=["=>",50]',
    ),
    _case(
        "NaN constraint",
        "reduce.constraints.utps",
        "++grid.batch=[1,2]",
        "reduce.over=[batch]",
        '++reduce.constraints.utps=[">=",nan]',
    ),
    _case(
        "wrong unit on a constraint",
        "reduce.constraints.ttft",
        "++grid.batch=[1,2]",
        "reduce.over=[batch]",
        '++reduce.constraints.ttft=["<=","2 GB"]',
    ),
    _case(
        "chunk length splitting a reduced axis",
        "store.chunks.batch",
        "++grid.batch=[1,2]",
        "reduce.over=[batch]",
        "++store.chunks.batch=1",
    ),
)


def first_paragraph(err: BaseException) -> str:
    """The error's message and its causes' up to the first blank line, as one line (Hydra's
    command line prints the same lines, then the available options and search path)."""
    lines: list[str] = []
    while err is not None:
        for line in str(err).splitlines():
            if not line.strip():
                break
            if not line.startswith((" ", "\t")):  # omegaconf's full_key/object_type details
                lines.append(line.strip())
        err = err.__cause__  # type: ignore[assignment]
    return " / ".join(dict.fromkeys(lines))


def attempt(overrides: Sequence[str], store: Path) -> tuple[str, BaseException]:
    """Run ``overrides`` as ``python -m limits.sweep`` would, into ``store``; return the
    one-line message the command line prints and the exception (``AssertionError`` if the
    sweep ran)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from limits.sweep.config import config_error_line
    from limits.sweep.job import USER_ERRORS, compose, run

    try:
        cfg = compose([*BASE, f"store.path={store}", *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        return config_error_line(err), err
    try:
        run(cfg, overrides=list(overrides), verbose=False)
    except USER_ERRORS as err:
        return str(err), err
    raise AssertionError(f"{list(overrides)} ran without an error")


def bad_input_table() -> str:
    """Markdown table: every catalogued bad input, its overrides and the exact message."""
    rows = ["| bad input | overrides (after `grid=point`) | message |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for case in BAD_INPUTS:
            message, _ = attempt(case.overrides, Path(tmp) / "sweep.zarr")
            shown = " ".join(f"`{o}`" for o in case.overrides)
            rows.append(f"| {case.what} | {shown} | {message.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)
