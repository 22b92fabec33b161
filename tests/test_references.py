"""Sources live inside the repository: every citation of docs/references.md names a section that
exists, and no project file points to a path outside the repository."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCES = REPO / "docs" / "references.md"
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ipynb"}
SKIP = {".git", ".venv", "outputs", "__pycache__", ".ruff_cache", ".pytest_cache"}


def project_files():
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if path.is_file() and path.suffix in TEXT and not SKIP & set(rel.parts):
            yield rel


def sections():
    return {int(n) for n in re.findall(r"^## (\d+)\. ", REFERENCES.read_text(), re.M)}


def test_references_has_its_sections():
    assert sections() == {1, 2, 3, 4, 5, 6, 7}


# spelled in pieces so that this file does not match itself
OUTSIDE = ("../" + "shared", "/work/" + "shared", "REFER" + "ENCES.md")


@pytest.mark.slow
def test_no_file_points_outside_the_repository():
    bad = []
    for rel in project_files():
        text = (REPO / rel).read_text(errors="replace")
        bad += [f"{rel}: {o}" for o in OUTSIDE if o in text]
        cited = {int(n) for n in re.findall(r"references\.md`? s\.(\d+)", text)}
        bad += [f"{rel}: s.{n} missing" for n in cited - sections()]
    assert not bad, "cite docs/references.md sections that exist: " + "; ".join(bad)
