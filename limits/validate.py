"""Check the limit model against published serving measurements.

``python -m limits.validate [MEASUREMENTS.csv] [--calibration FILE] --out PREDICTIONS.csv``
reads a measurement file (schema: ``limits/data/measurements/README.md``; optional columns
``dp``, ``serving``, ``prefill_tp``, ``prefill_dp``, ``prefill_ep``, ``prefill_replicas``,
``prefill_batch``, ``arrival_rate``, ``burst_requests``: the load, see docs/serving.md), and
writes every input row, its columns untouched, with four more:

- ``limit``: the ideal model's figure for the row's metric, in the metric's unit;
- ``predicted``: the same with the calibration (flat parameter names, YAML); ``limit`` without;
- ``feasible``: the configuration fits in memory at that batch (serving capacity check);
- ``reason``: why a row could not be evaluated (unknown preset, unsupported setting); such a
  row is written with empty figures and never stops the run.

It prints, per metric and per source/engine/hardware, percentiles of measured/limit and the
error of ``predicted``. Without an input file it checks the shipped public set.

How a row becomes parameters (docs/serving.md, "Validation"):
- presets by name; ``n_params = 0`` (the architecture count, so weights are read as engines
  read them); ``replicas`` x ``dp`` instances; ``compute_bytes`` empty: follows ``weight_bytes``;
- a fractional ``batch`` (a Little's-law mean) is rounded toward the bound: down for time
  metrics, up for throughput; an empty ``batch`` is as many as fit (``serving_max_batch``);
- ``context`` (the decode-step view) = ``prompt_len + output_len``.
Metrics: ``tpot_ms`` <- ``tpot``, ``ttft_ms`` <- ``ttft_at_load``, ``output_tok_s`` <-
``output_tps``; ``--view decode`` uses the decode-step outputs instead (``tbt``, isolated
``ttft``, ``stps``), the figures the model gave before serving was modelled.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

from limits.errors import LimitsError, ParameterError
from limits.model import evaluate, serving
from limits.model.params import PARAMETER_GROUPS, Params, parameter_index
from limits.presets import load_params

__all__ = [
    "PUBLIC_MEASUREMENTS",
    "METRICS",
    "LOAD_COLUMNS",
    "read_measurements",
    "prepare",
    "output_name",
    "check_calibration",
    "calibration_for",
    "group_label",
    "validate",
    "summarize",
    "write_predictions",
    "main",
]

PUBLIC_MEASUREMENTS = (
    Path(__file__).resolve().parent / "data" / "measurements" / ("serving_public.csv")
)

#: metric -> (serving output, decode-view output, scale to the metric's unit, kind)
METRICS: dict[str, tuple[str, str, float, str]] = {
    "tpot_ms": ("tpot", "tbt", 1e3, "time"),
    "ttft_ms": ("ttft_at_load", "ttft", 1e3, "time"),
    "output_tok_s": ("output_tps", "stps", 1.0, "throughput"),
}
ADDED = ("limit", "predicted", "feasible", "reason")
INTEGER_COLUMNS = ("tp", "pp", "ep", "replicas", "prompt_len", "output_len")
PREFILL_COLUMNS = ("prefill_tp", "prefill_dp", "prefill_ep", "prefill_replicas", "prefill_batch")
#: the load a row was measured at (empty: none given, TTFT without a queue)
LOAD_COLUMNS = ("arrival_rate", "burst_requests")
VIEWS = ("serving", "decode")


def read_measurements(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a measurement CSV as dicts of strings (column order kept in the dicts)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _number(row: Mapping[str, str], name: str, default: float | None = None) -> float | None:
    raw = (row.get(name) or "").strip()
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ParameterError(f"column {name} = {raw!r} is not a number") from None


def _row_overrides(row: Mapping[str, str], kind: str) -> tuple[dict[str, Any], str]:
    """Flat parameter overrides of one row and its serving mode (batch may be None)."""
    over: dict[str, Any] = {"n_params": 0.0}
    for name in INTEGER_COLUMNS:
        value = _number(row, name)
        if value is None:
            raise ParameterError(f"column {name} is empty")
        over[name] = value
    over["replicas"] = over["replicas"] * (_number(row, "dp", 1.0) or 1.0)
    for name in ("weight_bytes", "kv_bytes"):
        value = _number(row, name)
        if value is None:
            raise ParameterError(f"column {name} is empty")
        over[name] = value
    over["compute_bytes"] = _number(row, "compute_bytes", 0.0)
    batch = _number(row, "batch")
    if batch is not None:
        rounded = math.floor(batch) if kind == "time" else math.ceil(batch)
        over["batch"] = float(max(1, rounded))
    else:
        over["batch"] = None
    over["context"] = over["prompt_len"] + over["output_len"]
    serving = (row.get("serving") or "").strip() or "aggregated"
    if serving not in ("aggregated", "disaggregated"):
        raise ParameterError(
            f"column serving = {serving!r} is unknown; choose aggregated or disaggregated"
        )
    for name in (*PREFILL_COLUMNS, *LOAD_COLUMNS):
        value = _number(row, name)
        if value is not None:
            over[name] = value
    return over, serving


def _calibration(path: str | os.PathLike | None) -> dict[str, Any]:
    if path is None:
        return {}
    with open(path) as fh:
        values = yaml.safe_load(fh) or {}
    if not isinstance(values, Mapping):
        raise ParameterError(f"calibration file {path}: expected a mapping of parameter: value")
    try:
        return check_calibration(values)
    except ParameterError as err:
        raise ParameterError(f"calibration file {path}: {err}") from None


def check_calibration(values: Mapping[str, Any]) -> dict[str, Any]:
    """A calibration mapping, checked: flat parameter names with values in their ranges, and
    optionally ``covariance`` (``limits.autodiff.calibrate.check_covariance``) and ``by``
    (measurement columns) with ``groups`` (``"a/b"`` -> mapping), the
    per-group values of ``python -m limits.calibrate --by``; the flat values are the fallback
    for rows of other groups. Raises ``ParameterError`` in one line naming the bad value."""
    values = dict(values)
    by = values.pop("by", None)
    groups = values.pop("groups", None)
    covariance = values.pop("covariance", None)
    if (by is None) != (groups is None):
        raise ParameterError("calibration: 'by' and 'groups' go together")
    _check_values(values, "")
    if covariance is not None:  # for sweeps' bands; validate itself does not use it
        from limits.autodiff.calibrate import check_covariance

        check_covariance(covariance, values)
    if by is None:
        return values
    if isinstance(by, str):
        by = [by]
    if not isinstance(by, list) or not all(isinstance(b, str) for b in by):
        raise ParameterError(f"calibration: by = {by!r} must be a list of column names")
    if not isinstance(groups, Mapping):
        raise ParameterError("calibration: groups must map a group label to parameter: value")
    checked = {}
    for label, group_values in groups.items():
        if not isinstance(group_values, Mapping):
            raise ParameterError(f"calibration: groups.{label} must map parameter: value")
        checked[str(label)] = _check_values(dict(group_values), f"groups.{label}.")
    return {**values, "by": list(by), "groups": checked}


def _check_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    index = parameter_index()
    for name, value in values.items():
        if name not in index:
            raise ParameterError(f"calibration: unknown parameter {where}{name}")
        group, _ = index[name]
        try:  # the group's own constructor checks the range (one rule, in limits.model)
            PARAMETER_GROUPS[group]().replace(**{name: value})
        except ParameterError as err:
            raise ParameterError(f"calibration: {where}{err}") from None
    return values


def group_label(row: Mapping[str, str], by: Sequence[str]) -> str:
    """The label of a row's group for ``--by`` columns (values joined by ``/``)."""
    return "/".join((row.get(column) or "").strip() for column in by)


