"""Where a study stands, read from the Optuna storage: per cell, per state, per arm."""

from __future__ import annotations

import statistics
from collections import Counter

from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from dlbench.harness import grid, storage
from dlbench.harness.grid import Cell, expand
from dlbench.harness.spec import StudySpec
from dlbench.records import OUTCOME

# A cell's state, in the order the status table lists them.
STATES = ("done", "running", "failed", "diverged", "pruned", "missing", "refused")
_BY_OUTCOME = {"completed": "done", "failed": "failed", "diverged": "diverged", "pruned": "pruned"}


def last_settled(attempts: list[FrozenTrial]) -> FrozenTrial | None:
    """The latest attempt that settled its cell (has an outcome), or None."""
    return next((t for t in reversed(attempts) if t.user_attrs.get(OUTCOME)), None)


def cell_state(attempts: list[FrozenTrial]) -> str:
    """done/diverged/pruned/failed from the latest settled attempt, else running or missing."""
    if settled := last_settled(attempts):
        return _BY_OUTCOME[settled.user_attrs[OUTCOME]]
    if any(t.state == TrialState.RUNNING for t in attempts):
        return "running"
    return "missing"  # never started, queued, or its attempt was interrupted


def states(spec: StudySpec, optuna_storage: str | None = None) -> list[tuple[Cell, str]]:
    """Every cell of ``spec`` with its state; a study never run is not created by asking."""
    study = storage.existing_study(spec.name, optuna_storage)
    by_cell = storage.attempts_by_cell(study) if study else {}
    return [(cell, cell_state(by_cell.get(cell.id, []))) for cell in expand(spec)]


def status_table(spec: StudySpec, optuna_storage: str | None = None) -> Table:
    """Counts of cells per state, with the cells that are not done named (refused ones
    by arm: they have no cells)."""
    found = states(spec, optuna_storage)
    counts = Counter(state for _, state in found)
    refused = [f"{arm} ({why})" for arm, why in grid.refused(spec).items()]
    counts["refused"] = len(refused) * len(spec.seeds) * (spec.search.trials if spec.search else 1)
    table = Table(title=f"{spec.name}: {len(found) + counts['refused']} cells")
    for column in ("state", "cells", "which"):
        table.add_column(column, justify="right" if column == "cells" else "left")
    for state in STATES:
        which = refused if state == "refused" else [cell.label for cell, s in found if s == state]
        shown = ", ".join(which[:8]) + (f", ... ({len(which) - 8} more)" if len(which) > 8 else "")
        table.add_row(state, str(counts.get(state, 0)), "" if state == "done" else shown)
    return table


def summary_table(spec: StudySpec, optuna_storage: str | None = None) -> Table:
    """Per arm, over every attempt so far: cells done, objective mean +- std, what did not complete."""
    study = storage.open_study(spec.name, spec.objective.direction, optuna_storage)
    by_cell = storage.attempts_by_cell(study)
    table = Table(title=f"{spec.name}: {spec.objective.metric} ({spec.objective.summary} epoch)")
    for column in ("arm", "completed", "mean", "std", "not completed"):
        table.add_column(column, justify="left" if column in ("arm", "not completed") else "right")
    # Per arm, per grid cell (seed): its units, one for a plain grid, ``trials`` for a search.
    arms: dict[str, dict[str, list[Cell]]] = {}
    for cell in expand(spec):
        arms.setdefault(cell.arm_label or spec.name, {}).setdefault(cell.grid_id, []).append(cell)
    pick = max if spec.objective.direction == "maximize" else min
    for arm, grid_cells in arms.items():
        values, other = [], []
        for units in grid_cells.values():
            done = []
            for unit in units:
                attempts = by_cell.get(unit.id, [])
                state = cell_state(attempts)
                if state == "done":
                    done.append(storage.objective(last_settled(attempts)))
                else:
                    trial = "" if unit.trial is None else f"t{unit.trial}"
                    other.append(f"s{unit.seed}{trial}:{state}")
            if done:
                values.append(pick(done))  # a search cell's result: its best trial
        mean = f"{statistics.fmean(values):.4f}" if values else "-"
        std = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "-"
        table.add_row(arm, f"{len(values)}/{len(grid_cells)}", mean, std, " ".join(other))
    return table


def jobs_table(study: str) -> Table | None:
    """The jobs `dlbench submit` started for ``study`` (``runs/<study>/jobs.json``) and
    their state now; None if it never submitted any."""
    from dlbench.harness.submit import submitted

    jobs = submitted(study)
    if not jobs:
        return None
    table = Table(title=f"{study}: submitted jobs")
    for column in ("job", "cluster", "state", "submitted", "log"):
        table.add_column(column)
    for job in jobs:
        table.add_row(job["job"], job["cluster"], job["state"], job["submitted"], job["log"])
    return table
