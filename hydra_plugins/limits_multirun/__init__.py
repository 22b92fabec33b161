"""Hydra plugins of ``python -m limits.sweep -m``: a multirun that keeps going when one job's
config cannot be composed (``model=llama3_405b,nope``, a value of the wrong type for one job).

Hydra's basic sweeper composes every job before launching any, and its basic launcher composes
each job again just before it runs; either raises on the first bad job and aborts the others.
``KeepGoingSweeper`` skips that up-front check and ``KeepGoingLauncher`` composes each job
inside ``try``: a job that cannot be composed is recorded as failed in its own directory
(``limits.sweep.job.FAILURE_FILE``, the record a job's own failure writes), with its one-line
reason, and the next job runs. ``limits.sweep.consolidate.ConsolidateCallback`` reports every
failed job when the multirun ends and exits 2.

Hydra instantiates only plugins from the ``hydra_plugins`` namespace package, hence this
package next to ``limits``; ``limits/conf/config.yaml`` selects them
(``limits/conf/hydra/{sweeper,launcher}/keep_going.yaml``). Importing it must stay cheap:
Hydra imports every ``hydra_plugins`` module when it looks for plugins.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from omegaconf import open_dict
from omegaconf.errors import OmegaConfBaseException

__all__ = ["KeepGoingLauncher", "KeepGoingSweeper"]


class KeepGoingSweeper(BasicSweeper):
    """Hydra's basic sweeper without its compose-every-job-first check (which aborts the whole
    multirun on one bad job) when ``KeepGoingLauncher`` runs the jobs: it composes and checks
    each job itself. Other launchers (joblib, submitit) keep Hydra's check."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if not isinstance(self.launcher, KeepGoingLauncher):
            super().validate_batch_is_legal(batch)


class KeepGoingLauncher(BasicLauncher):
    """Hydra's basic launcher, one job at a time; a job whose config cannot be composed is
    recorded as failed (its directory, its one-line reason) and the others run."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        runs: list[JobReturn] = []
        for k, overrides in enumerate(job_overrides):
            idx = initial_job_idx + k
            try:  # the basic launcher composes, then runs the job (its errors stay inside)
                runs.extend(super().launch([overrides], initial_job_idx=idx))
            except (HydraException, OmegaConfBaseException) as err:
                runs.append(self._failed(idx, list(overrides), err))
        return runs

    def _failed(self, idx: int, overrides: list[str], err: BaseException) -> JobReturn:
        """Record job ``idx`` as failed with its one-line reason; a result Hydra accepts
        (the job is done: like a job whose task recorded its own failure)."""
        from hydra.core.utils import filter_overrides

        from limits.sweep.config import config_error_line
        from limits.sweep.job import FAILURE_FILE

        message = config_error_line(err)
        job_dir = self._job_dir(idx)
        job_dir.mkdir(parents=True, exist_ok=True)
        shown = " ".join(filter_overrides(overrides))
        (job_dir / FAILURE_FILE).write_text(f"{shown}\n{message}\n")
        print(f"limits.sweep: error: job {idx} ({shown}): {message}", file=sys.stderr, flush=True)
        return JobReturn(
            overrides=overrides,
            working_dir=str(job_dir),
            status=JobStatus.COMPLETED,
            _return_value=None,
        )

    def _job_dir(self, idx: int) -> Path:
        """The directory job ``idx`` would have had: ``hydra.sweep.dir/hydra.sweep.subdir``
        resolved with this job's number (``sweep.dir/idx`` when the subdir needs the job's
        own composed config)."""
        assert self.config is not None
        cfg = copy.deepcopy(self.config)
        with open_dict(cfg):
            cfg.hydra.job.num = idx
            cfg.hydra.job.id = idx
        try:
            subdir = str(cfg.hydra.sweep.subdir)
        except OmegaConfBaseException:
            subdir = str(idx)
        return Path(str(cfg.hydra.sweep.dir)) / subdir
