"""Fit calibration parameters to serving measurements, by autodiff through the model.

``python -m limits.calibrate [MEASUREMENTS.csv] --out CALIBRATION.yaml [--fit a,b]
[--by hardware,engine] [--min-rows N] [--holdout 0.5 | --folds K] [--seed S] [--loss L]
[--balance]``

Rows become parameters exactly as in ``python -m limits.validate`` (same schema, same rules);
rows the ideal model finds infeasible (they do not fit in memory) are left out, as validate
leaves them out of its error. The fit (``limits.autodiff.calibrate``) minimises a robust loss
of ``log(predicted) - log(measured)`` within physical bounds. It prints the mean absolute
percentage error (MAPE) per metric on rows it did not fit (``--holdout`` fraction or
``--folds``), or on the fitted rows when neither is given, and writes a YAML file that
``python -m limits.validate --calibration FILE`` accepts; without ``--by`` it is a flat
mapping, usable as a sweep preset (``limits/conf/calibration/``, ``calibration=NAME``).
With ``--holdout`` the file is the fit on the training rows (so validating the held-out
rows reproduces the printed error); with ``--folds`` or neither, the fit on every row.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

from limits.autodiff.calibrate import DEFAULT_FIT, FITTABLE, Batch, Fit, Problem, fit, mape
from limits.errors import LimitsError, ParameterError
from limits.model import evaluate, serving
from limits.model.params import Calibration, field_spec
from limits.presets import available
from limits.validate import (
    LOAD_COLUMNS,
    METRICS,
    PREFILL_COLUMNS,
    PUBLIC_MEASUREMENTS,
    VIEWS,
    group_label,
    output_name,
    prepare,
    read_measurements,
)

__all__ = ["REQUIRED", "check_rows", "build_problem", "calibrate", "write_calibration", "main"]

REQUIRED = (
    "hardware",
    "model",
    "tp",
    "pp",
    "ep",
    "replicas",
    "prompt_len",
    "output_len",
    "weight_bytes",
    "kv_bytes",
    "metric",
    "value",
)
_POSITIVE = (
    "tp",
    "pp",
    "ep",
    "replicas",
    "prompt_len",
    "output_len",
    "weight_bytes",
    "kv_bytes",
    "value",
    "batch",
    "dp",
    "burst_requests",
    *PREFILL_COLUMNS,
)
_NON_NEGATIVE = ("compute_bytes", "arrival_rate")
_INF_ALLOWED = LOAD_COLUMNS  # inf: all requests at once / a steady state

#: the view's outputs, jitted: the serving view compiles only the serving model (compiles
#: per preset pair dominate turning rows into parameters)
_JITTED = {"serving": jax.jit(serving), "decode": jax.jit(evaluate)}


def check_rows(rows: Sequence[Mapping[str, str]], path: str = "measurements") -> None:
    """Refuse a measurement file in one line naming the row and the column: a missing column,
    an unknown metric or preset, a value that is not a number or not > 0."""
    if not rows:
        raise ParameterError(f"{path}: no measurement rows")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise ParameterError(
            f"{path}: column {missing[0]} is missing (needed: {', '.join(REQUIRED)})"
        )
    presets = {"hardware": set(available("hardware")), "model": set(available("model"))}
    for i, row in enumerate(rows):
        where = f"{path}: row {i + 1} (line {i + 2}), column"
        metric = (row.get("metric") or "").strip()
        if metric not in METRICS:
            raise ParameterError(
                f"{where} metric: {metric!r} is unknown; known: {', '.join(METRICS)}"
            )
        for column, names in presets.items():
            name = (row.get(column) or "").strip()
            if name not in names:
                raise ParameterError(f"{where} {column}: unknown preset {name!r}")
        for column in (*_POSITIVE, *_NON_NEGATIVE):
            raw = (row.get(column) or "").strip()
            if raw == "":
                if column in REQUIRED:
                    raise ParameterError(f"{where} {column}: empty")
                continue
            try:
                value = float(raw)
            except ValueError:
                raise ParameterError(f"{where} {column}: {raw!r} is not a number") from None
            finite = np.isfinite(value) or (column in _INF_ALLOWED and value == np.inf)
            if not finite or (value < 0 if column in _NON_NEGATIVE else value <= 0):
                bound = ">= 0" if column in _NON_NEGATIVE else "> 0"
                raise ParameterError(f"{where} {column}: {raw} is not {bound}")


def build_problem(
    rows: Sequence[Mapping[str, str]], names: Sequence[str] = DEFAULT_FIT, view: str = "serving"
) -> tuple[Problem, np.ndarray, list[int]]:
    """The fit problem of the rows, the row index of each of its rows (batch order) and the
    rows left out because the ideal model finds them infeasible. Refuses rows that cannot be
    evaluated (one line naming the row)."""
    entries, reasons = prepare(rows, view)
    if reasons:
        i, reason = min(reasons.items())
        raise ParameterError(f"row {i + 1} (line {i + 2}): {reason}")
    by_key: dict[tuple, list] = {}
    for i, key, params in entries:
        by_key.setdefault(key, []).append((i, params))
    outputs = tuple(output_name(m, view) for m in METRICS)
    feasible_name = "serving_feasible" if view == "serving" else "feasible"
    batches, order, infeasible = [], [], []
    with jax.enable_x64(True):
        for members in by_key.values():
            stacked = jax.tree_util.tree_map(
                lambda *xs: np.asarray(xs, dtype=np.float64), *[m[1] for m in members]
            )
            ok = np.asarray(_JITTED[view](stacked)[feasible_name], bool)
            ok = np.broadcast_to(ok, (len(members),))
            infeasible += [m[0] for m, good in zip(members, ok, strict=True) if not good]
            keep = [m for m, good in zip(members, ok, strict=True) if good]
            if not keep:
                continue
            stacked = jax.tree_util.tree_map(
                lambda *xs: np.asarray(xs, dtype=np.float64), *[m[1] for m in keep]
            )
            metrics = [rows[i]["metric"].strip() for i, _ in keep]
            batches.append(
                Batch(
                    params=stacked,
                    outputs=outputs,
                    metric=np.array([list(METRICS).index(m) for m in metrics]),
                    scale=np.array([METRICS[m][2] for m in metrics]),
                    measured=np.array([float(rows[i]["value"]) for i, _ in keep]),
                )
            )
            order += [i for i, _ in keep]
    fn = serving if view == "serving" else evaluate
    return Problem(batches, names, fn=fn), np.array(order), sorted(infeasible)


def _metric_mape(rows, order, predicted, select) -> dict[str, tuple[float, int]]:
    metrics = np.array([rows[i]["metric"].strip() for i in order])
    measured = np.array([float(rows[i]["value"]) for i in order])
    out = {}
    for m in METRICS:
        sel = select & (metrics == m)
        if sel.any():
            out[m] = (mape(predicted[sel], measured[sel]), int(sel.sum()))
    return out


def calibrate(
    rows: Sequence[Mapping[str, str]] | str | os.PathLike = PUBLIC_MEASUREMENTS,
    names: Sequence[str] = DEFAULT_FIT,
    by: Sequence[str] = (),
    min_rows: int = 20,
    holdout: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    view: str = "serving",
    loss: str = "cauchy",
    f_scale: float = 0.1,
    balance: bool = False,
) -> dict[str, Any]:
    """Fit and estimate the error. Returns ``fit`` (a ``Fit``), ``error`` (metric ->
    (MAPE %, rows) on rows not fitted, or on fitted rows when neither ``holdout`` nor
    ``folds``), ``fit_error`` (the same on the fitted rows), ``fitted_rows`` (row indices),
    ``heldout_rows``, ``infeasible`` (rows left out), ``n_rows``, and per fitted-problem row
    ``order`` (its row index), ``predicted`` and ``scored`` (counted in ``error``).
    ``balance``: weight rows so that each metric counts as much as another in the fit (each
    row ``sqrt(n / (metrics x rows of its metric))``), else every row alike."""
    source = None
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        source = str(rows)
        rows = read_measurements(rows)
    if view not in VIEWS:
        raise ParameterError(f"view = {view!r} is unknown; choose one of {', '.join(VIEWS)}")
    if holdout is not None and folds is not None:
        raise ParameterError("choose --holdout or --folds, not both")
    if holdout is not None and not 0.0 < holdout < 1.0:
        raise ParameterError(f"--holdout = {holdout:g} is out of range; allowed: (0, 1)")
    if folds is not None and folds < 2:
        raise ParameterError(f"--folds = {folds} is out of range; allowed: whole number >= 2")
    missing = [c for c in by if c not in rows[0]] if rows else []
    if missing:
        raise ParameterError(f"--by {missing[0]}: no such column in the measurements")
    check_rows(rows, source or "measurements")
    problem, order, infeasible = build_problem(rows, names, view)
    n = len(problem)
    labels = sorted({group_label(rows[i], by) for i in order}) if by else []
    group_of = (
        np.array([labels.index(group_label(rows[i], by)) for i in order]) if by else np.full(n, -1)
    )
    metric_of = np.array([rows[i]["metric"].strip() for i in order])
    weight = np.ones(n)
    if balance:
        counts = {m: int((metric_of == m).sum()) for m in set(metric_of)}
        weight = np.array([np.sqrt(n / (len(counts) * counts[m])) for m in metric_of])
    kw: dict[str, Any] = dict(
        group_of=group_of,
        labels=labels,
        min_rows=min_rows,
        loss=loss,
        f_scale=f_scale,
        weight=weight,
    )
    rng = np.random.default_rng(seed)
    predicted = np.empty(n)
    if holdout is not None:
        perm = rng.permutation(n)
        test = np.zeros(n, bool)
        test[perm[: round(holdout * n)]] = True
        result = fit(problem, ~test, **kw)
        predicted = problem.predict(result.per_row(n))
        train = ~test
    elif folds is not None:
        fold_of = rng.permutation(np.arange(n) % folds)
        for k in range(folds):
            part = fit(problem, fold_of != k, **kw)
            predicted[fold_of == k] = problem.predict(part.per_row(n))[fold_of == k]
        test = np.ones(n, bool)
        result = fit(problem, None, **kw)
        train = np.ones(n, bool)
    else:
        result = fit(problem, None, **kw)
        predicted = problem.predict(result.per_row(n))
        test = train = np.ones(n, bool)
    fitted_pred = problem.predict(result.per_row(n))
    return {
        "fit": result,
        "error": _metric_mape(rows, order, predicted, test),
        "fit_error": _metric_mape(rows, order, fitted_pred, train),
        "fitted_rows": sorted(int(i) for i in order[train]),
        "heldout_rows": sorted(int(i) for i in order[test]) if holdout is not None else [],
        "infeasible": infeasible,
        "n_rows": len(rows),
        "by": list(by),
        "how": "holdout" if holdout is not None else ("folds" if folds is not None else "fit"),
        "order": order,  # row index of each fitted-problem row
        "predicted": predicted,  # per problem row: from a fit without it where one was made
        "scored": test,  # problem rows that the printed error counts
    }


def _ranges(indices: Sequence[int]) -> str:
    """Row numbers (1-based) as compact ranges: ``1-4,7,9-10``."""
    runs: list[list[int]] = []
    for i in sorted(j + 1 for j in indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}-{b}" if b != a else f"{a}" for a, b in runs)


def render(result: Mapping[str, Any], source: str, command: str) -> str:
    """The calibration YAML: a commented header (date, source, rows, errors, standard
    errors), then the values (flat; ``by`` and ``groups`` when fitted by group)."""
    f: Fit = result["fit"]
    how = {
        "holdout": "held-out rows (not fitted)",
        "folds": "cross-validation folds (each row predicted by a fit without it)",
        "fit": "the fitted rows themselves (no hold-out)",
    }[result["how"]]
    lines = [
        "# Calibration fitted by python -m limits.calibrate (limits.autodiff.calibrate).",
        f"# date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"# command: {command}",
        f"# measurements: {source}",
        f"# fitted on {len(result['fitted_rows'])} of {result['n_rows']} rows "
        "(data row numbers, 1 = first row after the header):",
        *textwrap.wrap(
            _ranges(result["fitted_rows"]).replace(",", ", "),
            92,
            initial_indent="#   ",
            subsequent_indent="#   ",
            break_on_hyphens=False,
        ),
    ]
    if result["infeasible"]:
        lines.append(f"# left out (infeasible in the ideal model): {_ranges(result['infeasible'])}")
    lines.append(f"# MAPE on {how}:")
    for m, (err, k) in result["error"].items():
        lines.append(f"#   {m}: {err:.1f}% ({k} rows)")
    lines.append("# MAPE on the fitted rows:")
    for m, (err, k) in result["fit_error"].items():
        lines.append(f"#   {m}: {err:.1f}% ({k} rows)")
    lines.append("# values in SI (s, fractions); +/- one standard error from the Jacobian")
    body = {name: float(f.shared[name]) for name in f.names}
    text = "\n".join(lines) + "\n"
    for name in f.names:
        meaning = field_spec(Calibration, name).doc
        unit, lo, hi = FITTABLE[name]
        if body[name] in (lo * unit, hi * unit):
            meaning += " (at its bound: the standard error is no interval there)"
        text += f"{name}: {body[name]:.6g}  # +/- {f.shared_stderr[name]:.2g}; {meaning}\n"
    if np.isfinite(f.shared_cov).all():
        text += (
            "# covariance of the values above (SI): sweeps with calibration=<this profile> "
            "store\n# <output>_expected and <output>_band (one sigma) from it\n"
        )
        text += "covariance:\n"
        text += f"  names: [{', '.join(f.names)}]\n"
        text += "  matrix:\n"
        for row in f.shared_cov:
            text += "    - [" + ", ".join(f"{v:.6g}" for v in row) + "]\n"
    else:
        text += "# no covariance: a fitted parameter is not determined by the rows\n"
    if f.groups:
        if f.fallback:
            text += f"# groups below --min-rows take the values above: {', '.join(f.fallback)}\n"
        text += yaml.safe_dump({"by": result["by"]}, sort_keys=False)
        text += "groups:\n"
        for label, values in f.groups.items():
            text += f"  {_yaml_key(label)}:  # {f.rows[label]} rows\n"
            for name in f.names:
                text += (
                    f"    {name}: {values[name]:.6g}  # +/- {f.groups_stderr[label][name]:.2g}\n"
                )
    return text


def _yaml_key(label: str) -> str:
    return yaml.safe_dump(label, default_style='"').strip()


def write_calibration(text: str, path: str | os.PathLike) -> None:
    """Write atomically: a failed write leaves no half-written file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m limits.calibrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "measurements",
        nargs="?",
        default=str(PUBLIC_MEASUREMENTS),
        help="measurement CSV (default: the shipped public set)",
    )
    parser.add_argument("--out", required=True, help="calibration YAML to write")
    parser.add_argument(
        "--fit",
        default=",".join(DEFAULT_FIT),
        help=f"parameters to fit, comma-separated: {', '.join(FITTABLE)}",
    )
    parser.add_argument("--by", default="", help="columns to fit separately by, e.g. hardware")
    parser.add_argument(
        "--min-rows",
        type=int,
        default=20,
        help="groups with fewer rows take the shared fit (default 20)",
    )
    parser.add_argument("--holdout", type=float, help="fraction of rows held out, e.g. 0.5")
    parser.add_argument("--folds", type=int, help="k-fold cross-validation instead")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument(
        "--loss", default="cauchy", choices=("linear", "soft_l1", "huber", "cauchy", "arctan")
    )
    parser.add_argument(
        "--f-scale", type=float, default=0.1, help="robust loss scale in log units (0.1 ~ 10%%)"
    )
    parser.add_argument(
        "--balance",
        action="store_true",
        help="weight rows so that every metric counts alike (default: every row alike)",
    )
    parser.add_argument("--view", choices=VIEWS, default="serving")
    args = parser.parse_args(argv)
    command = "python -m limits.calibrate " + " ".join(
        a if a != args.measurements else _shown(a)
        for a in (argv if argv is not None else sys.argv[1:])
    )
    try:
        result = calibrate(
            args.measurements,
            _names(args.fit),
            _names(args.by),
            args.min_rows,
            args.holdout,
            args.folds,
            args.seed,
            args.view,
            args.loss,
            args.f_scale,
            args.balance,
        )
        write_calibration(render(result, _source(args.measurements), command), args.out)
    except (LimitsError, OSError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(summary(result))
    print(f"wrote {args.out}")
    return 0


def summary(result: Mapping[str, Any]) -> str:
    """The printed report: errors per metric and the fitted values."""
    f: Fit = result["fit"]
    where = {"holdout": "held-out", "folds": "cross-validated", "fit": "in-sample"}[result["how"]]
    lines = [
        f"{len(result['fitted_rows'])} rows fitted, {len(result['infeasible'])} infeasible left out"
    ]
    for m, (err, k) in result["error"].items():
        fit_err = result["fit_error"].get(m, (float("nan"), 0))[0]
        lines.append(f"{m:<14} MAPE {where}: {err:6.1f}% ({k} rows)   fitted rows: {fit_err:6.1f}%")
    lines.append(
        "shared: "
        + ", ".join(f"{n} = {f.shared[n]:.4g} +/- {f.shared_stderr[n]:.2g}" for n in f.names)
    )
    for label, values in f.groups.items():
        lines.append(
            f"{label} ({f.rows[label]} rows): "
            + ", ".join(
                f"{n} = {values[n]:.4g} +/- {f.groups_stderr[label][n]:.2g}" for n in f.names
            )
        )
    if f.fallback:
        lines.append(f"shared values for: {', '.join(f.fallback)}")
    return "\n".join(lines)


def _source(path: str) -> str:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return f"{_shown(path)} (sha256 {digest}...)"


def _shown(path: str) -> str:
    """A path relative to the repository when inside it (no machine-specific prefix)."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


if __name__ == "__main__":
    raise SystemExit(main())
