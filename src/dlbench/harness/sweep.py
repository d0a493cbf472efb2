"""A sweep: claim cells from Optuna one by one, train each, record it in MLflow.

Progress is one bar for the whole study (cells done / total, elapsed, ETA) with a
line per finished cell above it; Lightning's own per-epoch bars are off.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dlbench.harness import storage
from dlbench.harness.grid import Cell, expand
from dlbench.harness.runner import Result, checked_cells, run_cell
from dlbench.harness.spec import StudySpec
from dlbench.harness.tracking import Tracker
from dlbench.records import CELL, tracking_uri

MARKS = {
    "completed": "[green]done[/]",
    "diverged": "[yellow]diverged[/]",
    "failed": "[red]failed[/]",
    "pruned": "[blue]pruned[/]",
}


@dataclass
class CellReport:
    cell: Cell
    result: Result


def run_study(
    spec: StudySpec,
    *,
    tracking: str | None = None,
    optuna_storage: str | None = None,
    accelerator: str = "auto",
    console: Console | None = None,
) -> list[CellReport]:
    """Run every unfinished cell of ``spec``; returns what this invocation ran."""
    console = console or Console(stderr=True)
    uri = tracking_uri(tracking)
    cells = checked_cells(spec)
    by_id = {cell.id: cell for cell in cells}
    study = storage.open_study(spec.name, spec.objective.direction, optuna_storage)
    tracker = Tracker(spec, uri)
    for trial in storage.stale_trials(study):
        storage.release(study, trial)
    tracker.abandon_orphans("interrupted: the worker running this cell stopped")
    todo = storage.pending(study, cells)
    attempts = _attempts(study)
    done: list[CellReport] = []
    console.print(
        f"[bold]{spec.name}[/]: {len(cells)} cells, {len(cells) - len(todo)} already finished, "
        f"{len(todo)} to run  (MLflow: {uri}, Optuna: {optuna_storage or storage.journal_path(spec.name)})"
    )
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
        bar = progress.add_task(
            spec.name, total=len(cells), completed=len(cells) - len(todo), last=""
        )
        while (trial := storage.claim(study)) is not None:
            cell = by_id.get(trial.user_attrs[CELL])
            if cell is None:  # queued by a run of a different version of the study file
                storage.release(study, trial)
                continue
            attempts[cell.id] = attempts.get(cell.id, 0) + 1
            run_id = tracker.start_cell(cell, attempts[cell.id])
            trial.set_user_attr(storage.MLFLOW_RUN, run_id)
            try:
                result = run_cell(
                    cell, spec.objective, run_id=run_id, tracking_uri=uri, accelerator=accelerator
                )
            except (KeyboardInterrupt, SystemExit):
                tracker.abandon(run_id, "interrupted by the user")
                storage.release(study, trial)
                raise
            except Exception as err:  # a crashed cell is recorded and the sweep goes on
                result = Result("failed", error=f"{type(err).__name__}: {err}")
            tracker.end_cell(run_id, result.outcome, result.objective, result.error)
            storage.finish(study, trial, result.outcome, result.objective)
            done.append(CellReport(cell, result))
            last = _describe(cell, result, spec.objective.metric)
            progress.console.print(f"  {MARKS[result.outcome]:>20} {last}")
            progress.update(bar, advance=1, last=last)
    tracker.close()
    return done


def _attempts(study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        if CELL in trial.user_attrs and storage.MLFLOW_RUN in trial.user_attrs:
            counts[trial.user_attrs[CELL]] = counts.get(trial.user_attrs[CELL], 0) + 1
    return counts


def _describe(cell: Cell, result: Result, metric: str) -> str:
    if result.outcome == "completed":
        return f"{cell.label}: {metric}={result.objective:.4f} ({result.seconds:.1f}s)"
    return f"{cell.label}: {result.error}"


def summary_table(spec: StudySpec, optuna_storage: str | None = None) -> Table:
    """Per arm, over every attempt so far: cells done, objective mean +- std, what did not complete."""
    study = storage.open_study(spec.name, spec.objective.direction, optuna_storage)
    latest = {
        t.user_attrs[CELL]: t for t in study.get_trials(deepcopy=False) if CELL in t.user_attrs
    }
    table = Table(title=f"{spec.name}: {spec.objective.metric} ({spec.objective.summary} epoch)")
    for column in ("arm", "completed", "mean", "std", "not completed"):
        table.add_column(column, justify="left" if column in ("arm", "not completed") else "right")
    arms: dict[str, list[Cell]] = {}
    for cell in expand(spec):
        arms.setdefault(cell.arm_label or spec.name, []).append(cell)
    for arm, cells in arms.items():
        values, other = [], []
        for cell in cells:
            trial = latest.get(cell.id)
            outcome = trial.user_attrs.get(storage.OUTCOME) if trial else None
            if outcome == "completed":
                values.append(trial.value)
            else:
                other.append(f"s{cell.seed}:{outcome or 'missing'}")
        mean = f"{statistics.fmean(values):.4f}" if values else "-"
        std = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "-"
        table.add_row(arm, f"{len(values)}/{len(cells)}", mean, std, " ".join(other))
    return table