def calibration_for(calib: Mapping[str, Any], row: Mapping[str, str]) -> dict[str, Any]:
    """The flat calibration values that apply to one measurement row."""
    flat = {k: v for k, v in calib.items() if k not in ("by", "groups")}
    if "by" in calib:
        flat.update(calib["groups"].get(group_label(row, calib["by"]), {}))
    return flat


def _with_serving(p: Params, serving: str) -> Params:
    return dataclasses.replace(p, deployment=dataclasses.replace(p.deployment, serving=serving))


#: the outputs each view compares, jitted: the serving view compiles only the serving model
#: (one compile per preset pair and row count dominates a run's time)
_EVALUATE = {"serving": jax.jit(serving), "decode": jax.jit(evaluate)}


def _evaluate_group(params: list[Params], view: str) -> dict[str, np.ndarray]:
    """Evaluate rows that share presets and static fields in one call (leaves stacked)."""
    stacked = jax.tree_util.tree_map(lambda *xs: np.asarray(xs, dtype=np.float64), *params)
    out = _EVALUATE[view](stacked)
    return {k: np.broadcast_to(np.asarray(v), (len(params),)) for k, v in out.items()}


def validate(
    rows: Sequence[Mapping[str, str]] | str | os.PathLike = PUBLIC_MEASUREMENTS,
    calibration: Mapping[str, Any] | str | os.PathLike | None = None,
    view: str = "serving",
) -> list[dict[str, Any]]:
    """Every row with ``limit``, ``predicted``, ``feasible`` and ``reason`` added (see the
    module docstring). ``calibration``: a mapping of flat parameter names or a YAML file."""
    if view not in VIEWS:
        raise ValueError(f"view = {view!r} is unknown; choose one of {', '.join(VIEWS)}")
    with jax.enable_x64(True):  # figures in float64, like the store
        return _validate(rows, calibration, view)


