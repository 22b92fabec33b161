"""Calibration by autodiff: the fit recovers the parameters that generated synthetic
measurements, its Jacobian is the finite-difference one, and bad inputs are refused in one
line naming the row and the column (or the calibration value)."""

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

from limits.autodiff.calibrate import Batch, Problem, expected, fit
from limits.calibrate import REQUIRED, check_rows
from limits.calibrate import main as calibrate_main
from limits.errors import ParameterError
from limits.model import serving
from limits.presets import load_params
from limits.sweep.config import params_from_cfg
from limits.sweep.job import compose
from limits.validate import PUBLIC_MEASUREMENTS, check_calibration, read_measurements, validate
from limits.validate import main as validate_main

NAMES = ("mem_efficiency", "flops_efficiency", "layer_overhead", "iteration_overhead")
TRUE = {
    "mem_efficiency": 0.7,
    "flops_efficiency": 0.45,
    "layer_overhead": 30e-6,
    "iteration_overhead": 2e-3,
}
OUTPUTS = ("tpot", "ttft_at_load", "output_tps")


def _batch(model: str, measured=None) -> Batch:
    """Rows of one model on h100: batches x prompt lengths, all three metrics."""
    batch, prompt, metric = np.meshgrid([1.0, 8.0, 64.0, 256.0], [128.0, 2048.0], [0, 1, 2])
    n = batch.size
    ones = np.ones(n)
    p = load_params(
        "h100",
        model,
        n_params=0.0,
        tp=2.0 * ones,
        batch=batch.ravel(),
        prompt_len=prompt.ravel(),
        output_len=256.0 * ones,
        context=prompt.ravel() + 256.0,
        weight_bytes=2.0 * ones,
        kv_bytes=2.0 * ones,
    )
    return Batch(
        params=p,
        outputs=OUTPUTS,
        metric=metric.ravel().astype(np.int64),
        scale=ones,
        measured=ones if measured is None else measured,
    )


def _synthetic() -> Problem:
    """Measurements that are exactly the model at ``TRUE`` (two models, so the per-layer and
    per-iteration overheads are told apart by the layer count)."""
    models = ("llama3_8b", "llama3_70b")
    probe = Problem([_batch(m) for m in models], NAMES, fn=serving)
    truth = probe.predict({k: np.full(len(probe), v) for k, v in TRUE.items()})
    split = len(probe.batches[0])
    return Problem(
        [_batch(models[0], truth[:split]), _batch(models[1], truth[split:])], NAMES, fn=serving
    )


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic()


def test_round_trip_recovers_the_generating_parameters(synthetic):
    result = fit(synthetic, loss="linear")
    for name, value in TRUE.items():
        assert result.shared[name] == pytest.approx(value, rel=1e-4), name
    residuals = synthetic.residuals(
        np.array([[result.shared[n] / u for n, u in zip(NAMES, synthetic.unit, strict=True)]]),
        np.zeros(len(synthetic), np.int64),
    )
    assert np.abs(residuals).max() < 1e-6


def test_round_trip_by_group_and_fallback(synthetic):
    """Two groups with their own rows each recover the truth; a group below min_rows takes
    the shared values."""
    n = len(synthetic)
    group_of = np.arange(n) % 2
    result = fit(synthetic, group_of=group_of, labels=["a", "b"], min_rows=10, loss="linear")
    for label in ("a", "b"):
        for name, value in TRUE.items():
            assert result.groups[label][name] == pytest.approx(value, rel=1e-3), (label, name)
    small = fit(synthetic, group_of=group_of, labels=["a", "b"], min_rows=n, loss="linear")
    assert small.groups == {} and small.fallback == ["a", "b"]
    assert small.per_row(n)["mem_efficiency"] == pytest.approx(small.shared["mem_efficiency"])


