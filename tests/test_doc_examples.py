"""The Python examples of the docs run on the stores the docs produce (issue 15: the plots
examples of docs/analysis.md failed on the default study's store)."""

import re
from pathlib import Path

import matplotlib
import pytest

from limits.sweep.job import compose, run

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _block_after(text: str, marker: str) -> str:
    """The first ```python block after `marker`."""
    start = text.index(marker)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block after {marker!r}"
    return match.group(1)


@pytest.mark.slow
def test_the_plots_example_runs_on_the_default_study_store(tmp_path):
    matplotlib.use("Agg")
    store = tmp_path / "sweep.zarr"
    run(
        compose(["store.variables=all", f"store.path={store}", "limits.progress=false"]),
        verbose=False,
    )
    code = _block_after((DOCS / "analysis.md").read_text(), "On the default study")
    assert '"outputs/default/sweep.zarr"' in code
    namespace: dict = {}
    exec(code.replace('"outputs/default/sweep.zarr"', repr(str(store))), namespace)
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.slow
def test_the_query_python_example_runs():
    code = _block_after((DOCS / "query.md").read_text(), "## From Python")
    exec(code, {})
