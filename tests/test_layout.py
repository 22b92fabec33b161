"""The rules of the house (docs/design.md) as tests: stages import one way, the engine knows
no physics, analysis reads only the store's record, physics rules live once in limits.model,
and importing or calling the library switches no global state."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "limits"

#: stage -> the stages it may import (``limits`` itself: the top-level version/API)
ALLOWED = {
    "errors": set(),
    "units": {"errors"},
    "model": {"errors", "units"},
    "presets": {"errors", "units", "model"},
    "autodiff": {"errors", "units", "model"},
    "sweep": {"errors", "units", "model", "autodiff", "presets", "limits", "compile_cache", "cli"},
    "analysis": {"errors", "units", "model", "sweep"},  # sweep: store-layout names only
    "plots": {"errors", "units", "model", "analysis"},
    "studies": {"errors", "units", "model", "autodiff", "sweep", "analysis", "plots", "presets"},
    # command-line front ends at the top level (python -m limits.<name>)
    "validate": {"errors", "units", "model", "presets", "autodiff"},
    "status": {"errors", "sweep"},
    "fast": {"model"},  # limits.evaluate: the model compiled once per parameter layout
    "compile_cache": set(),  # JAX's persistent compilation cache, set at entry points
    "cli": set(),  # what an entry point does for its own process (no full collection at exit)
    # answers: query evaluates presets through the sweep's config (compose), explore reads stores
    "query": {
        "errors",
        "units",
        "model",
        "fast",
        "sweep",
        "analysis",
        "plots",
        "compile_cache",
        "cli",
    },
    "explore": {"errors", "units", "model", "analysis", "query"},  # query: fmt only
    "calibrate": {"errors", "units", "model", "presets", "autodiff", "validate"},
}


def _imports(path: Path) -> set[str]:
    """Every ``limits...`` module that ``path`` imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "limits" or m.startswith("limits.")}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "limits"


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "conf" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_stages_import_one_way(path):
    rel = path.relative_to(PACKAGE)
    stage = rel.parts[0].removesuffix(".py")
    if stage == "__init__" or stage == "__main__":
        return  # the top level re-exports the public API
    bad = {m for m in _imports(path) if _stage(m) not in ALLOWED[stage] | {stage}}
    assert not bad, f"{rel} (stage {stage}) imports {sorted(bad)}"


def test_the_engine_never_imports_the_model():
    imported = _imports(PACKAGE / "sweep" / "engine.py")
    assert not {m for m in imported if _stage(m) in ("model", "autodiff")}, imported


def test_the_model_never_imports_the_engine_or_any_later_stage():
    for path in (PACKAGE / "model").rglob("*.py"):
        later = {m for m in _imports(path) if _stage(m) not in ("model", "units", "errors")}
        assert not later, f"{path.name} imports {later}"


def test_analysis_plots_and_studies_never_read_preset_files():
    for stage in ("analysis", "plots", "studies", "explore"):
        for path in (PACKAGE / stage).rglob("*.py"):
            text = path.read_text()
            assert not {m for m in _imports(path) if _stage(m) == "presets"}, path
            assert "load_preset" not in text and "load_params" not in text, path
            assert '"conf"' not in text, path  # no path into the preset tree


def test_the_in_node_rule_lives_only_in_the_model():
    """``group > node_size`` (which latency a collective pays) is written once, in
    limits/model/sync.py (``leaves_node``); everyone else calls it."""
    rule = re.compile(r"[<>]=?\s*\S*node_size|node_size\S*\s*[<>]=?")
    for path in _modules():
        if path == PACKAGE / "model" / "sync.py":
            continue
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        # docstrings may describe the rule; code must not re-implement it
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                text = ast.unparse(node)
                assert not rule.search(text), f"{path.relative_to(PACKAGE)}: {text}"


def test_the_draft_model_step_lives_only_in_the_model():
    for path in _modules():
        if path.parent.name == "model" or path.name in ("config.py",):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.BinOp) and "draft_params" in ast.unparse(node):
                pytest.fail(f"{path.relative_to(PACKAGE)} computes {ast.unparse(node)}")


@pytest.mark.subprocess
def test_importing_and_running_switches_no_global_state(tmp_path):
    """Importing every stage and running a float64 sweep leave JAX's x64 flag and
    matplotlib's backend as they were."""
    script = f"""
import matplotlib, jax
before = (matplotlib.get_backend(), getattr(jax.config, "jax_enable_x64"))
import limits, limits.analysis, limits.autodiff, limits.plots, limits.sweep, limits.studies.common
from limits.sweep import compose, run
run(compose(["grid=point", "precision=float64", "store.path={tmp_path / "s.zarr"}"]),
    verbose=False)
after = (matplotlib.get_backend(), getattr(jax.config, "jax_enable_x64"))
assert before == after, (before, after)
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"JAX_PLATFORMS": "cpu", "MPLBACKEND": "svg", "PATH": "/usr/bin:/bin"},
        cwd=PACKAGE.parent,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