def prepare(
    rows: Sequence[Mapping[str, str]], view: str = "serving"
) -> tuple[list[tuple[int, tuple[str, str, str], Params]], dict[int, str]]:
    """The ideal ``Params`` of every row that can be evaluated, as ``(row index, (hardware,
    model, serving), params)``, and why the others cannot (row index -> one line). Rows of
    one key share their static fields, so their leaves stack into one evaluation."""
    if view not in VIEWS:
        raise ValueError(f"view = {view!r} is unknown; choose one of {', '.join(VIEWS)}")
    entries: list[tuple[int, tuple[str, str, str], Params]] = []
    reasons: dict[int, str] = {}
    presets: dict[tuple[str, str], Params] = {}  # each preset file parsed once
    to_fill: dict[tuple[str, str, str], list[tuple[int, Params]]] = {}
    for i, row in enumerate(rows):
        try:
            metric = (row.get("metric") or "").strip()
            if metric not in METRICS:
                raise ParameterError(
                    f"metric {metric!r} is unsupported; known: {', '.join(METRICS)}"
                )
            over, serving = _row_overrides(row, METRICS[metric][3])
            batch = over.pop("batch")
            names = (row["hardware"].strip(), row["model"].strip())
            if names not in presets:
                presets[names] = load_params(*names)
            preset = presets[names]
            base = _with_serving(load_params(preset.hardware, preset.model, **over), serving)
        except (LimitsError, KeyError) as err:
            reasons[i] = str(err).splitlines()[0] if str(err) else repr(err)
            continue
        key = (*names, serving)
        if batch is None:  # as many as fit: filled below, one evaluation per key at batch 1
            to_fill.setdefault(key, []).append((i, base))
        else:
            entries.append((i, key, base.replace(batch=batch)))
    room = "serving_max_batch" if view == "serving" else "max_batch"
    with jax.enable_x64(True):
        for key, members in to_fill.items():
            fits = _evaluate_group([m[1] for m in members], view)[room]
            for (i, base), batch in zip(members, fits, strict=True):
                if batch < 1:
                    reasons[i] = "the weights alone do not fit in memory (batch 0)"
                else:
                    entries.append((i, key, base.replace(batch=float(batch))))
    entries.sort(key=lambda e: e[0])
    return entries, reasons


def output_name(metric: str, view: str = "serving") -> str:
    """The model output that a measurement ``metric`` is compared with, in ``view``."""
    serving_name, decode_name, _, _ = METRICS[metric]
    return serving_name if view == "serving" else decode_name


