"""Generate docs/validation.md: the limit model against the shipped public measurements,
before and after calibration.

``python -m tools.validation_doc`` rewrites ``docs/validation.md`` and its parity and residual
figures (``docs/figures/validation_*.png``; matplotlib). Every number in the document comes from
this run: measured/limit of the ideal model (``limits.validate``), the 50/50 hold-out (seed 0)
error of a calibration fitted on the other half, a 5-fold cross-validated error, and the
parameters fitted on every row with their standard errors (``limits.calibrate``).
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from limits.calibrate import calibrate
from limits.model.params import Calibration, field_spec
from limits.validate import METRICS, PUBLIC_MEASUREMENTS, _short_source, read_measurements, validate

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "validation.md"
FIGURES = ROOT / "docs" / "figures"
SATURATED = 10.0  # measured/limit above which a TTFT row is read as queueing (overload)
LOSS = "soft_l1"  # the robust loss of the documented command (least_squares' name)
COMMAND = f"python -m limits.calibrate --out CALIBRATION.yaml --holdout 0.5 --seed 0 --loss {LOSS}"


def _batch(row) -> float:
    return float(row["batch"] or "inf")


def _load(row) -> str:
    """TensorRT-LLM v0.14 online rows by offered load: saturated (QPS 32 or all at once) or
    low (QPS 2 or 4); '' for rows without a request rate or in between."""
    rate = row.get("arrival_rate") or ""
    if rate == "":
        return ""
    return "saturated" if float(rate) >= 32 else ("low" if float(rate) <= 4 else "")


def _held_out_ratio(rows, result) -> dict[int, float]:
    """predicted / measured of each scored (held-out) row."""
    return {
        int(i): result["predicted"][j] / float(rows[int(i)]["value"])
        for j, i in enumerate(result["order"])
        if result["scored"][j]
    }


def per_row_table(rows, result) -> str:
    """Every held-out row: its settings, measured, predicted and error (nothing left out)."""
    lines = [
        "| row | metric | hardware | model | tp | batch | I / O | arrival_rate | engine "
        "| measured | predicted | error |",
        "|---:|---|---|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for i, v in sorted(_held_out_ratio(rows, result).items()):
        r = rows[i]
        lines.append(
            f"| {i + 1} | {r['metric']} | {r['hardware']} | {r['model']} | {r['tp']} | "
            f"{r['batch'] or 'max'} | {r['prompt_len']} / {r['output_len']} | "
            f"{r.get('arrival_rate') or '-'} | {r['engine'][:24]} | {float(r['value']):.4g} | "
            f"{v * float(r['value']):.4g} | {100 * (v - 1):+.0f}% |"
        )
    return "\n".join(lines)


def _pct(values: Sequence[float]) -> str:
    q = np.percentile(np.asarray(values, dtype=np.float64), [0, 10, 50, 90, 100])
    return " | ".join(f"{v:.3g}" for v in q)


def _groups(rows, key: Callable) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        out.setdefault(key(r), []).append(i)
    return dict(sorted(out.items()))


def _label(r) -> tuple:
    return (r["metric"], _short_source(r["source"]), r["engine"][:28], r["hardware"])


def ratio_table(rows, ideal) -> str:
    """measured/limit percentiles per metric, then per metric, source, engine, hardware."""
    lines = [
        "| metric | source | engine | hardware | n | min | p10 | p50 | p90 | max |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key in (lambda r: (r["metric"], "all", "all", "all"), _label):
        for k, idx in _groups(rows, key).items():
            ratio = [float(rows[i]["value"]) / ideal[i]["limit"] for i in idx]
            lines.append(f"| {' | '.join(k)} | {len(idx)} | {_pct(ratio)} |")
    return "\n".join(lines)


def error_table(rows, errors: dict[str, dict[int, float]]) -> str:
    """MAPE per metric and per group for each of ``errors`` (name -> row -> |pred/meas - 1|)."""
    names = list(errors)
    head = "| metric | source | engine | hardware | " + " | ".join(f"n, MAPE {n}" for n in names)
    lines = [head + " |", "|---|---|---|---|" + "---:|" * len(names)]
    for key in (lambda r: (r["metric"], "all", "all", "all"), _label):
        for k, idx in _groups(rows, key).items():
            cells = []
            for n in names:
                e = [errors[n][i] for i in idx if i in errors[n]]
                cells.append(f"{len(e)}, {100 * np.mean(e):.1f}%" if e else "-")
            lines.append(f"| {' | '.join(k)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _errors(result) -> dict[int, float]:
    out = {}
    for j, i in enumerate(result["order"]):
        if result["scored"][j]:
            rows_value = result["measured"][j]
            out[int(i)] = abs(result["predicted"][j] / rows_value - 1.0)
    return out


def figures(rows, half, ideal) -> list[str]:
    """Parity (log-log) and residuals against batch, tp and prompt length; file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(exist_ok=True)
    sel = [j for j in range(len(half["order"])) if half["scored"][j]]
    idx = [int(half["order"][j]) for j in sel]
    meas = np.array([float(rows[i]["value"]) for i in idx])
    pred = np.array([half["predicted"][j] for j in sel])
    limit = np.array([ideal[i]["limit"] for i in idx])
    metric = np.array([rows[i]["metric"] for i in idx])
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 4))
    for ax, m in zip(axes, METRICS, strict=True):
        s = metric == m
        ax.loglog(meas[s], limit[s], ".", color="0.6", label="ideal limit")
        ax.loglog(meas[s], pred[s], ".", color="C0", label="calibrated (held out)")
        lo, hi = min(meas[s].min(), pred[s].min()), max(meas[s].max(), pred[s].max())
        ax.loglog([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set(title=m, xlabel="measured", ylabel="model")
        ax.legend(fontsize=7)
    fig.tight_layout()
    names = ["validation_parity.png"]
    fig.savefig(FIGURES / names[0], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(12.6, 3.6))
    resid = np.log(pred / meas)
    for ax, column in zip(axes, ("batch", "tp", "prompt_len"), strict=True):
        for m in METRICS:
            s = metric == m
            x = [float(rows[i][column] or "nan") for i, keep in zip(idx, s, strict=True) if keep]
            ax.semilogx(x, resid[s], ".", label=m)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set(xlabel=column + (" (empty: max load, not shown)" if column == "batch" else ""),
               ylabel="log(predicted / measured)")  # fmt: skip
        ax.legend(fontsize=7)
    fig.tight_layout()
    names.append("validation_residuals.png")
    fig.savefig(FIGURES / names[1], dpi=110)
    plt.close(fig)
    return names


def build() -> str:
    rows = read_measurements(PUBLIC_MEASUREMENTS)
    ideal = validate(rows)
    half = calibrate(rows, holdout=0.5, seed=0, loss=LOSS)
    folds = calibrate(rows, folds=5, seed=0, loss=LOSS)
    for r in (half, folds):
        r["measured"] = np.array([float(rows[i]["value"]) for i in r["order"]])
    fitted = folds["fit"]
    names = figures(rows, half, ideal)
    ttft_ratio = {
        i: float(r["value"]) / r["limit"] for i, r in enumerate(ideal) if r["metric"] == "ttft_ms"
    }
    saturated = [i for i, v in ttft_ratio.items() if v > SATURATED]
    half_err = _errors(half)
    by_engine = calibrate(rows, holdout=0.5, seed=0, by=("engine",), loss=LOSS)
    by_engine["measured"] = np.array([float(rows[i]["value"]) for i in by_engine["order"]])
    ratio = _held_out_ratio(rows, half)
    low = [
        v for i, v in ratio.items() if _batch(rows[i]) <= 2 and rows[i]["metric"] != "output_tok_s"
    ]
    tpot_rates = {
        k: [v for i, v in ratio.items() if rows[i]["metric"] == "tpot_ms" and _load(rows[i]) == k]
        for k in ("saturated", "low")
    }
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    params = "\n".join(
        f"| `{n}` | {fitted.shared[n]:.4g} | {fitted.shared_stderr[n]:.2g} | "
        f"{field_spec(Calibration, n).doc} |"
        for n in fitted.names
    )
    summary = "\n".join(
        f"| {m} | {half['error'][m][1]} | {half['error'][m][0]:.1f}% | "
        f"{folds['error'][m][0]:.1f}% | {folds['fit_error'][m][0]:.1f}% |"
        for m in METRICS
        if m in half["error"]
    )
    engine_err = {m: v for m, v in by_engine["error"].items()}
    alt = "\n".join(
        f"| {m} | {half['error'][m][0]:.1f}% | {engine_err[m][0]:.1f}% |"
        for m in METRICS
        if m in half["error"] and m in engine_err
    )
    targets = {"tpot_ms": 15.0, "ttft_ms": 25.0}
    verdict = "; ".join(
        f"{m} {half['error'][m][0]:.1f}% ({'met' if half['error'][m][0] <= t else 'not met'})"
        for m, t in targets.items()
    )
    loaded = [i for i, r in enumerate(rows) if r["metric"] == "ttft_ms" and _load(r) == "saturated"]
    ttft_sat = [abs(ratio[i] - 1) for i in loaded if i in ratio]
    sat_tpot = tpot_rates["saturated"]
    return f"""# Validation against public serving measurements

<!-- Generated by `python -m tools.validation_doc` on {today}; do not edit by hand. -->

The shipped set `limits/data/measurements/serving_public.csv` ({len(rows)} rows; sources in
its README) checked against the ideal limit (`python -m limits.validate`) and against the
model calibrated by autodiff (`python -m limits.calibrate`, docs in `limits/calibrate.py`):
log-space residuals, Jacobians by `jax.jacfwd`, `scipy.optimize.least_squares` with bounds
(0 < efficiency <= 1, overheads >= 0) and a robust loss ({LOSS}, f_scale 0.1). The TTFT rows
measured at a request rate carry it (`arrival_rate`, `burst_requests`) and are predicted with
the prompt queue (docs/serving.md, "The prompt queue"): every row stays in every error below.

## Error after calibration

MAPE = mean |predicted / measured - 1|. Hold-out: fit on a random half (seed 0), score the
other half: `{COMMAND}` (the profile `limits/conf/calibration/public_serving_half.yaml`;
`python -m limits.validate --calibration` on the other half reproduces it). 5-fold: each row
predicted by a fit without its fold. In-sample: the fit on every row (`public_serving.yaml`).

| metric | held-out rows | MAPE 50/50 held out | MAPE 5-fold | MAPE in-sample |
|---|---:|---:|---:|---:|
{summary}

Targets of issue 11 (50/50 held out): tpot_ms <= 15%, ttft_ms <= 25%. Here: {verdict}.

The same split fitted per engine (`--by engine`: TensorRT-LLM v0.14 and v0.17 get their own
values, engines with fewer than 20 fitting rows the shared ones); the file it writes has
`groups`, which `validate` applies per row but sweeps do not take, so the shipped profiles are
the shared fit:

| metric | MAPE 50/50 shared | MAPE 50/50 `--by engine` |
|---|---:|---:|
{alt}

Held-out error per group (50/50 split):

{error_table(rows, {"50/50": half_err, "5-fold": _errors(folds)})}

![parity](figures/{names[0]})

Parity (log-log, held-out rows of the 50/50 split): grey, the ideal limit; blue, calibrated.

![residuals](figures/{names[1]})

## Fitted parameters (every row, one shared set)

Standard errors from the loss-weighted Jacobian at the optimum, (J^T J)^-1 s^2; a value at
its bound (an overhead at 0) has no interval there.

| parameter | value (SI) | standard error | meaning |
|---|---:|---:|---|
{params}

## Measured / ideal limit (before calibration)

Time metrics must be >= 1 and throughput <= 1 for the limit to be a bound. The ideal limit
here includes the prompt queue at each row's measured load (itself a bound: it grows with the
prefill time), so the TTFT rows at high load are no longer tens to hundreds of times their
limit.

{ratio_table(rows, ideal)}

## Where the model is known to be wrong (what stands in the way of 7%)

- **Decode at low load is faster than the fitted efficiencies allow.** At batch <= 2 the
  held-out TPOT and TTFT rows are predicted at a median {np.median(low):.2f}x the measured
  ({len(low)} rows); the TensorRT-LLM v0.14 TPOT rows at QPS 2-4 at a median
  {np.median(tpot_rates["low"]):.2f} ({len(tpot_rates["low"])} rows). KV-cache reads now
  have their own efficiency (`kv_mem_efficiency` = {fitted.shared["kv_mem_efficiency"]:.2f}
  of the weight stream's; held-out TPOT was 19.6% with one efficiency for both), and the
  weight stream is fitted at `mem_efficiency` = {fitted.shared["mem_efficiency"]:.2f}
  {"(its bound: peak bandwidth)" if fitted.shared["mem_efficiency"] >= 0.999 else ""} with
  `layer_overhead` = {1e6 * fitted.shared["layer_overhead"]:.0f} us per layer. Low-load
  decode is still over-predicted: the fixed cost per pass that the busy rows need looks
  larger than what a single user's pass pays (a hypothesis, e.g. graph capture at small
  batch; a per-pass cost that grows with the batch would test it).
- **Saturated TPOT.** At QPS 32 or all at once, held-out TPOT predicted/measured ranges
  {min(sat_tpot):.2f}-{max(sat_tpot):.2f} ({len(sat_tpot)} rows; long prompts over-, short
  ones under-predicted). The steady state puts `batch x I / O` prompt tokens in every
  iteration, while a real engine prefills at most its budget (`max_num_tokens`) per
  iteration; that budget is not in the measurements, so it is fitted
  (`engine_prefill_budget` = {fitted.shared["engine_prefill_budget"]:.0f} +/-
  {fitted.shared_stderr["engine_prefill_budget"]:.2g} tokens on every row, one value for every
  engine; {half["fit"].shared["engine_prefill_budget"]:.0f} +/-
  {half["fit"].shared_stderr["engine_prefill_budget"]:.2g} on the 50/50 half: few saturated
  rows determine it, so its error bar is wide; when this was written, with seed 1 it changed
  no held-out error, with seeds 0 and 2 it lowered held-out TPOT by 1.3-2.2 points). Engines differ
  (TensorRT-LLM's default is 8,192, vLLM's depends on the version) and the budget also
  stands in for how they interleave prompts with decode.
- **TTFT under overload.** {len(loaded)} of {len(ttft_ratio)} TTFT rows were measured at
  QPS 32 or with all requests at once (up to 280x the limit without a queue); with the prompt
  queue their held-out error is {100 * np.mean(ttft_sat):.1f}% ({len(ttft_sat)} rows), and
  measured / ideal limit (with the queue) is at most {max(ttft_ratio.values()):.1f}
  ({len(saturated)} rows above {SATURATED:g}). The queue's service time is the prefill compute
  alone (a bound); decode iterations interleaved with queued prompts lengthen it in practice,
  and the prefill efficiency absorbs that.
- **Closed-loop and capacity-bound rows.** NIM rows give client concurrency, not a request
  rate: at concurrency 100 (5,000-token prompts) the KV cache no longer holds every request
  and requests wait for a slot, which the model (no closed-loop queue) does not predict.
- **MLPerf rows.** One or two rows per system (MI300X with vLLM, Mixtral-8x7B with
  expert parallelism) cannot be fitted on their own; the shared values miss them by 30-50%.
- **Little's-law batches.** The TensorRT-LLM v0.14 online rows give no concurrency; batch is
  derived (output tok/s x ITL), a mean that overstates the batch near saturation.
- **Max-load throughput.** Rows without a batch run at the largest batch that fits
  (`serving_max_batch`); real engines cap batch and KV blocks, which the runtime reserve
  (`workspace_bytes`, not fittable by gradient: the batch is fixed before the fit) would model.

## Every held-out row (50/50 split, seed 0)

{per_row_table(rows, half)}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DOC))
    args = parser.parse_args(argv)
    text = build()
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
