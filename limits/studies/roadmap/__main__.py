"""``python -m limits.studies.roadmap``: the command line (``document.main``)."""

from limits.studies.roadmap.document import main

main()
