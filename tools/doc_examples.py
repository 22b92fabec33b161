"""Run every example of the docs (README.md, docs/*.md) as a user would, in order, per page.

``python -m tools.doc_examples`` runs every page; ``python -m tools.doc_examples docs/sweep.md``
one page; ``--list`` lists the blocks and what happens to each without running anything.
``tests/test_doc_examples.py`` runs every page this way.

What runs, per fenced block (```` ```lang ````):

- ``python``: executed in one namespace shared by the page's Python blocks, in page order, as
  cells of a notebook; the value of a block's last expression is printed, as a notebook shows it.
- ``bash`` / ``sh`` / ``shell``: run by ``bash -e -o pipefail``; ``python``, ``python3`` and
  ``.venv/bin/python`` are the Python running this tool (the repository's environment), with the
  repository on ``PYTHONPATH``.
- anything else (``text``, no language, ``yaml``...) is quoted text: formulas, trees, outputs.

Each page runs in a fresh process and a fresh working directory (``--workdir``, default a
temporary one), which holds a copy of the repository's ``sweeps/`` and where everything the
commands write lands (``outputs/``, stores, PNGs), so a later block opens what an earlier one
wrote; examples use relative paths, so they never write into the repository. Indented code
blocks are not run, so the docs have none: every code example is fenced.

Markers, an HTML comment above a fence with nothing but blank lines between (invisible on
GitHub and the site):

- ``<!-- example: skip (reason) -->``: this example is not run, for the reason given (it
  installs software, needs a GPU or a cluster, or serves a page until stopped). The reason is
  required; keep such blocks few.
- ``<!-- example: output -->``: this quoted block is what the preceding example prints, and is
  checked: each of its non-blank lines must appear in that output, in order (lines may be left
  out, so an abridged output passes), with ``...`` standing for any text. Timings, rates, dated
  run directories (``<date>/<time>``), progress bars and the working directory's path vary from
  run to run and are ignored on both sides (:data:`VOLATILE`).

A document an example writes under ``docs/`` (a study's report, regenerated) must be the
repository's as committed.

A block that fails, or an output that differs, is reported as ``FILE:LINE`` of its opening fence
with its output; the run goes on with the next block (later failures may follow from the first).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

__all__ = [
    "Block",
    "MarkerError",
    "Result",
    "REPO",
    "VOLATILE",
    "blocks",
    "check_markers",
    "default_pages",
    "output_matches",
    "run_page",
]

REPO = Path(__file__).resolve().parents[1]
PYTHON_LANGS = {"python", "py", "python3"}
SHELL_LANGS = {"bash", "sh", "shell"}
#: what each page's working directory gets from the repository (copied, never linked)
COPIED = ("sweeps",)
#: lines of output kept in a report
TAIL = 60

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<body>.*?)\s*-->\s*$")
_MARKER_BODY = re.compile(r"^(?P<kind>skip|output)\s*(?:\((?P<reason>.*)\))?$")

#: (pattern, replacement) applied to both a quoted output and the real one before comparing
VOLATILE = (
    (re.compile(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}"), "<date>/<time>"),  # Hydra run dirs
    (re.compile(r"\bin \d+(?:\.\d+)? s\b"), "in <t> s"),  # elapsed seconds
    (re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)? M points/s"), "<rate> M points/s"),
)
_PROGRESS = re.compile(r"\d+%\|")  # a tqdm bar (the line holds every \r-update of the bar)


class MarkerError(ValueError):
    """A ``<!-- example: ... -->`` marker that is malformed or not where it belongs."""


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block of a page: ``line`` is the 1-based line of its opening fence."""

    page: str
    line: int
    lang: str
    code: str
    marker: str | None = None  # "skip" or "output"
    reason: str = ""

    @property
    def kind(self) -> str:
        """``python``, ``shell`` (both run) or ``text`` (quoted, never run)."""
        if self.lang in PYTHON_LANGS:
            return "python"
        if self.lang in SHELL_LANGS:
            return "shell"
        return "text"

    @property
    def runs(self) -> bool:
        return self.kind != "text" and self.marker != "skip"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclasses.dataclass
