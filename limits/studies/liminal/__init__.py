"""The LIMINAL study report: what a sweep shows for each published finding of the paper
(arXiv 2507.14397; docs/references.md s.1), with figures.

``python -m limits.studies.liminal STORE_OR_MULTIRUN_DIR --out docs/liminal_report.md`` reads a
study store (normally the consolidated multirun of ``sweeps/liminal.yaml``, dims ``hardware``,
``model``, ``tp``, ``context``, ``batch``, ``sync_latency``), computes every number from it with
``limits.analysis`` and writes a markdown report plus PNG figures (next to the report in
``figures/`` unless ``--figures`` says otherwise). The only constants here are the paper's published
values, quoted for comparison (``PAPER``).

From Python: ``findings(ds)`` (a list of ``Finding``), ``findings_table(found)`` (a
DataFrame), ``make_figures(ds, dir)``, ``write_report(path, out)``, and ``run_study(recipe,
sweep_dir)`` which runs a multirun recipe of ``sweeps/`` job by job in this process and
consolidates it (what ``python -m limits.sweep --config-dir sweeps --config-name NAME``
does, without Hydra's launcher).

Modules: ``findings`` (the findings computed from a store), ``figures`` (the report's
figures), ``document`` (the markdown report, ``write_report`` and the command line).
"""

from __future__ import annotations

from limits.studies.common import SWEEPS_DIR, Finding, normalise, run_study
from limits.studies.liminal.document import main, render, write_report
from limits.studies.liminal.figures import FIGURES, make_figures
from limits.studies.liminal.findings import FINDINGS, findings, findings_table
from limits.studies.paper import PAPER

__all__ = [
    "PAPER",
    "Finding",
    "FINDINGS",
    "FIGURES",
    "findings",
    "findings_table",
    "normalise",
    "make_figures",
    "render",
    "write_report",
    "run_study",
    "SWEEPS_DIR",
    "main",
]
