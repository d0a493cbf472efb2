"""A sweep: the launcher. It validates the study, prepares Optuna and MLflow, starts
the workers (``worker.py``) and draws the progress from the Optuna storage.

Progress is one bar for the whole study (cells settled / total, elapsed, ETA) with a
line per finished cell above it, whichever worker ran it; Lightning's own per-epoch
bars are off. Worker processes write their logs to ``runs/<study>/worker-N.log``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dlbench.harness import devices as device_plan
from dlbench.harness import encoders, grid, process, storage, worker
from dlbench.harness.grid import Cell
from dlbench.harness.options import RunOptions
from dlbench.harness.plan import checked_cells
from dlbench.harness.spec import StudySpec
from dlbench.harness.tracking import Tracker, shared_store
from dlbench.records import CELL, ERROR, OUTCOME, SECONDS, tracking_uri

MARKS = {
    "completed": "[green]done[/]",
    "diverged": "[yellow]diverged[/]",
    "failed": "[red]failed[/]",
    "pruned": "[blue]pruned[/]",
}


@dataclass(frozen=True)
class Settled:
    """A cell attempt that finished during this run, as the storage records it."""

    cell: Cell
    outcome: str
    objective: float | None
    seconds: float
    error: str | None


def run_study(
    spec: StudySpec, options: RunOptions | None = None, console: Console | None = None
) -> list[Settled]:
    """Run every unsettled cell of ``spec`` as ``options`` say; returns what settled now."""
    process.setup()
    options = options or RunOptions()
    console = console or Console(stderr=True)
    uri = tracking_uri(options.tracking)
    optuna_storage, heartbeat = options.storage, options.heartbeat
    slots = device_plan.plan(
        options.devices,
        workers=options.workers,
        per_device=options.per_device,
        gpu_count=torch.cuda.device_count(),
        cores=device_plan.usable_cores(),
        threads=options.threads,
    )
    cells = checked_cells(spec)
    encoders.check_available(cells, uri, spec.source)  # pre-trained ones must exist already
    study = storage.open_study(
        spec.name,
        spec.objective.direction,
        optuna_storage,
        workers=len(slots),
        heartbeat=heartbeat,
    )
    tracker = Tracker(spec, uri)  # experiment and parent run, before any worker starts
    # Attempts of dead workers are reaped here (an attempt killed after recording its
    # outcome leaves no cell to run, so no worker would), then by the workers themselves
    # (worker.work); close_stale closes MLflow runs left RUNNING by attempts that are over.
    tracker.reap(study)
    tracker.close_stale(study, storage.STOPPED)
    retry_before = len(study.get_trials(deepcopy=False)) if options.retry_failed else 0
    todo = storage.pending(study, cells, retry_before)
    monitor = Monitor(study, cells, spec.objective.metric)
    where = optuna_storage or storage.journal_path(spec.name)
    for arm, why in grid.refused(spec).items():
        console.print(f"refused: {arm}: {why}")
    console.print(
        f"[bold]{spec.name}[/]: {len(cells)} cells, {len(cells) - len(todo)} already finished, "
        f"{len(todo)} to run on {', '.join(slot.label for slot in slots)}  "
        f"(MLflow: {uri}, Optuna: {where})"
    )
    logs = storage.RUNS_DIR / spec.name
    with (
        monitor.progress(console, len(cells) - len(todo)),
        shared_store(uri, len(slots) if todo else 1, logs / "mlflow-server.log") as shared,
    ):

        def job(slot: device_plan.Slot, in_process: bool) -> worker.Job:
            # A worker process sees only its GPU (as index 0); this process sees them all.
            gpu = slot.env.get("CUDA_VISIBLE_DEVICES")
            return worker.Job(
                study=spec.source,
                smoke=spec.smoke,
                overrides=list(spec.overrides),
                options=options.with_tracking(shared),
                accelerator=slot.accelerator,
                devices=[int(gpu) if in_process else 0] if gpu else None,
                threads=slot.threads,
                retry_before=retry_before,
                workers=len(slots),
                launcher_pid=None if in_process else os.getpid(),
            )

        crashed: list[str] = []
        if todo and len(slots) == 1:
            with device_plan.hidden_gpus(slots[0]):
                worker.work(spec, job(slots[0], True), on_finish=monitor.poll)
        elif todo:
            jobs = [job(slot, False) for slot in slots]
            crashed = _run_processes(jobs, slots, logs, monitor, console)
            tracker.reap(study)  # of workers that died last
        monitor.poll()
    tracker.close_stale(study, storage.STOPPED)
    tracker.close()
    left = storage.unsettled(study, cells, retry_before)
    if crashed or left:
        why = (
            f"a worker stopped with an error in dlbench (traceback in {', '.join(crashed)})"
            if crashed
            else f"every worker stopped (see {logs}/)"
        )
        raise Incomplete(
            f"{spec.name}: {why}; {len(left)} of {len(cells)} cells not run"
            + ("; run the same command again to resume" if left else "")
        )
    return monitor.settled


class Incomplete(RuntimeError):
    """The sweep stopped short: a worker process crashed (an error in dlbench, not a cell
    result) or every worker stopped early, leaving cells to run."""


def _run_processes(
    jobs: list[worker.Job],
    slots: list[device_plan.Slot],
    logs: Path,
    monitor: Monitor,
    console: Console,
) -> list[str]:
    """Start one worker process per slot and show progress until all have exited; returns
    the logs of the workers that stopped with an error (not those killed by a signal)."""
    processes = []
    for job, slot in zip(jobs, slots, strict=True):
        log = logs / f"worker-{slot.index}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                worker.command(job), env={**os.environ, **slot.env}, stdout=out, stderr=out
            )
        processes.append((log, process))
    try:
        # poll() every process each time: it also reaps a dead worker, whose pid would
        # otherwise linger as a zombie and look alive to the others' liveness checks.
        while [p.poll() for _, p in processes].count(None):
            monitor.poll()
            time.sleep(0.5)
    except KeyboardInterrupt:
        # The workers got the same Ctrl-C; they release their cells and exit.
        for _, process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        raise
    crashed = []
    for log, process in processes:
        if process.returncode != 0:
            console.print(f"[red]a worker exited with code {process.returncode}; see {log}[/]")
        # A worker killed by a signal (< 0) leaves its cells to the others or the next
        # run (``storage.reap``); one that exited with an error hit a bug in dlbench.
        if process.returncode > 0 and process.returncode != 130:  # 130: Ctrl-C
            crashed.append(str(log))
    return crashed


class Monitor:
    """Reads settled attempts from the storage and draws them: one path for any number
    of workers, in this process or others."""

    def __init__(self, study, cells: list[Cell], metric: str):
        self.study, self.metric = study, metric
        self.by_id = {cell.id: cell for cell in cells}
        self.seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        self.settled: list[Settled] = []
        self._progress: Progress | None = None

    @contextlib.contextmanager
    def progress(self, console: Console, already: int):
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            self._progress = progress
            self._bar = progress.add_task(
                self.study.study_name, total=len(self.by_id), completed=already, last=""
            )
            yield
        self._progress = None

    def poll(self) -> None:
        for trial in self.study.get_trials(deepcopy=False):
            if trial.number in self.seen or not trial.state.is_finished():
                continue
            self.seen.add(trial.number)
            attrs = trial.user_attrs
            cell = self.by_id.get(attrs.get(CELL))
            if cell is None or OUTCOME not in attrs:
                continue  # released for a retry, or not this study file's cell
            done = Settled(
                cell,
                attrs[OUTCOME],
                storage.objective(trial),
                attrs.get(SECONDS, 0.0),
                attrs.get(ERROR),
            )
            self.settled.append(done)
            if self._progress is not None:
                last = _describe(done, self.metric)
                self._progress.console.print(f"  {MARKS[done.outcome]:>20} {last}")
                self._progress.update(self._bar, advance=1, last=last)


def _describe(done: Settled, metric: str) -> str:
    if done.outcome == "completed":
        return f"{done.cell.label}: {metric}={done.objective:.4f} ({done.seconds:.1f}s)"
    return f"{done.cell.label}: {done.error}"
