"""``python -m limits.query``: answers from a store or straight from presets (docs/query.md)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence

import xarray as xr

from limits.analysis import Table
from limits.analysis._common import metric
from limits.errors import LimitsError
from limits.query import ROLES, best, fmt, from_presets, frontier, resolve, select
from limits.units import parse_quantity

EXAMPLES = """examples:
  python -m limits.query best --hardware h200 --model llama3_70b --ttft "300 ms" --tpot "20 ms"
  python -m limits.query best --store outputs/sweep/.../sweep.zarr --tps-per-user 50
  python -m limits.query frontier --hardware h200 --model llama3_70b --chart --png front.png
  python -m limits.query compare --hardware h200 --model llama3_70b --tpot "20 ms" \\
      --to hardware=b200
"""


def _rate(text: str, name: str) -> float:
    """A rate target: a number, optionally followed by its unit (``50``, ``50 tok/s/user``)."""
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(tok/s(?:/user|/chip)?)?\s*", text)
    if m is None:
        raise LimitsError(f"--{name} = {text!r}: expected a number of tokens/s, e.g. 50")
    return float(m.group(1))


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m limits.query",
        description="Answers from the limit model in one command: the best configuration under "
        "latency targets (TTFT, TPOT, tokens/s per user), the Pareto frontier, what binds and "
        "by how much, what a chip or model change buys. Reads a store (--store) or evaluates "
        "presets in memory (--hardware, --model) without writing anything.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True)
    for name, text in (
        ("best", "the best configuration under the targets, what binds and by how much"),
        ("frontier", "the Pareto frontier as a table, a terminal chart or a PNG"),
        ("compare", "what a change (--to hardware=b200, model=..., deployment.x=...) buys"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        src = p.add_argument_group("source (a store, or presets evaluated in memory)")
        src.add_argument("--store", help="a sweep store (sweep.zarr) or a multirun directory")
        src.add_argument("--hardware", help="hardware preset (limits/conf/hardware/NAME.yaml)")
        src.add_argument("--model", help="model preset (limits/conf/model/NAME.yaml)")
        src.add_argument(
            "--set",
            nargs="*",
            default=[],
            metavar="KEY=VALUE",
            help="sweep overrides applied to the presets, e.g. deployment.context=8192 "
            "grid.batch=[1,8,64] ++grid.context=[4096,32768] (default grid: tp 1..64, "
            "batch 1..1024, powers of two)",
        )
        p.add_argument(
            "--at",
            nargs="*",
            default=[],
            metavar="AXIS=VALUE",
            help="answer on a slice, e.g. context=8192 (values may carry units)",
        )
        if name != "frontier":
            t = p.add_argument_group("targets")
            t.add_argument("--ttft", help="largest time to first token, e.g. '300 ms'")
            t.add_argument("--tpot", help="largest time per output token, e.g. '20 ms'")
            t.add_argument("--tps-per-user", help="smallest tokens/s per user, e.g. 50")
            t.add_argument(
                "--maximize",
                default="tps_per_chip",
                help=f"what to maximise: {', '.join(ROLES)} or any model output "
                "(default: tps_per_chip)",
            )
        else:
            p.add_argument("--x", default="tps_per_user", help="x axis (default tps_per_user)")
            p.add_argument("--y", default="tps_per_chip", help="y axis (default tps_per_chip)")
            p.add_argument("--chart", action="store_true", help="draw it in the terminal")
            p.add_argument("--png", help="write the chart (all points, frontier line) here")
        if name == "compare":
            p.add_argument(
                "--to",
                nargs="+",
                required=True,
                metavar="KEY=VALUE",
                help="the change: hardware=NAME, model=NAME or any sweep override",
            )
    return top


def _source(args: argparse.Namespace, extra: Sequence[str] = ()) -> tuple[xr.Dataset, str]:
    if args.store:
        if args.hardware or args.model or args.set or extra:
            raise LimitsError("--store answers from the store alone; drop --hardware/--model/--set")
        from limits.analysis import open_results

        ds = _at(open_results(args.store), args.at)
        return ds, f"store {args.store}"
    if not (args.hardware and args.model):
        raise LimitsError("give --store PATH, or both --hardware NAME and --model NAME")
    hardware, model = args.hardware, args.model
    overrides = []
    for item in [*args.set, *extra]:
        key, _, value = item.partition("=")
        if key == "hardware":
            hardware = value
        elif key == "model":
            model = value
        else:
            overrides.append(item)
    ds = _at(from_presets(hardware, model, overrides), args.at)
    grid = ", ".join(f"{d} [{ds.sizes[d]}]" for d in ds.dims)
    return ds, f"model {model} on hardware {hardware}, evaluated in memory over {grid}"


def _at(ds: xr.Dataset, items: Sequence[str]) -> xr.Dataset:
    at = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise LimitsError(f"--at {item!r}: expected AXIS=VALUE, e.g. context=8192")
        at[key] = value
    return select(ds, at)


def _targets(args: argparse.Namespace) -> dict[str, float]:
    targets = {}
    if args.ttft:
        targets["ttft"] = parse_quantity(args.ttft, "s", "--ttft")
    if args.tpot:
        targets["tpot"] = parse_quantity(args.tpot, "s", "--tpot")
    if args.tps_per_user:
        targets["tps_per_user"] = _rate(args.tps_per_user, "tps-per-user")
    return targets


def _header(ds: xr.Dataset, source: str) -> str:
    """Where the answer comes from and the workload it holds for (fixed axes, precision)."""
    from limits.analysis import parameter

    fixed = []
    for name, unit in (("context", "tokens"), ("prompt_len", "prompt tokens")):
        if name not in ds.dims:
            value = parameter(ds, name)
            if value is not None:
                fixed.append(f"{name} {float(value):g} {unit}")
    bytes_ = parameter(ds, "weight_bytes")
    if bytes_ is not None:
        fixed.append(f"{float(bytes_):g} B per weight")
    return f"limits.query: {source}" + "".join(f"; {f}" for f in fixed)


def _best(args: argparse.Namespace) -> None:
    ds, source = _source(args)
    print(_header(ds, source), flush=True)
    for line in best(ds, args.maximize, _targets(args)).lines():
        print(line)


def _compare(args: argparse.Namespace) -> None:
    targets = _targets(args)
    answers = []
    for extra in ((), args.to):
        ds, source = _source(args, extra)
        print(_header(ds, source), flush=True)
        answer = best(ds, args.maximize, targets)
        for line in answer.lines():
            print(line)
        answers.append(answer)
    (a, b) = answers
    units = metric(a.point, a.objective).attrs.get("units", "")
    va, vb = (float(metric(x.point, x.objective).values) for x in answers)
    print(
        f"change {' '.join(args.to)}: {a.objective} {fmt(va, units)} -> {fmt(vb, units)} "
        f"({vb / va:.3g}x)"
    )


def _readable(table: Table) -> Table:
    """Seconds shown in milliseconds (a printout only; the library's table keeps SI)."""
    shown = table.copy()
    units = dict(table.attrs.get("units", {}))
    for col, unit in table.attrs.get("units", {}).items():
        if unit == "s" and col in shown:
            shown[col] = shown[col] * 1e3
            units[col] = "ms"
    shown.attrs["units"] = units
    return shown


def _frontier(args: argparse.Namespace) -> None:
    ds, source = _source(args)
    print(_header(ds, source), flush=True)
    table = frontier(ds, args.x, args.y)
    xn, xnote = resolve(ds, args.x)
    yn, ynote = resolve(ds, args.y)
    print(f"Pareto frontier of ({xn}, {yn}): {len(table)} points")
    print(repr(_readable(table)))
    for note in dict.fromkeys(n for n in (xnote, ynote) if n):
        print(f"note: {note}")
    units = table.attrs.get("units", {})
    if args.chart:
        try:
            import plotext as plt
        except ImportError:
            raise LimitsError("--chart needs plotext: pip install 'llm-limits[query]'") from None

        plt.clf()
        plt.theme("pro" if sys.stdout.isatty() else "clear")
        plt.plot(list(table[xn]), list(table[yn]), marker="dot")
        plt.xlabel(f"{xn} [{units.get(xn, '')}]")
        plt.ylabel(f"{yn} [{units.get(yn, '')}]")
        plt.title("Pareto frontier")
        plt.plotsize(80, 20)
        chart = plt.build()
        if not sys.stdout.isatty():  # no colour codes in a file or a pipe
            chart = re.sub(r"\x1b\[[0-9;]*m", "", chart)
        print(chart)
    if args.png:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        from limits.plots import frontier_plot

        fig = frontier_plot(ds, xn, yn)
        ax = fig.axes[0]
        for axis in (ax.xaxis, ax.yaxis):  # minor labels of a short log axis collide
            if axis.get_scale() == "log":
                axis.set_minor_formatter(NullFormatter())
                axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=15))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(
            _header(ds, source).removeprefix("limits.query: "), fontsize="small", wrap=True
        )
        fig.savefig(args.png, dpi=120, bbox_inches="tight")
        print(f"wrote {args.png}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        {"best": _best, "frontier": _frontier, "compare": _compare}[args.command](args)
    except (LimitsError, KeyError, FileNotFoundError) as err:
        print(f"limits.query: error: {err}", file=sys.stderr)
        return 2
    print(f"({time.perf_counter() - t0:.2f} s)")
    return 0


if __name__ == "__main__":  # an entry point: this process only (not main() called by a test)
    from limits.cli import entry_point
    from limits.compile_cache import enable_compilation_cache

    entry_point()
    enable_compilation_cache()
    sys.exit(main())