def test_jacobian_matches_finite_differences(synthetic):
    u = np.array([[0.6, 0.4, 20.0, 1500.0]])  # fit units: fractions, microseconds
    group = np.zeros(len(synthetic), np.int64)
    jac = synthetic.jacobian(u, group)
    for j in range(u.shape[1]):
        h = 1e-6 * max(1.0, abs(u[0, j]))
        up, down = u.copy(), u.copy()
        up[0, j] += h
        down[0, j] -= h
        fd = (synthetic.residuals(up, group) - synthetic.residuals(down, group)) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, rtol=1e-5, atol=1e-8)


def test_standard_errors_shrink_to_zero_on_exact_data(synthetic):
    result = fit(synthetic, loss="linear")
    for name, value in TRUE.items():
        assert result.shared_stderr[name] < 1e-3 * value


def _rows():
    return [dict(r) for r in read_measurements(PUBLIC_MEASUREMENTS)[:4]]


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (lambda r: r[1].update(value="-3"), r"row 2 \(line 3\), column value: -3 is not > 0"),
        (lambda r: r[2].update(tp="0"), r"row 3 \(line 4\), column tp: 0 is not > 0"),
        (lambda r: r[1].update(metric="e2e_ms"), r"row 2 \(line 3\), column metric: 'e2e_ms'"),
        (lambda r: r[3].update(hardware="h900"), r"row 4 \(line 5\), column hardware: unknown"),
        (lambda r: r[0].update(model="gpt9"), r"row 1 \(line 2\), column model: unknown"),
        (lambda r: r[1].update(batch="many"), r"row 2 \(line 3\), column batch: 'many' is not"),
        (lambda r: [x.pop("kv_bytes") for x in r], r"column kv_bytes is missing"),
    ],
)
def test_bad_measurement_files_are_refused_in_one_line(change, expect):
    rows = _rows()
    change(rows)
    with pytest.raises(ParameterError, match=expect) as info:
        check_rows(rows)
    assert "\n" not in str(info.value)


def test_the_shipped_set_passes_the_checks():
    rows = read_measurements(PUBLIC_MEASUREMENTS)
    check_rows(rows)
    assert set(REQUIRED) <= set(rows[0])


@pytest.mark.parametrize(
    ("values", "expect"),
    [
        ({"mem_efficiency": 1.5}, r"mem_efficiency = 1.5 is out of range"),
        ({"flops_efficiency": 0.0}, r"flops_efficiency = 0 is out of range"),
        ({"layer_overhead": -1e-6}, r"layer_overhead = -1e-06 is out of range"),
        ({"mem_efficency": 0.5}, r"unknown parameter mem_efficency"),
        (
            {"by": ["hardware"], "groups": {"h100": {"mem_efficiency": 2.0}}},
            r"groups.h100.calibration.mem_efficiency = 2 is out of range",
        ),
    ],
)
def test_out_of_range_calibration_is_refused(values, expect):
    with pytest.raises(ParameterError, match=expect) as info:
        check_calibration(values)
    assert "\n" not in str(info.value)


