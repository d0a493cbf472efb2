"""A worker: claim a cell from Optuna, train it, record it, until none is left.

The launcher (``sweep.run_study``) runs one worker in its own process, or starts
several as separate processes (``python -m dlbench.harness.worker``, spawned, not
forked: each starts with its own ``CUDA_VISIBLE_DEVICES`` and thread count, before
torch is imported). Workers share nothing but the Optuna storage and the MLflow
store, so the same loop serves one machine or many.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from dlbench.harness import search, storage
from dlbench.harness.grid import Cell, expand
from dlbench.harness.runner import Result, run_cell
from dlbench.harness.spec import StudySpec, load_study
from dlbench.harness.tracking import Tracker
from dlbench.records import CELL

# Seconds between looks at the storage while every remaining cell runs elsewhere:
# the worker waits in case one of those workers dies and its cell needs retrying.
POLL = 2.0


@dataclass(frozen=True)
class Job:
    """Everything a worker process needs, passed as JSON on its command line."""

    study: str  # the study file, re-read by the worker
    smoke: bool
    overrides: list[str]
    storage: str | None
    tracking: str
    accelerator: str
    devices: list[int] | None  # Lightning's devices for a GPU worker
    threads: int
    retry_before: int
    workers: int
    heartbeat: int
    launcher_pid: int | None = None


def work(spec: StudySpec, job: Job, on_finish: Callable[[], None] = lambda: None) -> None:
    """Run cells of ``spec`` until every cell is settled (by this or another worker)."""
    torch.set_num_threads(job.threads)
    cells = {cell.id: cell for cell in expand(spec)}
    study = storage.open_study(
        spec.name,
        spec.objective.direction,
        job.storage,
        workers=job.workers,
        heartbeat=job.heartbeat,
    )
    tracker = Tracker(spec, job.tracking, attach=True)
    while _launcher_alive(job):
        for gone, reason in storage.reap(study):
            if storage.MLFLOW_RUN in gone.user_attrs:
                tracker.abandon(gone.user_attrs[storage.MLFLOW_RUN], reason)
        if not storage.pending(study, cells.values(), job.retry_before):
            return
        trial = storage.claim(study, job.retry_before)
        if trial is None:
            time.sleep(POLL)
            continue
        cell = cells.get(trial.user_attrs[CELL])
        if cell is None:  # queued by a run of a different version of the study file
            storage.release(study, trial, "not a cell of this study file")
            continue
        tuning = pruning = None
        if spec.search and cell.trial is not None:
            tuning = search.cell_study(study, spec.search, cell, spec.objective.direction)
            cell, tuned = search.suggest(tuning, spec.search, cell)
            pruning = search.Pruning(tuned, spec.objective.metric)
        run_id = tracker.start_cell(cell, storage.attempt_number(study, cell.id))
        trial.set_user_attr(storage.MLFLOW_RUN, run_id)
        try:
            with storage.heartbeat(study, trial):
                result = _attempt(cell, spec, job, run_id, pruning)
        except (KeyboardInterrupt, SystemExit):
            tracker.abandon(run_id, "interrupted by the user")
            storage.release(study, trial)
            if tuning is not None:
                search.conclude(tuning, pruning.trial, "failed", None)
            raise
        if tuning is not None:
            search.conclude(tuning, pruning.trial, result.outcome, result.objective)
        tracker.end_cell(run_id, result.outcome, result.objective, result.error)
        storage.finish(
            study,
            trial,
            result.outcome,
            result.objective,
            seconds=result.seconds,
            error=result.error,
        )
        on_finish()


def _attempt(
    cell: Cell, spec: StudySpec, job: Job, run_id: str, pruning: search.Pruning | None
) -> Result:
    """One cell's result; a crash becomes ``failed`` with the error, and the worker goes on."""
    try:
        return run_cell(
            cell,
            spec.objective,
            run_id=run_id,
            tracking_uri=job.tracking,
            accelerator=job.accelerator,
            devices=job.devices,
            pruning=pruning,
        )
    except torch.cuda.OutOfMemoryError as err:
        # Free what the failed cell held, so the next one starts with a clean device.
        gc.collect()
        torch.cuda.empty_cache()
        return Result("failed", error=f"CUDA out of memory: {err}".splitlines()[0])
    except Exception as err:
        return Result("failed", error=f"{type(err).__name__}: {err}")


def _launcher_alive(job: Job) -> bool:
    """A worker whose launcher was killed stops between cells instead of running on alone."""
    return job.launcher_pid is None or os.getppid() == job.launcher_pid


def main(argv: list[str]) -> int:
    job = Job(**json.loads(argv[0]))
    spec = load_study(job.study, smoke=job.smoke, overrides=job.overrides)
    try:
        work(spec, job)
    except KeyboardInterrupt:
        return 130
    return 0


def command(job: Job) -> list[str]:
    """The command line that starts a worker process for ``job``."""
    return [sys.executable, "-m", "dlbench.harness.worker", json.dumps(asdict(job))]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
