"""Every catalogued bad input (tools/bad_inputs.py, the table of docs/scale_out.md) is refused
before anything is traced, with a one-line message naming the setting; on the command line
it exits non-zero without a Python traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import HydraException

from limits.sweep import USER_ERRORS
from limits.sweep.blocks import BlockFunction
from tools.bad_inputs import BAD_INPUTS, attempt, first_paragraph

REPO = Path(__file__).resolve().parents[1]
BY_WHAT = {case.what: case for case in BAD_INPUTS}


@pytest.fixture
def no_tracing(monkeypatch):
    def traced(*args, **kwargs):
        raise AssertionError("the block function was traced before validation finished")

    monkeypatch.setattr(BlockFunction, "_fn", traced)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.what.replace(" ", "_"))
def test_refused_before_tracing_with_a_message_naming_the_setting(case, tmp_path, no_tracing):
    message, err = attempt(case.overrides, tmp_path / "s.zarr")
    assert isinstance(err, USER_ERRORS + (HydraException,)), repr(err)
    assert case.names in message, message
    assert "\n" not in message
    assert not (tmp_path / "s.zarr").exists()  # nothing written either


def test_catalogue_covers_each_kind_of_mistake():
    words = " ".join(c.what for c in BAD_INPUTS)
    for kind in (
        "negative",
        "zero",
        "NaN",
        "infinite",
        "unit",
        "unknown hardware preset",
        "unknown axis",
        "empty axis",
        "fractional",
        "heads",
        "experts",
        "layers",
        "context longer",
        "too many points",
        "too many bytes",
    ):
        assert kind in words, kind
    assert len({c.what for c in BAD_INPUTS}) == len(BAD_INPUTS)


def _cli(tmp_path, *overrides):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "limits.sweep",
            "grid=point",
            *overrides,
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.subprocess
def test_cli_prints_the_catalogued_message_and_exits_2(tmp_path):
    case = BY_WHAT["context longer than the model's"]
    message, _ = attempt(case.overrides, tmp_path / "other.zarr")
    proc = _cli(tmp_path, *case.overrides)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"limits.sweep: error: {message}"]
    assert not (tmp_path / "sweep.zarr").exists()


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "what", ["unknown hardware preset", "misspelt setting added with +", "bad override syntax"]
)
def test_cli_hydra_errors_end_in_one_line_and_exit_2(tmp_path, what):
    case = BY_WHAT[what]
    message, err = attempt(case.overrides, tmp_path / "s.zarr")
    proc = _cli(tmp_path, *case.overrides)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"limits.sweep: error: {message}"]
    assert not (tmp_path / "sweep.zarr").exists()
    if what == "unknown hardware preset":
        assert "Available options in 'hardware': b200," in proc.stderr


def test_first_paragraph_follows_causes_and_stops_at_blank_lines():
    try:
        try:
            raise ValueError("inner\n    full_key: x\n\nignored")
        except ValueError as inner:
            raise RuntimeError("outer\nsecond") from inner
    except RuntimeError as err:
        assert first_paragraph(err) == "outer / second / inner"
