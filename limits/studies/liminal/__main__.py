"""``python -m limits.studies.liminal``: the command line (``document.main``)."""

from limits.studies.liminal.document import main

main()
