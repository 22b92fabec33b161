"""``python -m limits.sweep [overrides]``: the main job."""

from limits.cli import entry_point

entry_point()  # before the job's imports (JAX, Hydra, zarr): they allocate most of the heap

from limits.sweep.job import main  # noqa: E402

main()
