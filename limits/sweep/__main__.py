"""``python -m limits.sweep [overrides]``: the main job."""

from limits.sweep.job import main

main()