class Result:
    """What happened to one block: ``status`` is ok, failed, skipped, checked, differs,
    unchecked (an output block whose example did not run) or text."""

    page: str
    line: int
    kind: str
    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def default_pages() -> list[Path]:
    """README.md and every docs/*.md, in that order."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _name(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown page with its marker; :class:`MarkerError` for a marker
    that is malformed, has no reason to skip, or does not sit right above a fence."""
    page = _name(path)
    lines = Path(path).read_text().splitlines()
    found: list[Block] = []
    pending: tuple[int, str, str] | None = None  # (line, kind, reason) of a marker
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        fence = _FENCE.match(line)
        if marker:
            if pending:
                raise MarkerError(f"{page}:{pending[0]}: marker not right above a fenced block")
            body = _MARKER_BODY.match(marker["body"])
            if not body:
                raise MarkerError(
                    f"{page}:{i + 1}: unknown marker {line.strip()!r}; use "
                    "<!-- example: skip (reason) --> or <!-- example: output -->"
                )
            reason = (body["reason"] or "").strip()
            if body["kind"] == "skip" and not reason:
                raise MarkerError(
                    f"{page}:{i + 1}: a skipped example needs a reason: {line.strip()}"
                )
            if body["kind"] == "output" and body["reason"] is not None:
                raise MarkerError(
                    f"{page}:{i + 1}: an output marker takes no reason: {line.strip()}"
                )
            pending = (i + 1, body["kind"], reason)
            i += 1
            continue
        if re.match(r"\s*<!--\s*example\b", line):
            raise MarkerError(f"{page}:{i + 1}: malformed marker {line.strip()!r}")
        if fence:
            indent, mark = len(fence["indent"]), fence["fence"]
            info = fence["info"].strip()
            lang = info.split()[0].lower() if info else ""
            close = re.compile(rf"^ {{0,{indent + 3}}}{re.escape(mark[0])}{{{len(mark)},}}\s*$")
            body_lines = []
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                body_lines.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
                j += 1
            if j == len(lines):
                raise MarkerError(f"{page}:{i + 1}: fenced block never closed")
            kind, reason = (pending[1], pending[2]) if pending else (None, "")
            found.append(Block(page, i + 1, lang, "\n".join(body_lines) + "\n", kind, reason))
            pending = None
            i = j + 1
            continue
        if pending and line.strip():
            raise MarkerError(f"{page}:{pending[0]}: marker not right above a fenced block")
        i += 1
    if pending:
        raise MarkerError(f"{page}:{pending[0]}: marker not right above a fenced block")
    return found


def check_markers(page_blocks: list[Block]) -> list[str]:
    """Problems with where markers sit: a skip on quoted text, an output marker on a block that
    runs or with no example before it."""
    problems = []
    previous: Block | None = None
    for block in page_blocks:
        if block.marker == "skip" and block.kind == "text":
            problems.append(
                f"{block.where}: skip marker on quoted text ({block.lang or 'no language'})"
            )
        if block.marker == "output":
            if block.kind != "text":
                problems.append(f"{block.where}: output marker on a {block.kind} block")
            elif previous is None:
                problems.append(f"{block.where}: output marker with no example above it")
        if block.kind != "text":
            previous = block
    return problems


def indented_code(path: Path) -> list[str]:
    """``FILE:LINE`` of every indented code block (four spaces after a blank line, outside
    lists and fences): such examples would never run, so the docs fence them instead."""
    page, out, in_fence, blank, in_list = _name(path), [], False, True, False
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            if blank and line.startswith("    ") and line.strip() and not in_list:
                out.append(f"{page}:{n}")
            if line.strip() and not line.startswith(" "):
                in_list = bool(re.match(r"([-*+]|\d+\.)\s", line))
        blank = not line.strip()
    return out


