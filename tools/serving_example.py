"""The worked example of docs/serving.md: Llama-3.1-70B FP8 on 8-64 H200, 4000 in / 500 out,
TTFT <= 300 ms and TPOT <= 10 ms, aggregated against disaggregated; prints the tables and
writes the Pareto chart:
``python -m tools.serving_example --figure docs/figures/serving_frontier.png``
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
from pathlib import Path

import jax
import numpy as np

from limits.model import evaluate
from limits.model.outputs import BOUND_LABELS
from limits.presets import load_params

TTFT, TPOT = 0.3, 0.01
WORKLOAD = dict(prompt_len=4000.0, output_len=500.0, context=4250.0, weight_bytes=1.0, kv_bytes=1.0)
BATCHES = np.array([1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512], float)


def _evaluate(mode: str, **kw) -> dict[str, np.ndarray]:
    p = load_params("h200", "llama3_70b", n_params=0.0, batch=BATCHES, **WORKLOAD, **kw)
    p = dataclasses.replace(p, deployment=dataclasses.replace(p.deployment, serving=mode))
    return {k: np.broadcast_to(np.asarray(v), BATCHES.shape) for k, v in evaluate(p).items()}


def _best(out: dict[str, np.ndarray]) -> int | None:
    ok = (out["ttft_at_load"] <= TTFT) & (out["tpot"] <= TPOT) & out["serving_feasible"]
    if not ok.any():
        return None
    return int(np.argmax(np.where(ok, out["output_tps_per_chip"], -np.inf)))


def _row(out: dict[str, np.ndarray], i: int) -> str:
    return (
        f"{BATCHES[i]:.0f} | {out['output_tps_per_chip'][i]:.0f} | "
        f"{out['output_tps_per_user'][i]:.0f} | {out['tpot'][i] * 1e3:.2f} | "
        f"{out['ttft_at_load'][i] * 1e3:.0f} | {BOUND_LABELS[int(out['serving_bound'][i])]}"
    )


def tables() -> str:
    lines = [
        "Aggregated (one pool per instance; the per-chip figure does not depend on `replicas`):",
        "",
        "| tp | batch | tok/s/chip | tok/s/user | TPOT ms | TTFT ms | binding wall |",
        "|---|---|---|---|---|---|---|",
    ]
    for tp in (1.0, 2.0, 4.0, 8.0):
        out = _evaluate("aggregated", tp=tp)
        i = _best(out)
        lines.append(
            f"| {tp:.0f} | "
            + (_row(out, i) if i is not None else "no batch meets the SLOs | | | | |")
            + " |"
        )
    lines += [
        "",
        "Disaggregated (prefill pool + decode pool, 16-64 chips in all; the five best):",
        "",
        "| prefill tp x chips | decode tp x chips | batch | tok/s/chip | tok/s/user | TPOT ms "
        "| TTFT ms | binding wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    found = []
    for ptp, tp, pre, dec in itertools.product(
        (1.0, 2.0, 4.0, 8.0), (2.0, 4.0, 8.0), (8.0, 16.0, 24.0, 32.0), (8.0, 16.0, 32.0, 48.0)
    ):
        if pre + dec > 64:
            continue
        out = _evaluate(
            "disaggregated",
            tp=tp,
            replicas=dec / tp,
            prefill_tp=ptp,
            prefill_replicas=pre / ptp,
        )
        i = _best(out)
        if i is not None:
            found.append(
                (float(out["output_tps_per_chip"][i]), -(pre + dec), ptp, pre, tp, dec, out, i)
            )
    found.sort(key=lambda r: (r[0], r[1]), reverse=True)
    for _, _, ptp, pre, tp, dec, out, i in found[:5]:
        lines.append(f"| {ptp:.0f} x {pre:.0f} | {tp:.0f} x {dec:.0f} | {_row(out, i)} |")
    return "\n".join(lines)


def figure(path: Path) -> None:
    """The aggregated tokens/s/user vs tokens/s/chip chart from a sweep store."""
    from limits.analysis import open_results
    from limits.plots import serving_frontier_plot
    from limits.sweep import compose, run

    overrides = [
        "hardware=h200",
        "model=llama3_70b",
        "grid=point",
        "++grid.tp=[1,2,4,8]",
        f"++grid.batch=[{','.join(str(int(b)) for b in range(1, 513))}]",
        *(f"deployment.{k}={v}" for k, v in WORKLOAD.items()),
        "model.n_params=0",
        "store.variables=[output_tps_per_chip,output_tps_per_user,tpot,ttft_at_load,"
        "serving_feasible]",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        result = run(compose([*overrides, f"store.path={Path(tmp) / 's.zarr'}"]), verbose=False)
        ds = open_results(result.path).load()  # every variable over every axis
    fig = serving_frontier_plot(ds, color_by="tp")
    ax = fig.axes[0]
    ax.axvline(1.0 / TPOT, color="grey", linestyle="--", linewidth=0.8)
    ax.set_title("Llama-3.1-70B FP8 on H200, 4000 in / 500 out (dashed: TPOT = 10 ms)")
    fig.savefig(path, dpi=120, bbox_inches="tight")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figure", type=Path, default=None, help="write the Pareto chart here")
    args = ap.parse_args()
    with jax.enable_x64(True):
        print(tables())
        if args.figure:
            figure(args.figure)
            print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
