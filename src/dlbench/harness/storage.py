"""The Optuna side of a sweep: one study per study file, one trial per cell attempt.

Cells are enqueued as WAITING trials carrying their cell id; a worker claims one
with ``study.ask()``, which Optuna makes atomic (a trial moves WAITING -> RUNNING
once), and reports the outcome with ``study.tell()``. Finished cells (completed,
diverged, failed, pruned) are never enqueued again, so a finished study re-run does
nothing and an interrupted one picks up where it stopped.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from dlbench.harness.grid import Cell
from dlbench.records import CELL, ERROR, OUTCOME, OUTCOMES

RUNS_DIR = Path("runs")
# Trial user attrs: the cell and outcome under the same names as the MLflow tags,
# plus who claimed the attempt and which MLflow run records it.
HOST, PID = "dlbench.host", "dlbench.pid"
MLFLOW_RUN = "dlbench.mlflow_run"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def journal_path(study: str) -> Path:
    return RUNS_DIR / study / "optuna.journal"


def open_study(name: str, direction: str, storage: str | None = None) -> optuna.Study:
    """Create or load the Optuna study; default storage is the journal file in ``runs/``."""
    if storage is None:
        path = journal_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(
        study_name=name, storage=storage, direction=direction, load_if_exists=True
    )


def worker_alive(host: str | None, pid: object) -> bool:
    """Whether the process ``pid`` on ``host`` may still be working.

    Only a process on this host can be checked; one elsewhere counts as alive.
    """
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def worker_tags() -> dict[str, str]:
    """Who is working: recorded on trials and MLflow runs alike, read by ``worker_alive``."""
    return {HOST: socket.gethostname(), PID: str(os.getpid())}


def stale_trials(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials whose worker on this host is gone (killed or crashed)."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [
        t
        for t in running
        if CELL in t.user_attrs and not worker_alive(t.user_attrs.get(HOST), t.user_attrs.get(PID))
    ]


def release(study: optuna.Study, trial: FrozenTrial) -> None:
    """Mark an abandoned attempt FAIL (outcome unset), so its cell is enqueued again."""
    study._storage.set_trial_user_attr(trial._trial_id, ERROR, "interrupted")
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def pending(study: optuna.Study, cells: Iterable[Cell]) -> list[Cell]:
    """Enqueue every cell with no finished, waiting or running attempt; return unfinished cells."""
    seen: dict[str, set[TrialState | str]] = {}
    for trial in study.get_trials(deepcopy=False):
        if CELL in trial.user_attrs:
            state = trial.user_attrs.get(OUTCOME) if trial.state.is_finished() else trial.state
            seen.setdefault(trial.user_attrs[CELL], set()).add(state)
    todo = []
    for cell in cells:
        states = seen.get(cell.id, set())
        if states & set(OUTCOMES):
            continue
        if not states & {TrialState.WAITING, TrialState.RUNNING}:
            study.enqueue_trial({}, user_attrs={CELL: cell.id})
        todo.append(cell)
    return todo


def claim(study: optuna.Study) -> Trial | None:
    """The next waiting cell's trial, now RUNNING and owned by this process; None when none."""
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return None
    trial = study.ask()
    if CELL not in trial.user_attrs:
        # Another worker took the last waiting trial first and ask() made a fresh one.
        study.tell(trial, state=TrialState.FAIL)
        return None
    for key, value in worker_tags().items():
        trial.set_user_attr(key, value)
    return trial


def finish(study: optuna.Study, trial: Trial, outcome: str, value: float | None) -> None:
    """Record a cell attempt's outcome; only ``completed`` carries an objective value."""
    trial.set_user_attr(OUTCOME, outcome)
    if outcome == "completed":
        study.tell(trial, value)
    elif outcome == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
