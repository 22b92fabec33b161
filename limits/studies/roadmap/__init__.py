"""The hardware roadmap study: what memory bandwidth, sync latency and chips buy in decode speed
per user, compared with the LIMINAL paper's roadmap statements (arXiv 2507.14397;
docs/references.md s.1).

``python -m limits.studies.roadmap STORE_OR_MULTIRUN_DIR --out docs/roadmap.md`` reads the study
store (normally the consolidated multirun of ``sweeps/roadmap.yaml``: dims ``hardware``, ``model``,
``mem_bw``, ``sync_latency``, ``tp``, ``context``, ``batch``, elasticities along ``wrt``), solves
the inverse-design questions (``limits.autodiff.inverse``) on the store's own grid and settings
(rebuilt from its provenance, ``limits.studies.common.job_params``) and writes a markdown document
plus PNG figures ``roadmap_*.png`` (in ``<out dir>/figures`` unless ``--figures`` says otherwise).
The only constants are the paper's published values (``limits.studies.paper.PAPER``) and the
choice of the representative deployment (``REPRESENTATIVE``), both quoted for comparison.

From Python: ``solve(ds, model, target_utps)`` (inverse design over the grid),
``findings(ds)``, ``make_figures(ds, dir)``, ``write_roadmap(path, out)``.

Modules: ``findings`` (store access, ``solve`` and the findings), ``figures`` (the document's
figures), ``document`` (the markdown document, ``write_roadmap`` and the command line).
"""

from __future__ import annotations

from limits.studies.roadmap.document import main, render, write_roadmap
from limits.studies.roadmap.figures import FIGURES, make_figures
from limits.studies.roadmap.findings import (
    FINDINGS,
    REPRESENTATIVE,
    TARGETS,
    RoadmapFinding,
    findings,
    solve,
)

__all__ = [
    "REPRESENTATIVE",
    "TARGETS",
    "RoadmapFinding",
    "FINDINGS",
    "FIGURES",
    "solve",
    "findings",
    "make_figures",
    "render",
    "write_roadmap",
    "main",
]
