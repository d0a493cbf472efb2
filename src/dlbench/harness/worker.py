"""A worker: claim a cell from Optuna, train it, record it, until none is left.

The launcher (``sweep.run_study``) runs one worker in its own process, or starts
several as separate processes (``python -m dlbench.harness.worker``, spawned, not
forked: each starts with its own ``CUDA_VISIBLE_DEVICES`` and thread count, before
torch is imported). Workers share nothing but the Optuna storage and the MLflow
store, so the same loop serves one machine or many.

A cell whose own training raises is recorded as ``failed`` and the worker goes on; an
error anywhere else is dlbench's (``failures``): the worker gives back the cells it
holds (their runs closed as killed, their trials left for a later run) and stops with
the traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import optuna
import torch
from optuna.trial import Trial

from dlbench.harness import process, search, stacking, storage
from dlbench.harness.failures import CellFailed
from dlbench.harness.grid import Cell, expand
from dlbench.harness.options import RunOptions
from dlbench.harness.runner import COMPILED, Result, train
from dlbench.harness.spec import StudySpec, load_study
from dlbench.harness.tracking import Tracker
from dlbench.records import CELL, STACKED

# Seconds between looks at the storage while every remaining cell runs elsewhere:
# the worker waits in case one of those workers dies and its cell needs retrying.
POLL = 2.0


@dataclass(frozen=True)
class Job:
    """Everything a worker process needs, passed as JSON on its command line: the study,
    the run's options, and this worker's own slot."""

    study: str  # the study file, re-read by the worker
    smoke: bool
    overrides: list[str]
    options: RunOptions  # its tracking URI is the one this worker writes to
    accelerator: str
    devices: list[int] | None  # Lightning's devices for a GPU worker
    threads: int
    retry_before: int
    workers: int
    launcher_pid: int | None = None

    @classmethod
    def from_json(cls, text: str) -> Job:
        fields = json.loads(text)
        return cls(**{**fields, "options": RunOptions(**fields["options"])})


def work(spec: StudySpec, job: Job, on_finish: Callable[[], None] = lambda: None) -> None:
    """Run cells of ``spec`` until every cell is settled (by this or another worker)."""
    torch.set_num_threads(job.threads)
    cells = {cell.id: cell for cell in expand(spec)}
    study = storage.open_study(
        spec.name,
        spec.objective.direction,
        job.options.storage,
        workers=job.workers,
        heartbeat=job.options.heartbeat,
    )
    tracker = Tracker(spec, job.options.tracking, attach=True)
    while _launcher_alive(job):
        tracker.reap(study)
        todo = storage.pending(study, cells.values(), job.retry_before)
        if not todo:
            return
        trial = storage.claim(study, job.retry_before)
        if trial is None:
            time.sleep(POLL)
            continue
        claimed = _claim_more(study, cells, trial, len(todo), spec, job)
        trials = {id(cell): t for t, cell in claimed}  # groups() returns these same cells
        groups = [
            [(trials[id(c)], c) for c in group]
            for group in stacking.groups([cell for _, cell in claimed])
        ]
        # Every claimed trial beats until its group is done, so no other worker takes
        # a cell that waits here behind another group as abandoned.
        with contextlib.ExitStack() as beats:
            for t, _ in claimed:
                beats.enter_context(storage.heartbeat(study, t))
            for i, pairs in enumerate(groups):
                try:
                    _run_group(study, tracker, spec, job, pairs, on_finish)
                except BaseException:  # Ctrl-C, or an error in dlbench: give the rest back
                    for t, _ in (pair for later in groups[i + 1 :] for pair in later):
                        storage.release(study, t)
                    raise


Claimed = list[tuple[Trial, Cell]]


def _claim_more(
    study: optuna.Study, cells: dict[str, Cell], first: Trial, todo: int, spec: StudySpec, job: Job
) -> Claimed:
    """``first`` and, room permitting, more waiting cells to stack with it (``stacking``)."""
    claimed: Claimed = []
    trial: Trial | None = first
    room = 1 if spec.search else stacking.limit(job.options.stack, todo, job.workers)
    while trial is not None:
        cell = cells.get(trial.user_attrs[CELL])
        if cell is None:  # queued by a run of a different version of the study file
            storage.release(study, trial, "not a cell of this study file")
        else:
            claimed.append((trial, cell))
        if len(claimed) >= room:
            break
        trial = storage.claim(study, job.retry_before)
    return claimed


def _run_group(
    study: optuna.Study,
    tracker: Tracker,
    spec: StudySpec,
    job: Job,
    pairs: Claimed,
    on_finish: Callable[[], None],
) -> None:
    """Train cells of one stacking key as one stack, or one by one saying why not."""
    if len(pairs) == 1:
        note = (
            "stacking is off (--stack 1)"
            if job.options.stack == 1
            else (
                "search trials are tuned one at a time"
                if spec.search
                else "no other waiting cell differed only in seed, init, lr or optimizer"
            )
        )
        _one_by_one(study, tracker, spec, job, pairs, note, on_finish)
        return
    tags = {STACKED: str(len(pairs)), **_compiled_tag(job)}
    run_ids: list[str] = []
    try:
        for trial, cell in pairs:
            run_ids.append(_start(study, tracker, trial, cell, tags))
            trial.set_user_attr(storage.MLFLOW_RUN, run_ids[-1])
        results = _train(job, spec, [cell for _, cell in pairs], run_ids)
    except CellFailed as err:
        # One member's crash stops the whole stack: each cell trains again alone, so
        # only the cells that crash on their own are recorded as failed.
        for run_id in run_ids:
            tracker.abandon(run_id, f"its stack crashed ({err}); trained again alone")
        note = f"its stack of {len(pairs)} crashed: {err}"
        _one_by_one(study, tracker, spec, job, pairs, note, on_finish)
        return
    except BaseException as err:
        _give_back(study, tracker, [t for t, _ in pairs], run_ids, err)
        raise
    for (trial, _), run_id, result in zip(pairs, run_ids, results, strict=True):
        _record(study, tracker, trial, run_id, result)
        on_finish()


def _train(
    job: Job,
    spec: StudySpec,
    cells: list[Cell],
    run_ids: list[str],
    pruning: search.Pruning | None = None,
) -> list[Result]:
    return train(
        cells,
        spec.objective,
        run_ids=run_ids,
        tracking_uri=job.options.tracking,
        accelerator=job.accelerator,
        devices=job.devices,
        pruning=pruning,
        compile_models=job.options.compile_models,
    )


def _one_by_one(
    study: optuna.Study,
    tracker: Tracker,
    spec: StudySpec,
    job: Job,
    pairs: Claimed,
    note: str,
    on_finish: Callable[[], None],
) -> None:
    """Train ``pairs`` one at a time, each tagged with why it is not stacked."""
    for i, (trial, cell) in enumerate(pairs):
        try:
            _run_one(study, tracker, spec, job, trial, cell, note, on_finish)
        except BaseException:
            for later, _ in pairs[i + 1 :]:
                storage.release(study, later)
            raise


def _run_one(
    study: optuna.Study,
    tracker: Tracker,
    spec: StudySpec,
    job: Job,
    trial: Trial,
    cell: Cell,
    note: str,
    on_finish: Callable[[], None],
) -> None:
    """Train one cell alone (tuned first, in search mode): a stack of one."""
    tuning = pruning = None
    if spec.search and cell.trial is not None:
        tuning = search.cell_study(study, spec.search, cell, spec.objective.direction)
        cell, tuned = search.suggest(tuning, spec.search, cell)
        pruning = search.Pruning(tuned, spec.objective.metric)
    tags = {STACKED: "1", stacking.NOTE: note, **_compiled_tag(job)}
    run_ids: list[str] = []
    try:
        run_ids.append(_start(study, tracker, trial, cell, tags))
        run_id = run_ids[0]
        trial.set_user_attr(storage.MLFLOW_RUN, run_id)
        try:
            (result,) = _train(job, spec, [cell], run_ids, pruning)
        except CellFailed as err:  # a result; any other error is dlbench's (failures)
            result = Result("failed", error=str(err))
    except BaseException as err:
        _give_back(study, tracker, [trial], run_ids, err)
        if tuning is not None:
            search.conclude(tuning, pruning.trial, "failed", None)
        raise
    if tuning is not None:
        search.conclude(tuning, pruning.trial, result.outcome, result.objective)
    _record(study, tracker, trial, run_id, result)
    on_finish()


def _give_back(
    study: optuna.Study,
    tracker: Tracker,
    trials: list[Trial],
    run_ids: list[str],
    err: BaseException,
) -> None:
    """Cells stopped by Ctrl-C or by an error in dlbench: their runs closed as killed,
    their trials released, so the next run trains them (this is no cell result)."""
    reason = (
        "interrupted by the user"
        if isinstance(err, KeyboardInterrupt | SystemExit)
        else f"stopped by an error in dlbench, not in the cell: {type(err).__name__}: {err}"
    )
    for run_id in run_ids:
        tracker.abandon(run_id, reason)
    for trial in trials:
        storage.release(study, trial)


def _start(
    study: optuna.Study, tracker: Tracker, trial: Trial, cell: Cell, tags: dict[str, str]
) -> str:
    """The attempt's MLflow run, tagged with its trial number (``Tracker.abandon_attempt``)."""
    attempt = storage.attempt_number(study, cell.id)
    return tracker.start_cell(cell, attempt, {**tags, storage.OPTUNA_TRIAL: str(trial.number)})


def _compiled_tag(job: Job) -> dict[str, str]:
    return {COMPILED: "true"} if job.options.compile_models else {}


def _record(
    study: optuna.Study, tracker: Tracker, trial: Trial, run_id: str, result: Result
) -> None:
    """The outcome on the trial (the commit point), then on the run, then told to Optuna:
    a worker killed anywhere in between leaves the rest to ``reap``."""
    try:
        storage.record(
            trial, result.outcome, result.objective, seconds=result.seconds, error=result.error
        )
    except optuna.exceptions.UpdateFinishedTrialError:
        # Presumed dead (missed heartbeats) while it trained: the cell is retried elsewhere.
        tracker.abandon(run_id, "superseded: this worker missed its heartbeats")
        return
    tracker.end_cell(
        run_id,
        result.outcome,
        result.objective,
        result.error,
        seconds=result.seconds,
        stack_seconds=result.stack_seconds,
    )
    storage.tell(study, trial, result.outcome, result.objective)


def _launcher_alive(job: Job) -> bool:
    """A worker whose launcher was killed stops between cells instead of running on alone."""
    return job.launcher_pid is None or os.getppid() == job.launcher_pid


def main(argv: list[str]) -> int:
    process.setup()
    job = Job.from_json(argv[0])
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