def test_validate_refuses_an_out_of_range_calibration_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mem_efficiency: 1.2\n")
    csv_path = tmp_path / "m.csv"
    _write(csv_path, _rows())
    assert (
        validate_main([str(csv_path), "--calibration", str(bad), "--out", str(tmp_path / "p.csv")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.yaml" in err and "1.2 is out of range" in err
    assert not (tmp_path / "p.csv").exists()


def test_calibration_by_group_applies_per_row():
    rows = _rows()
    calib = {
        "mem_efficiency": 0.5,
        "by": ["hardware"],
        "groups": {"h100": {"mem_efficiency": 0.25}},
    }
    out = validate(rows, calib)
    ref = validate(rows, {"mem_efficiency": 0.25})
    for r, s in zip(out, ref, strict=True):
        assert r["hardware"] == "h100" and r["predicted"] == pytest.approx(s["predicted"])


def _write(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow
def test_cli_holdout_file_reproduces_its_error_in_validate(tmp_path, capsys):
    """Fit on half of a slice of the public set; validate the other half with the written
    file: the MAPE that validate's predictions give is the one calibrate printed."""
    rows = [
        r
        for r in read_measurements(PUBLIC_MEASUREMENTS)
        if r["engine"].startswith("TensorRT-LLM 0.14")
    ][:40]
    csv_path, out = tmp_path / "m.csv", tmp_path / "c.yaml"
    _write(csv_path, rows)
    assert (
        calibrate_main([str(csv_path), "--out", str(out), "--holdout", "0.5", "--seed", "0"]) == 0
    )
    printed = capsys.readouterr().out
    text = out.read_text()
    assert "# date: " in text and "# fitted on 20 of 40 rows" in text
    fitted = _parse_rows(text)
    held = [r for i, r in enumerate(rows) if i not in fitted]
    results = validate(held, out)
    for metric in ("tpot_ms", "ttft_ms"):
        sel = [r for r in results if r["metric"] == metric]
        err = 100 * np.mean([abs(r["predicted"] / float(r["value"]) - 1) for r in sel])
        assert f"{metric:<14} MAPE held-out: {err:6.1f}% ({len(sel)} rows)" in printed


def _parse_rows(text: str) -> set[int]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# fitted on"))
    spec = ""
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        spec += line[4:]
    out = set()
    for part in spec.replace(" ", "").split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a) - 1, int(b or a)))
    return out


PROFILES = sorted(
    (Path(__file__).resolve().parent.parent / "limits/conf/calibration").glob("*.yaml")
)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_shipped_profiles_carry_their_record_and_compose_in_sweeps(path):
    text = path.read_text()
    for needle in ("# date: ", "# fitted on ", "# MAPE on ", "# measurements: "):
        assert needle in text, needle
    values = check_calibration(yaml.safe_load(text))
    assert "groups" not in values  # flat: a sweep preset
    cfg = compose([f"calibration={path.stem}"])
    calib = params_from_cfg(cfg).calibration
    for name, value in values.items():
        assert getattr(calib, name) == pytest.approx(value), name


def test_covariance_is_symmetric_and_gives_the_standard_errors(synthetic):
    rng = np.random.default_rng(0)
    noisy = [
        Batch(
            b.params, b.outputs, b.metric, b.scale, b.measured * np.exp(rng.normal(0, 0.02, len(b)))
        )
        for b in synthetic.batches
    ]
    result = fit(Problem(noisy, NAMES, fn=serving), loss="linear")
    cov = result.shared_cov
    np.testing.assert_allclose(cov, cov.T, rtol=1e-10, atol=0.0)
    assert (np.linalg.eigvalsh(cov) > 0).all()
    for j, name in enumerate(NAMES):
        assert result.shared_stderr[name] == pytest.approx(np.sqrt(cov[j, j]))
        # 2% noise: the truth lies within a few standard errors
        assert abs(result.shared[name] - TRUE[name]) < 5 * result.shared_stderr[name], name


@pytest.mark.slow
def test_cli_by_group_file_is_applied_per_row_by_validate(tmp_path):
    rows = [
        r
        for r in read_measurements(PUBLIC_MEASUREMENTS)
        if r["engine"].startswith("TensorRT-LLM 0.14")
    ]
    csv_path, out = tmp_path / "m.csv", tmp_path / "c.yaml"
    _write(csv_path, rows)
    assert (
        calibrate_main([str(csv_path), "--out", str(out), "--by", "hardware", "--min-rows", "10"])
        == 0
    )
    values = check_calibration(yaml.safe_load(out.read_text()))
    assert values["by"] == ["hardware"] and set(values["groups"]) == {"h100", "h200"}
    results = validate(rows[:2], out)
    assert rows[0]["hardware"] == "h100"
    flat = validate(rows[:2], values["groups"]["h100"])
    for r, s in zip(results, flat, strict=True):
        assert r["predicted"] == pytest.approx(s["predicted"])


@pytest.mark.slow
def test_expected_band_is_linear_error_propagation():
    """The band of ``expected`` is sqrt(g^T C g) with g the finite-difference derivatives."""
    p = load_params("h100", "llama3_70b", n_params=0.0, tp=4.0, batch=np.array([1.0, 32.0, 256.0]))
    p = p.replace(prompt_len=1024.0, output_len=256.0, context=1280.0)
    values = {"mem_efficiency": 0.6, "flops_efficiency": 0.4, "layer_overhead": 2e-5}
    cov = np.array([[4e-4, 1e-4, 0.0], [1e-4, 9e-4, 0.0], [0.0, 0.0, 1e-11]])
    out = expected(p, values, cov, ["tpot", "ttft_at_load"], fn=serving)
    names = list(values)
    for k in ("tpot", "ttft_at_load"):
        grads = []
        for name in names:
            h = 1e-6 * values[name]
            up = serving(p.replace(**{**values, name: values[name] + h}))[k]
            down = serving(p.replace(**{**values, name: values[name] - h}))[k]
            grads.append((np.asarray(up) - np.asarray(down)) / (2 * h))
        g = np.stack(grads)
        band = np.sqrt(np.einsum("ip,ij,jp->p", g, cov, g))
        np.testing.assert_allclose(out[k][0], serving(p.replace(**values))[k], rtol=1e-12)
        np.testing.assert_allclose(out[k][1], band, rtol=1e-5)
    zero = expected(p, values, np.zeros((3, 3)), ["tpot"], fn=serving)
    assert (np.asarray(zero["tpot"][1]) == 0).all()


# the fields added for KV reads, prefill, the request's fixed latency and collectives, fitted
# on rows measured under load (a prompt queue) and on one and two chips (collectives or none)
NEW_NAMES = (
    "mem_efficiency",
    "kv_mem_efficiency",
    "flops_efficiency",
    "prefill_flops_efficiency",
    "layer_overhead",
    "request_overhead",
    "collective_overhead",
)
NEW_TRUE = {
    "mem_efficiency": 0.65,
    "kv_mem_efficiency": 0.6,
    "flops_efficiency": 0.35,
    "prefill_flops_efficiency": 0.55,
    "layer_overhead": 20e-6,
    "request_overhead": 8e-3,
    "collective_overhead": 15e-6,
}


def _loaded_batch(model: str, measured=None) -> Batch:
    """Rows of one model on h100 at 1 and 2 chips, three loads (none, Poisson, a burst)."""
    grid = np.meshgrid(
        [1.0, 64.0, 256.0], [128.0, 2048.0], [1.0, 2.0], [0.0, 4.0, np.inf], [0, 1, 2]
    )
    batch, prompt, tp, rate, metric = (g.ravel() for g in grid)
    ones = np.ones(batch.size)
    p = load_params(
        "h100",
        model,
        n_params=0.0,
        tp=tp,
        batch=batch,
        prompt_len=prompt,
        output_len=256.0 * ones,
        context=prompt + 256.0,
        weight_bytes=2.0 * ones,
        kv_bytes=2.0 * ones,
        arrival_rate=rate,
        burst_requests=200.0 * ones,
    )
    return Batch(
        params=p,
        outputs=OUTPUTS,
        metric=metric.astype(np.int64),
        scale=ones,
        measured=ones if measured is None else measured,
    )


@pytest.fixture(scope="module")
def loaded():
    models = ("llama3_8b", "llama3_70b")
    probe = Problem([_loaded_batch(m) for m in models], NEW_NAMES, fn=serving)
    truth = probe.predict({k: np.full(len(probe), v) for k, v in NEW_TRUE.items()})
    split = len(probe.batches[0])
    batches = [_loaded_batch(models[0], truth[:split]), _loaded_batch(models[1], truth[split:])]
    return Problem(batches, NEW_NAMES, fn=serving)


def test_round_trip_recovers_kv_prefill_request_and_collective_parameters(loaded):
    result = fit(loaded, loss="linear")
    for name, value in NEW_TRUE.items():
        assert result.shared[name] == pytest.approx(value, rel=1e-4), name


def test_jacobian_of_the_new_parameters_matches_finite_differences(loaded):
    u = np.array([[0.6, 0.7, 0.4, 0.5, 25.0, 5.0, 10.0]])  # fit units: fractions, us, ms, us
    group = np.zeros(len(loaded), np.int64)
    jac = loaded.jacobian(u, group)
    assert np.isfinite(jac).all()
    for j in range(u.shape[1]):
        h = 1e-6 * max(1.0, abs(u[0, j]))
        up, down = u.copy(), u.copy()
        up[0, j] += h
        down[0, j] -= h
        fd = (loaded.residuals(up, group) - loaded.residuals(down, group)) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, rtol=1e-5, atol=1e-8)


