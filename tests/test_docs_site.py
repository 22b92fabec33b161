"""The docs site (mkdocs.yml) builds in strict mode: no warning, every page and the API
reference from the docstrings rendered."""

import importlib.util
import os
import subprocess
import sys

import pytest


@pytest.mark.subprocess
@pytest.mark.slow
def test_the_docs_site_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "WARNING" not in run.stderr
    api = (tmp_path / "api" / "index.html").read_text()
    assert "best_config" in api and "from_presets" in api
    assert (tmp_path / "notebooks" / "quickstart" / "index.html").is_file()
