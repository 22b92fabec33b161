"""``limits.validate`` against the shipped public serving measurements: the ideal model is a
bound on every feasible row, and the CLI keeps its contract (columns, bad rows, calibration)."""

import csv
import subprocess
import sys

import pytest

from limits.validate import METRICS, PUBLIC_MEASUREMENTS, read_measurements, validate

ROWS = read_measurements(PUBLIC_MEASUREMENTS)


@pytest.fixture(scope="module")
def results():
    return validate(ROWS)


def test_public_set_ships_with_its_provenance():
    assert len(ROWS) == 331
    assert all(r["source"].strip() for r in ROWS)
    readme = PUBLIC_MEASUREMENTS.with_name("README.md").read_text()
    assert "serving_public.csv" in readme and "Provenance" in readme


@pytest.mark.slow
def test_limit_is_a_bound_on_every_feasible_row(results):
    """Time limits <= measured, throughput limits >= measured (published figures, per row)."""
    evaluated = [r for r in results if r["reason"] == "" and r["feasible"]]
    assert len(evaluated) == len(ROWS)  # every public row is evaluated and fits
    for r in evaluated:
        measured, limit = float(r["value"]), r["limit"]
        if METRICS[r["metric"]][3] == "time":
            assert limit <= measured, (r["metric"], r["source"], r["batch"], limit, measured)
        else:
            assert limit >= measured, (r["metric"], r["source"], r["batch"], limit, measured)
        assert r["predicted"] == r["limit"]  # no calibration given


def test_bad_rows_get_a_reason_and_never_stop_the_run():
    good = dict(ROWS[0], extra_column="kept")
    rows = [
        good,
        dict(good, hardware="h999"),
        dict(good, metric="joules"),
        dict(good, tp="3"),  # does not divide the heads
        dict(good, serving="sideways"),
    ]
    out = validate(rows)
    assert out[0]["reason"] == "" and out[0]["extra_column"] == "kept"
    assert "h999" in out[1]["reason"]
    assert "joules" in out[2]["reason"]
    assert "tp" in out[3]["reason"]
    assert "sideways" in out[4]["reason"]
    assert all(r["limit"] == "" for r in out[1:])


def test_calibration_moves_predicted_not_limit():
    rows = [r for r in ROWS if r["metric"] == "tpot_ms"][:3]
    ideal = validate(rows)
    slow = validate(rows, calibration={"mem_efficiency": 0.5, "iteration_overhead": 1e-3})
    for a, b in zip(ideal, slow):
        assert b["limit"] == a["limit"]
        assert b["predicted"] > a["predicted"]


def test_disaggregated_rows_are_evaluated():
    row = dict(ROWS[0], serving="disaggregated", prefill_tp="4", prefill_replicas="2")
    agg, dis = validate([ROWS[0], row])
    assert dis["reason"] == "" and dis["limit"] > 0 and dis["limit"] != agg["limit"]


@pytest.mark.subprocess
def test_cli_writes_every_row_with_the_four_columns(tmp_path):
    src = tmp_path / "m.csv"
    rows = [dict(ROWS[0], note2="x"), dict(ROWS[1], model="nope")]
    with src.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    calib = tmp_path / "c.yaml"
    calib.write_text("mem_efficiency: 0.8\niteration_overhead: 1 ms\n")
    out = tmp_path / "p.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "limits.validate", str(src), "--calibration", str(calib)]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "per metric" in proc.stdout and "measured/limit" in proc.stdout
    written = read_measurements(out)
    assert list(written[0])[-4:] == ["limit", "predicted", "feasible", "reason"]
    assert written[0]["note2"] == "x" and written[0]["reason"] == ""
    assert float(written[0]["predicted"]) > float(written[0]["limit"])
    assert "nope" in written[1]["reason"] and written[1]["limit"] == ""
