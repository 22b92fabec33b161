"""The robustness harness (tools/robustness.py): every bad input refused in one line, no
traceback, nothing silently accepted; every injected fault survived without data loss."""

import re
from pathlib import Path

import pytest

from tools.bad_inputs import BAD_INPUTS
from tools.robustness import (
    API_BAD_INPUTS,
    FAULTS,
    HF_BAD_INPUTS,
    Tally,
    run_bad_inputs,
    run_faults,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_bad_input_is_refused_in_one_line(tmp_path):
    tally = Tally()
    run_bad_inputs(tally, tmp_path)
    print(tally.line())
    assert tally.tracebacks == [] and tally.silent == []
    assert tally.inputs_refused == tally.inputs_tried > 70


@pytest.mark.slow
@pytest.mark.subprocess
def test_every_fault_is_survived_without_data_loss(tmp_path):
    tally = Tally()
    run_faults(tally, tmp_path)
    print(tally.line())
    assert tally.data_lost == []
    assert tally.faults_survived == tally.faults_tried == len(FAULTS)


def test_what_is_tested_table_names_existing_tests_and_harness_entries():
    """docs/security.md, What is tested: every test it names exists, every harness entry it
    names is in the catalogue or the harness, and each of the ten cases has both."""
    text = (REPO / "docs" / "security.md").read_text().split("## What is tested", 1)[1]
    rows = [r for r in text.splitlines() if r.startswith("| ") and not r.startswith("| #")]
    harness = {c.what for c in BAD_INPUTS} | set(FAULTS)
    harness |= {what for what, _ in [*API_BAD_INPUTS(), *HF_BAD_INPUTS()]}
    cases = set()
    for row in rows:
        number, _, tests, entries = (c.strip() for c in row.strip("|").split(" | "))
        named_tests = re.findall(r"`(test_\w+\.py)::(\w+)`", tests)
        for file, name in named_tests:
            assert f"def {name}(" in (REPO / "tests" / file).read_text(), (file, name)
        named = [e for e in re.findall(r"`([^`]+)`", entries) if not e.startswith("python -m")]
        for entry in named:
            assert entry in harness, entry
        if number.isdigit():
            assert named_tests and named, number
            cases.add(int(number))
    assert cases == set(range(1, 11))