# --------------------------------------------------------------------------- outputs


def _normalise(text: str, workdir: Path | None = None) -> list[str]:
    if workdir is not None:
        for prefix in {str(workdir), str(Path(workdir).resolve())}:
            text = text.replace(prefix + os.sep, "")
    out = []
    for line in text.splitlines():
        if _PROGRESS.search(line):
            continue
        for pattern, replacement in VOLATILE:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    return out


def output_matches(quoted: str, printed: str, workdir: Path | None = None) -> str:
    """'' when every non-blank line of ``quoted`` appears in ``printed`` in order (``...`` =
    any text), else what is missing and where the search stood."""
    lines = _normalise(printed, workdir)
    at = 0
    for want in (w for w in _normalise(quoted) if w.strip()):
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")))
        for k in range(at, len(lines)):
            if pattern.fullmatch(lines[k]):
                at = k + 1
                break
        else:
            return (
                f"quoted line not printed (after printed line {at}):\n  {want}\n"
                "printed (normalised):\n" + "\n".join(f"  {x}" for x in lines[-TAIL:])
            )
    return ""


# --------------------------------------------------------------------------- running


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()
    cut = len(lines) - TAIL
    return (
        "\n".join(lines[-TAIL:]) if cut <= 0 else f"[{cut} lines cut]\n" + "\n".join(lines[-TAIL:])
    )


def _shims(workdir: Path) -> Path:
    """``.venv/bin/python`` and ``python3`` in the working directory: this interpreter."""
    bin_dir = workdir / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        shim.chmod(0o755)
    return bin_dir


def _env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{_shims(workdir)}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleaved as on a terminal
    return env


def _run_shell(
    block: Block, workdir: Path, env: dict[str, str], timeout: float
) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.code],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        return False, f"{out or ''}\n[timed out after {timeout:.0f} s]"
    failed = proc.returncode != 0
    return not failed, proc.stdout + (f"\n[exit status {proc.returncode}]" if failed else "")


def _run_python(block: Block, namespace: dict) -> tuple[bool, str]:
    """Execute one block in the page's namespace; tracebacks name the page's own lines."""
    pad = "\n" * block.line  # the first code line is the fence's line + 1
    buffer = io.StringIO()
    try:
        tree = ast.parse(pad + block.code, filename=block.page)
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):  # shown, as a notebook shows a cell's last value
            tree.body.pop()
        else:
            last = None
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            exec(compile(tree, block.page, "exec"), namespace)
            if last is not None:
                expression = ast.Expression(last.value)
                value = eval(compile(expression, block.page, "eval"), namespace)
                if value is not None:
                    print(repr(value))
    except BaseException:  # any failure of an example is reported; the page goes on
        return False, buffer.getvalue() + traceback.format_exc()
    return True, buffer.getvalue()


