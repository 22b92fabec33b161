"""docs/model.md holds the current generated tables (outputs and parameters): docs cannot drift
from limits/model/outputs.py and limits/model/params.py."""

from pathlib import Path

import pytest

from limits import OUTPUTS, parameter_index
from tools.docs_tables import generated_blocks, update_document

DOC = Path(__file__).resolve().parents[1] / "docs" / "model.md"


def test_model_doc_tables_are_current():
    text = DOC.read_text()
    assert update_document(text) == text, "run: python -m tools.docs_tables --write docs/model.md"


def test_tables_list_every_output_and_parameter():
    blocks = generated_blocks()
    assert all(
        f"| `{name}` | {units} |" in blocks["outputs"] for name, (units, _) in OUTPUTS.items()
    )
    assert all(
        f"| `{name}` | {group} |" in blocks["parameters"]
        for name, (group, _) in parameter_index().items()
    )


def test_update_needs_the_markers():
    with pytest.raises(ValueError, match="no generated block 'outputs'"):
        update_document("no markers here")


@pytest.mark.slow
def test_scale_out_doc_lists_every_bad_input_with_its_current_message():
    from tools.bad_inputs import BAD_INPUTS
    from tools.docs_tables import DOCUMENTS

    doc = DOC.parent / "scale_out.md"
    text = doc.read_text()
    blocks = DOCUMENTS["scale_out.md"]()
    assert update_document(text, blocks) == text, (
        "run: python -m tools.docs_tables --write docs/scale_out.md"
    )
    assert all(f"| {case.what} |" in blocks["bad_inputs"] for case in BAD_INPUTS)
