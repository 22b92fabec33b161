"""python -m limits.query: serving terms resolved to model outputs (serving names first),
in-memory evaluation of presets equal to the model, best answers equal to brute force."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from helpers_datasets import model_dataset

import limits
from limits.errors import ParameterError
from limits.query import ROLES, best, fmt, from_presets, frontier, resolve


@pytest.fixture(scope="module")
def h200_70b() -> xr.Dataset:
    return from_presets(
        "h200", "llama3_70b", ["grid.tp=[1,2,4,8]", "grid.batch=[1,16,64,128,256,512]"]
    )


def test_from_presets_equals_the_model_at_a_point(h200_70b):
    p = limits.load_params("h200", "llama3_70b", weight_bytes=1.0, kv_bytes=1.0, tp=4.0, batch=64.0)
    out = limits.evaluate(p)
    point = h200_70b.sel(tp=4.0, batch=64.0)
    for name in ("stps", "tbt", "ttft", "memory_required", "t_mem"):
        np.testing.assert_allclose(float(point[name]), float(out[name]), rtol=1e-12)
    assert point["stps"].attrs["units"] == "tok/s"


def test_terms_use_decode_step_stand_ins_and_say_so(h200_70b):
    name, note = resolve(h200_70b, "tpot")
    assert name == ("tpot" if "tpot" in limits.OUTPUTS else "tbt")
    assert name == "tpot" or "tbt" in note
    assert resolve(h200_70b, "tps_per_user")[0] in ROLES["tps_per_user"].candidates
    with pytest.raises(ParameterError, match="'nonsense' is not a model output"):
        resolve(h200_70b, "nonsense")


def test_serving_outputs_are_preferred_when_the_model_has_them(h200_70b):
    """The model's serving outputs answer TTFT and TPOT; a store without them falls back to
    the decode-step stand-ins and says so."""
    assert resolve(h200_70b, "tpot") == ("tpot", None)
    assert resolve(h200_70b, "ttft") == ("ttft_at_load", None)
    assert resolve(h200_70b, "tps_per_chip") == ("output_tps_per_chip", None)
    decode_only = h200_70b.drop_vars(["tpot", "ttft_at_load", "output_tps_per_chip"])
    name, note = resolve(decode_only, "tpot")
    assert name == "tbt" and "decode step" in note
    name, note = resolve(decode_only, "ttft")
    assert name == "ttft" and "prefill of one prompt alone" in note


def test_best_matches_brute_force_and_names_what_binds(h200_70b):
    ds = h200_70b
    answer = best(ds, "tps_per_chip", {"ttft": 0.3, "tpot": 0.02})
    tpot, ttft = resolve(ds, "tpot")[0], resolve(ds, "ttft")[0]
    per_chip = resolve(ds, "tps_per_chip")[0]
    winner, score = None, -np.inf
    for tp, b in itertools.product(ds["tp"].values, ds["batch"].values):
        pt = ds.sel(tp=tp, batch=b)
        ok = bool(pt["feasible"]) and float(pt[ttft]) <= 0.3 and float(pt[tpot]) <= 0.02
        if ok and float(pt[per_chip]) > score:
            winner, score = (tp, b), float(pt[per_chip])
    assert (float(answer.point["tp"]), float(answer.point["batch"])) == winner
    text = "\n".join(answer.lines())
    assert "best configuration: tp = " in text and "tok/s/chip" in text and " ms" in text
    assert "what binds:" in text and "of its limit" in text
    assert "feasible uses" not in text  # a flag the answer must have is not a share of a limit
    with pytest.raises(ParameterError, match="no feasible configuration meets"):
        best(ds, targets={"tpot": 1e-6})


def test_frontier_table_has_units_and_bounds(h200_70b):
    table = frontier(h200_70b)
    assert len(table) > 1 and set(table["bound"]) <= {"memory", "compute", "sync"}
    assert "[tok/s/user]" in repr(table)


def test_fmt_scales_seconds_and_bytes():
    assert fmt(0.01963, "s") == "19.63 ms"
    assert fmt(2.5e-6, "s") == "2.5 us"
    assert fmt(80.5e9, "B") == "80.5 GB"
    assert fmt(4095.2, "tok/s/chip") == "4095 tok/s/chip"
    assert fmt(131072.0, "tokens") == "131072 tokens" and fmt(8.0, "1") == "8"


def test_model_dataset_agrees_with_from_presets_layout(h200_70b):
    ref = model_dataset(
        "h200",
        "llama3_70b",
        fixed={"weight_bytes": 1.0, "kv_bytes": 1.0},
        tp=[1.0, 2.0, 4.0, 8.0],
        batch=[1.0, 16.0, 64.0, 128.0, 256.0, 512.0],
    )
    np.testing.assert_allclose(h200_70b["stps"].values, ref["stps"].values, rtol=1e-12)


@pytest.mark.subprocess
@pytest.mark.slow
def test_the_issue_question_in_one_command():
    """Issue 15: "Llama-3.1-70B on H200, TTFT <= 300 ms, TPOT <= 20 ms, most tokens/s per
    chip" in one command, with units."""
    cmd = [
        sys.executable,
        "-m",
        "limits.query",
        "best",
        "--hardware",
        "h200",
        "--model",
        "llama3_70b",
        "--ttft",
        "300 ms",
        "--tpot",
        "20 ms",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "best configuration: tp = " in run.stdout
    assert "tok/s/chip" in run.stdout and "<- maximised" in run.stdout
    bad = subprocess.run(cmd[:-1] + ["1 us"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "no feasible configuration meets" in bad.stderr
    front = subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.query",
            "frontier",
            "--hardware",
            "h200",
            "--model",
            "llama3_70b",
            "--chart",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert front.returncode == 0, front.stderr
    assert "Pareto frontier" in front.stdout and "\x1b[" not in front.stdout


def test_a_range_replaces_a_default_list_axis():
    ds = from_presets(
        "h200", "llama3_70b", ["++grid.batch={start:1,stop:64,num:4,scale:log}", "grid.tp=[8]"]
    )
    assert ds["batch"].values.tolist() == [1.0, 4.0, 16.0, 64.0]
    assert ds["tp"].values.tolist() == [8.0]


def test_workload_axes_are_noted_and_select_fixes_them():
    from limits.query import select

    ds = from_presets(
        "h200", "llama3_70b", ["grid.tp=[4,8]", "grid.batch=[16,64]", "++grid.context=[4096,32768]"]
    )
    answer = best(ds)
    assert any("workload axis context" in n for n in answer.notes)
    sliced = select(ds, {"context": "32768"})
    assert float(sliced["context"]) == 32768.0 and "context" not in sliced.dims
    assert not any("workload" in n for n in best(sliced).notes)
    with pytest.raises(ParameterError, match="not on the axis; context: 4096, 32768"):
        select(ds, {"context": 8000.0})


def test_a_serving_answer_must_fit_at_its_serving_load(h200_70b):
    """Points that fit the decode step but not the serving load (`serving_feasible` False)
    are never the answer to a question asked in serving terms."""
    first = best(h200_70b, "tps_per_chip", {"ttft": 0.3, "tpot": 0.02})
    at = {d: first.point[d] for d in ("tp", "batch")}
    ds = h200_70b.copy()
    ds["serving_feasible"] = ds["serving_feasible"].copy()
    ds["serving_feasible"].loc[at] = False
    second = best(ds, "tps_per_chip", {"ttft": 0.3, "tpot": 0.02})
    assert {d: second.point[d] for d in ("tp", "batch")} != at
    assert bool(ds["serving_feasible"].sel(**{d: second.point[d] for d in at}))
