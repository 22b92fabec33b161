"""The robustness harness (tools/robustness.py): every bad input refused in one line, no
traceback, nothing silently accepted; every injected fault survived without data loss."""

import pytest

from tools.robustness import FAULTS, Tally, run_bad_inputs, run_faults


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