def test_a_parameter_no_row_depends_on_has_no_standard_error(synthetic):
    """``request_overhead`` moves TTFT only: fitted on TPOT rows alone it is undetermined
    (nan, not a spuriously exact 0), and the others are still fitted."""
    names = ("mem_efficiency", "request_overhead")
    problem = Problem(synthetic.batches, names, fn=serving)
    metric = np.concatenate([b.metric for b in synthetic.batches])
    result = fit(problem, mask=metric == 0, loss="linear")
    assert np.isnan(result.shared_stderr["request_overhead"])
    assert np.isfinite(result.shared_stderr["mem_efficiency"])


@pytest.mark.parametrize(
    ("covariance", "expect"),
    [
        ({"names": ["mem_efficiency"]}, r"covariance must map names"),
        ({"names": ["mem_efficency"], "matrix": [[1e-4]]}, r"'mem_efficency' is not fittable"),
        ({"names": ["flops_efficiency"], "matrix": [[1e-4]]}, r"flops_efficiency has no value"),
        ({"names": ["mem_efficiency"], "matrix": [[1e-4, 0]]}, r"shape \(1, 2\), expected"),
        ({"names": ["mem_efficiency"], "matrix": [[-1e-4]]}, r"variance of mem_efficiency"),
        ({"names": ["mem_efficiency"], "matrix": [[float("nan")]]}, r"is not finite"),
    ],
)
def test_a_bad_covariance_is_refused_in_one_line(covariance, expect):
    with pytest.raises(ParameterError, match=expect) as info:
        check_calibration({"mem_efficiency": 0.5, "covariance": covariance})
    assert "\n" not in str(info.value)


