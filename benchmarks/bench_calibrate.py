"""Time calibrating N measurement rows (not a test; prints a report).

Run from the repository root::

    python benchmarks/bench_calibrate.py            # 1,000 rows (the target: under 30 s)
    python benchmarks/bench_calibrate.py --rows 5000

The rows are the shipped public set (``limits/data/measurements/serving_public.csv``, 331
rows) repeated in order until there are ``--rows`` of them, each copy's measured value
scaled by a seeded log-normal factor (sigma 5%) so that the copies are not identical.
It prints, in seconds of wall time in one fresh process: (a) turning rows into parameters
(``limits.calibrate.build_problem``: presets, max-load batches, feasibility), (b) the first
fit (includes compiling the residual function and its Jacobian), (c) a second fit on the
same rows (compiled, what a hold-out or fold costs), and (a) + (b), the time to calibrate.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from limits.autodiff.calibrate import fit
from limits.calibrate import build_problem, check_rows
from limits.validate import PUBLIC_MEASUREMENTS, read_measurements


def rows_of(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` rows: the public set repeated, values scaled by a log-normal factor (5%)."""
    base = read_measurements(PUBLIC_MEASUREMENTS)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        row = dict(base[i % len(base)])
        if i >= len(base):
            row["value"] = f"{float(row['value']) * float(np.exp(rng.normal(0.0, 0.05))):.6g}"
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    rows = rows_of(args.rows)
    t0 = time.perf_counter()
    check_rows(rows)
    problem, _, infeasible = build_problem(rows)
    t1 = time.perf_counter()
    first = fit(problem)
    t2 = time.perf_counter()
    fit(problem)
    t3 = time.perf_counter()
    print(
        f"{args.rows} rows ({len(problem)} fitted, {len(infeasible)} infeasible), "
        f"{len(problem.batches)} batches, parameters {', '.join(problem.names)}"
    )
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")
    print(f"(a) rows -> parameters:            {t1 - t0:7.2f} s")
    print(f"(b) first fit (with compile):      {t2 - t1:7.2f} s")
    print(f"(c) second fit (compiled):         {t3 - t2:7.2f} s")
    print(f"calibrate {args.rows} rows = (a) + (b):  {t2 - t0:7.2f} s   (target: < 30 s)")
    print("fitted: " + ", ".join(f"{k} = {v:.4g}" for k, v in first.shared.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