def _validate(rows, calibration, view) -> list[dict[str, Any]]:
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        rows = read_measurements(rows)
    calib = (
        check_calibration(calibration)
        if isinstance(calibration, Mapping)
        else _calibration(calibration)
    )
    results = [{**row, "limit": "", "predicted": "", "feasible": "", "reason": ""} for row in rows]
    entries, reasons = prepare(rows, view)
    for i, reason in reasons.items():
        results[i]["reason"] = reason
    groups: dict[tuple, list[tuple[int, Params, Params]]] = {}
    for i, key, ideal in entries:
        values = calibration_for(calib, rows[i])
        calibrated = ideal.replace(**values) if values else ideal
        groups.setdefault(key, []).append((i, ideal, calibrated))
    for members in groups.values():
        ideal_out = _evaluate_group([m[1] for m in members], view)
        calib_out = _evaluate_group([m[2] for m in members], view) if calib else ideal_out
        for j, (i, _, _) in enumerate(members):
            metric = rows[i]["metric"].strip()
            name = output_name(metric, view)
            scale = METRICS[metric][2]
            feasible = ideal_out["serving_feasible" if view == "serving" else "feasible"][j]
            results[i]["limit"] = float(ideal_out[name][j]) * scale
            results[i]["predicted"] = float(calib_out[name][j]) * scale
            results[i]["feasible"] = bool(feasible)
    return results


def _percentiles(values: Sequence[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    q = np.percentile(a, [0, 10, 50, 90, 100])
    return " ".join(f"{v:7.3f}" for v in q)


def summarize(results: Sequence[Mapping[str, Any]]) -> str:
    """Per metric and per source/engine/hardware: n, percentiles (min p10 p50 p90 max) of
    measured/limit, and the median |measured/predicted - 1| (feasible rows only)."""
    ok = [r for r in results if r["reason"] == "" and r["feasible"]]
    lines = [
        f"{len(results)} rows: {len(ok)} feasible, "
        f"{sum(1 for r in results if r['reason'] == '' and not r['feasible'])} infeasible, "
        f"{sum(1 for r in results if r['reason'] != '')} not evaluated",
        "bound: time metrics need measured/limit >= 1, throughput metrics <= 1",
        f"{'group':<72} {'n':>4}   measured/limit: min     p10     p50     p90     max"
        "   |err(pred)| p50",
    ]

    def block(title: str, key) -> None:
        lines.append(title)
        keys = sorted({key(r) for r in ok})
        for k in keys:
            sel = [r for r in ok if key(r) == k]
            ratio = [float(r["value"]) / r["limit"] for r in sel]
            err = np.median([abs(float(r["value"]) / r["predicted"] - 1.0) for r in sel])
            label = " | ".join(k)
            label = label if len(label) <= 72 else label[:69] + "..."
            lines.append(f"{label:<72} {len(sel):>4}   {_percentiles(ratio)}   {err:7.3f}")

    block("per metric", lambda r: (r["metric"],))
    block(
        "per metric, source, engine, hardware",
        lambda r: (r["metric"], _short_source(r["source"]), r["engine"][:20], r["hardware"]),
    )
    return "\n".join(lines)


def _short_source(source: str) -> str:
    """A source label short enough for one table line (the full one stays in the CSV)."""
    if "mlcommons" in source:
        return "MLPerf4.1 " + source.split("/results/")[-1].split("/")[0][:24]
    if "TensorRT-LLM" in source:
        return "TRT-LLM docs " + ("v0.14 online" if "v0.14" in source else "v0.17 max-load")
    if "nim" in source.lower():
        return "NVIDIA NIM 1.8.0"
    return source[:40]


def write_predictions(results: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write the rows (input columns first, then ``limit, predicted, feasible, reason``)
    atomically: a failed write leaves no half-written file."""
    columns = [c for c in results[0] if c not in ADDED] + list(ADDED) if results else list(ADDED)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for r in results:
                writer.writerow({c: _cell(r.get(c, "")) for c in columns})
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m limits.validate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "measurements",
        nargs="?",
        default=str(PUBLIC_MEASUREMENTS),
        help="measurement CSV (default: the shipped public set)",
    )
    parser.add_argument("--calibration", help="YAML mapping of flat parameter names to values")
    parser.add_argument("--out", required=True, help="predictions CSV to write")
    parser.add_argument(
        "--view",
        choices=VIEWS,
        default="serving",
        help="serving outputs (default) or the decode-step outputs (tbt, isolated ttft, stps)",
    )
    args = parser.parse_args(argv)
    try:
        results = validate(args.measurements, args.calibration, view=args.view)
        write_predictions(results, args.out)
    except (LimitsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summarize(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