def test_load_columns_accept_inf_and_refuse_negative_rates():
    rows = _rows()
    rows[0].update(arrival_rate="inf", burst_requests="500")
    check_rows(rows)
    rows[1].update(arrival_rate="-2")
    with pytest.raises(ParameterError, match=r"row 2 \(line 3\), column arrival_rate: -2 is not"):
        check_rows(rows)


_SWEEP = [
    "model=llama3_70b",
    "hardware=h100",
    "grid=point",
    "++grid.batch=[1,16,256]",
    "deployment.tp=4",
    "deployment.weight_bytes=2",
    "deployment.kv_bytes=2",
    "store.variables=[tpot,ttft_at_load,output_tps,feasible]",
]


@pytest.mark.slow
def test_a_sweep_with_a_fitted_profile_stores_the_limit_expected_and_band(tmp_path):
    import xarray as xr

    from limits.sweep import run

    plain = run(compose([*_SWEEP, f"store.path={tmp_path / 'a.zarr'}"]), verbose=False)
    fitted = run(
        compose([*_SWEEP, "calibration=public_serving", f"store.path={tmp_path / 'b.zarr'}"]),
        verbose=False,
    )
    a, b = xr.open_zarr(plain.path), xr.open_zarr(fitted.path)
    assert not [v for v in a.data_vars if v.endswith(("_expected", "_band"))]
    for k in ("tpot", "ttft_at_load", "output_tps"):
        np.testing.assert_array_equal(a[k].values, b[k].values)  # the limits stay limits
        for kind in ("expected", "band"):
            attrs = b[f"{k}_{kind}"].attrs
            assert attrs["units"] == a[k].attrs["units"] and attrs["long_name"], (k, kind)
        assert (b[f"{k}_band"].values > 0).all(), k
        assert (b[f"{k}_band"].values < b[f"{k}_expected"].values).all(), k
    # efficiencies <= 1 and overheads >= 0: the expected times are longer, the rates lower
    assert (b.tpot_expected.values > b.tpot.values).all()
    assert (b.ttft_at_load_expected.values > b.ttft_at_load.values).all()
    assert (b.output_tps_expected.values < b.output_tps.values).all()
    profile = PROFILES[0].with_name("public_serving.yaml")
    values = check_calibration(yaml.safe_load(profile.read_text()))
    p = load_params("h100", "llama3_70b", tp=4.0, weight_bytes=2.0, kv_bytes=2.0)
    want = serving(p.replace(batch=np.array([1.0, 16.0, 256.0]), **values))["tpot"]
    np.testing.assert_allclose(b.tpot_expected.values, want, rtol=1e-5)  # float32 store