def run_page(path: Path, workdir: Path, timeout: float = 600.0, echo=None) -> list[Result]:
    """Run a page's examples in order in ``workdir`` (created; the process's working directory
    becomes it); one :class:`Result` per block."""
    page_blocks = blocks(path)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if not (workdir / name).exists():
            shutil.copytree(REPO / name, workdir / name)
    env = _env(workdir)
    os.environ.update(MPLBACKEND=env["MPLBACKEND"], PATH=env["PATH"])
    os.chdir(workdir)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    namespace: dict = {"__name__": "__main__"}
    results: list[Result] = []
    written = _documents(workdir)
    previous: tuple[Block, bool, str] | None = None  # the last example: block, ran, output
    for block in page_blocks:
        start = time.perf_counter()
        if block.kind == "text":
            if block.marker != "output":
                result = Result(block.page, block.line, "text", "text")
            elif previous is None or not previous[1]:
                why = f"its example {previous[0].where} did not run" if previous else "no example"
                result = Result(block.page, block.line, "output", "unchecked", why)
            else:
                problem = output_matches(block.code, previous[2], workdir)
                status = "differs" if problem else "checked"
                detail = f"output of {previous[0].where}: {problem}" if problem else ""
                result = Result(block.page, block.line, "output", status, detail)
        elif block.marker == "skip":
            result = Result(block.page, block.line, block.kind, "skipped", block.reason)
            previous = (block, False, "")
        else:
            if block.kind == "shell":
                ok, out = _run_shell(block, workdir, env, timeout)
            else:
                ok, out = _run_python(block, namespace)
            previous = (block, ok, out)
            seconds = time.perf_counter() - start
            detail = "" if ok else f"--- block ---\n{block.code}--- output ---\n{_tail(out)}"
            result = Result(
                block.page, block.line, block.kind, "ok" if ok else "failed", detail, seconds
            )
        results.append(result)
        if echo:
            echo(result)
        if block.runs:
            for regenerated in _regenerated(block, workdir, written):
                results.append(regenerated)
                if echo:
                    echo(regenerated)
    return results


def _documents(workdir: Path) -> dict[Path, int]:
    """The Markdown documents under the working directory's ``docs/``, with their mtimes."""
    return {p: p.stat().st_mtime_ns for p in sorted((workdir / "docs").rglob("*.md"))}


def _regenerated(block: Block, workdir: Path, written: dict[Path, int]) -> list[Result]:
    """A document an example (re)wrote under ``docs/`` must be the repository's, as committed."""
    results = []
    for path, mtime in _documents(workdir).items():
        if written.get(path) == mtime:
            continue
        written[path] = mtime
        rel = path.relative_to(workdir)
        committed = REPO / rel
        if not committed.is_file():
            detail = f"{rel} written by {block.where} is not in the repository"
        elif committed.read_text() != path.read_text():
            detail = (
                f"{rel} as regenerated by {block.where} differs from the repository's: "
                "regenerate and commit it"
            )
        else:
            detail = ""
        status = "differs" if detail else "checked"
        results.append(Result(block.page, block.line, f"document {rel}", status, detail))
    return results


def _echo(result: Result) -> None:
    if result.status == "text":
        return
    extra = f" ({result.seconds:.1f} s)" if result.seconds else ""
    line = f"{result.where} {result.kind}: {result.status}{extra}"
    if result.status == "skipped":
        line += f" ({result.detail})"
    print(line, flush=True)
    if result.status in ("failed", "differs", "unchecked") and result.detail:
        print(result.detail, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.doc_examples", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("pages", nargs="*", type=Path, help="Markdown pages (default: all)")
    parser.add_argument("--list", action="store_true", help="list the blocks; run nothing")
    parser.add_argument("--workdir", type=Path, help="where the page runs (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the results of one page here")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per block")
    args = parser.parse_args(argv)
    pages = [p.resolve() for p in args.pages] or default_pages()
    if args.json:
        args.json = args.json.resolve()
    if args.list:
        for page in pages:
            for block in blocks(page):
                what = "quoted" if block.kind == "text" else "runs"
                if block.marker == "skip":
                    what = f"skip ({block.reason})"
                elif block.marker == "output":
                    what = "output, checked"
                print(f"{block.where} {block.lang or '-'}: {what}")
        return 0
    if len(pages) > 1:  # one fresh process per page: no state shared between pages
        if args.json or args.workdir:
            parser.error("--json and --workdir take one page")
        codes = [
            subprocess.run(
                [sys.executable, "-m", "tools.doc_examples", str(p)], cwd=REPO
            ).returncode
            for p in pages
        ]
        return max(codes)
    with tempfile.TemporaryDirectory(prefix="doc-examples-") as tmp:
        results = run_page(pages[0], args.workdir or Path(tmp), args.timeout, echo=_echo)
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    return int(any(r.status in ("failed", "differs") for r in results))


if __name__ == "__main__":
    sys.exit(main())
