"""Every example of the docs runs (issue 15): each fenced ``python`` and ``bash`` block of
README.md and docs/*.md, page by page in a fresh directory, by ``tools/doc_examples.py``; quoted
outputs marked ``<!-- example: output -->`` match what the example prints; the few examples
that cannot run here carry ``<!-- example: skip (reason) -->`` and are listed as skipped."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from tools.doc_examples import (
    REPO,
    MarkerError,
    blocks,
    check_markers,
    default_pages,
    indented_code,
    output_matches,
)

PAGES = default_pages()


def _name(page):
    return str(page.relative_to(REPO))


def _blocks_or_none(page):
    try:
        return blocks(page)
    except MarkerError:
        return None  # test_markers_are_well_formed names it


BLOCKS = {page: _blocks_or_none(page) for page in PAGES}
SKIPPED = [b for found in BLOCKS.values() for b in found or () if b.marker == "skip"]
RUNNABLE = [page for page, found in BLOCKS.items() if found is None or any(b.runs for b in found)]


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # the tests' two host devices; the docs show what a user gets
    return env


def _run(page, workdir, timeout=900):
    report = workdir / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.doc_examples", str(page), "--workdir", str(workdir / "run")]
        + ["--json", str(report)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert report.is_file(), (
        f"{_name(page)}: the runner stopped:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    )
    return proc, json.loads(report.read_text())


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_markers_are_well_formed(page):
    """Every marker parses, sits right above a fence, has a reason to skip and fits its block."""
    found = blocks(page)  # raises MarkerError naming FILE:LINE
    assert not check_markers(found), "\n".join(check_markers(found))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_code_examples_are_fenced(page):
    """Indented code blocks never run; the docs fence every block instead."""
    assert not indented_code(page), f"indented code blocks (fence them): {indented_code(page)}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_command_the_prose_names_exists(page):
    """Commands quoted in the prose (not run) name modules and scripts that exist."""
    text = page.read_text()
    modules = set(re.findall(r"python3? -m ((?:limits|tools)[\w.]*)", text))
    scripts = set(re.findall(r"python3? ((?:tools|benchmarks)/[\w/]+\.py)", text))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    missing += [s for s in scripts if not (REPO / s).is_file()]
    assert not missing, f"{_name(page)} names commands that do not exist: {sorted(missing)}"


@pytest.mark.parametrize("block", SKIPPED, ids=lambda b: b.where)
def test_skipped_examples_are_listed(block):
    """One skipped test per example the docs mark as not run, with its reason (pytest -ra)."""
    assert block.reason
    pytest.skip(f"{block.where} ({block.kind}) not run: {block.reason}")


def test_quoted_outputs_match_with_ellipsis_and_volatile_parts():
    printed = (
        "plan: 1,024 points, 1 device(s): cpu (cpu)\n"
        "sweep: 100%|##########| 1.02k/1.02k [00:00<00:00, 1.89kpt/s]\n"
        "limits.sweep: wrote /w/outputs/sweep/2026-11-30/23-59-01/sweep.zarr in 0.74 s "
        "(1 blocks computed, 0 reused, 0.00138 M points/s)\n"
        "  best utps: 638.7 tok/s/user\n"
    )
    quoted = (
        "plan: 1,024 points, 1 device(s)...\n"
        "sweep: 100%|██████████| 1.02k/1.02k [00:00<00:00, 3.1kpt/s]\n"
        "limits.sweep: wrote outputs/sweep/2026-11-22/10-40-20/sweep.zarr in 1.82 s "
        "(1 blocks computed, 0 reused, 0.000561 M points/s)\n\n"
        "  best utps: 638.7 tok/s/user\n"
    )
    assert output_matches(quoted, printed, workdir="/w") == ""
    assert output_matches("  best utps: 638.7 tok/s/user\n", printed) == ""  # abridged
    assert "638.8" in output_matches("  best utps: 638.8 tok/s/user\n", printed)
    out_of_order = "  best utps: 638.7 tok/s/user\nplan: 1,024 points...\n"
    assert "plan: 1,024" in output_matches(out_of_order, printed)


@pytest.mark.subprocess
def test_the_runner_names_file_and_line_of_each_failure(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        textwrap.dedent(
            """\
            # A page

            ```python
            answer = 6 * 7
            ```

            ```bash
            python -c "print(41 + 1)" > answer.txt && cat answer.txt
            ```

            <!-- example: output -->
            ```
            42
            ```

            ```python
            print(open("answer.txt").read().strip(), answer)
            ```

            <!-- example: output -->
            ```
            42 43
            ```

            ```python
            x = 1
            x / 0
            ```

            <!-- example: skip (needs a cluster) -->
            ```bash
            exit 1
            ```

            ```bash
            false
            echo never
            ```
            """
        )
    )
    proc, results = _run(page, tmp_path, timeout=120)
    assert proc.returncode == 1
    got = [(r["line"], r["kind"], r["status"]) for r in results]
    assert got == [
        (3, "python", "ok"),
        (7, "shell", "ok"),
        (12, "output", "checked"),
        (16, "python", "ok"),
        (21, "output", "differs"),
        (25, "python", "failed"),
        (31, "shell", "skipped"),
        (35, "shell", "failed"),
    ]
    differs = results[4]["detail"]  # the namespace and the working directory are shared
    assert (
        differs.startswith(f"output of {page}:16") and "  42 43" in differs and "  42 42" in differs
    )
    python_failure = results[5]["detail"]
    assert f'{page}", line 27' in python_failure and "ZeroDivisionError" in python_failure
    assert results[6]["detail"] == "needs a cluster"
    printed = results[7]["detail"].split("--- output ---")[1]
    assert "never" not in printed and "exit status 1" in printed  # bash -e: stops at `false`


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("page", RUNNABLE, ids=_name)
def test_page_examples_run(page, tmp_path):
    """Every example of the page runs and every checked output and regenerated document
    matches; a failure names FILE:LINE of the block, the block and its output."""
    proc, results = _run(page, tmp_path)
    bad = [r for r in results if r["status"] in ("failed", "differs")]
    report = "\n\n".join(
        f"{r['page']}:{r['line']} {r['kind']} {r['status']}\n{r['detail']}" for r in bad
    )
    assert not bad, f"{len(bad)} example(s) of {_name(page)} failed:\n\n{report}"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "<!-- example: skip -->\n```bash\nls\n```\n",
            "page.md:1: a skipped example needs a reason",
        ),
        (
            "<!-- example: skip () -->\n```bash\nls\n```\n",
            "page.md:1: a skipped example needs a reason",
        ),
        (
            "<!-- example: skip (why) -->\n\nsome text\n```bash\nls\n```\n",
            "page.md:1: marker not right",
        ),
        ("<!-- example: skip (why) -->\n", "page.md:1: marker not right above"),
        ("<!-- example: run -->\n```bash\nls\n```\n", "page.md:1: unknown marker"),
        (
            "<!-- example: output (abridged) -->\n```\nx\n```\n",
            "page.md:1: an output marker takes no",
        ),
        ("<!--example:skip(why)\n```bash\nls\n```\n", "page.md:1: malformed marker"),
        ("```bash\nls\n", "page.md:1: fenced block never closed"),
    ],
)
def test_bad_markers_are_refused_with_file_and_line(tmp_path, text, problem):
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(MarkerError) as info:
        blocks(page)
    assert str(info.value).startswith(f"{page}:") and problem.split(":", 1)[1] in str(info.value)


def test_markers_must_fit_their_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- example: output -->\n```\nx\n```\n\n"
        "<!-- example: skip (why) -->\n```text\nx\n```\n\n"
        "```python\nx = 1\n```\n\n<!-- example: output -->\n```python\nx\n```\n"
    )
    assert check_markers(blocks(page)) == [
        f"{page}:2: output marker with no example above it",
        f"{page}:7: skip marker on quoted text (text)",
        f"{page}:16: output marker on a python block",
    ]