def test_a_sweep_refuses_an_axis_the_profile_fitted(tmp_path):
    from limits.sweep import run

    cfg = compose(
        [*_SWEEP, "calibration=public_serving", "++grid.mem_efficiency=[0.5,1.0]"]
        + [f"store.path={tmp_path / 'c.zarr'}"]
    )
    with pytest.raises(ParameterError, match="grid axis mem_efficiency is a fitted parameter"):
        run(cfg, verbose=False)


def test_row_weights_keep_the_exact_solution_and_scale_the_residuals(synthetic):
    """Weighted rows (``--balance`` weights each metric alike) still recover the truth on
    exact data: weights change which misfit the fit prefers, not an exact fit."""
    n = len(synthetic)
    weight = np.where(np.arange(n) % 3 == 0, 3.0, 0.5)
    result = fit(synthetic, loss="linear", weight=weight)
    for name, value in TRUE.items():
        assert result.shared[name] == pytest.approx(value, rel=1e-4), name


BUDGET_NAMES = ("mem_efficiency", "kv_mem_efficiency", "engine_prefill_budget")
BUDGET_TRUE = {"mem_efficiency": 0.7, "kv_mem_efficiency": 0.5, "engine_prefill_budget": 3000.0}


def _budget_batch(measured=None) -> Batch:
    """Rows whose steady-state prefill share (batch x prompt / output: 128 to 8,192 tokens)
    lies on both sides of the engine's budget, so the budget binds on some rows only."""
    batch, prompt, metric = np.meshgrid([16.0, 64.0, 256.0], [1024.0, 4096.0], [0, 1, 2])
    ones = np.ones(batch.size)
    p = load_params(
        "h100",
        "llama3_8b",
        n_params=0.0,
        tp=ones,
        batch=batch.ravel(),
        prompt_len=prompt.ravel(),
        output_len=128.0 * ones,
        context=prompt.ravel() + 128.0,
        weight_bytes=2.0 * ones,
        kv_bytes=2.0 * ones,
    )
    return Batch(
        params=p,
        outputs=OUTPUTS,
        metric=metric.ravel().astype(np.int64),
        scale=ones,
        measured=ones if measured is None else measured,
    )


@pytest.fixture(scope="module")
def budgeted():
    probe = Problem([_budget_batch()], BUDGET_NAMES, fn=serving)
    truth = probe.predict({k: np.full(len(probe), v) for k, v in BUDGET_TRUE.items()})
    return Problem([_budget_batch(truth)], BUDGET_NAMES, fn=serving)


def test_round_trip_recovers_the_engine_prefill_budget(budgeted):
    result = fit(budgeted, loss="linear")
    for name, value in BUDGET_TRUE.items():
        assert result.shared[name] == pytest.approx(value, rel=1e-4), name


def test_jacobian_of_the_engine_prefill_budget_matches_finite_differences(budgeted):
    u = np.array([[0.6, 0.7, 2.5]])  # fractions, thousands of tokens (binds on some rows)
    group = np.zeros(len(budgeted), np.int64)
    jac = budgeted.jacobian(u, group)
    assert np.isfinite(jac).all() and (jac[:, 2] != 0).any()
    for j in range(u.shape[1]):
        h = 1e-6 * max(1.0, abs(u[0, j]))
        up, down = u.copy(), u.copy()
        up[0, j] += h
        down[0, j] -= h
        fd = (budgeted.residuals(up, group) - budgeted.residuals(down, group)) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, rtol=1e-5, atol=1e-8)
