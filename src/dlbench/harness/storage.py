"""The Optuna side of a sweep: one study per study file, one trial per cell attempt.

Cells are enqueued as WAITING trials carrying their cell id; a worker claims one
with ``study.ask()``, which Optuna makes atomic (a trial moves WAITING -> RUNNING
once), and reports the outcome with ``study.tell()``. Finished cells (completed,
diverged, failed, pruned) are never enqueued again, so a finished study re-run does
nothing and an interrupted one picks up where it stopped.

Storage: the journal file (default; safe for several processes on one machine) or
an RDB URL. PostgreSQL/MySQL get Optuna's heartbeats, so a worker on another machine
that dies mid-cell has its cell retried by the others; SQLite is refused for more than
one worker (it locks). An attempt whose worker is gone, by a missed heartbeat or, on
this host, a dead pid, is failed and its cell enqueued again, unless it had recorded its
outcome (``record``), which then stands.
Several workers may enqueue the same cell at once; ``claim`` keeps exactly one attempt
per cell (the lowest-numbered live one), so no cell is run twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import warnings
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage, fail_stale_trials
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState, create_trial
from sqlalchemy.exc import SQLAlchemyError

from dlbench.errors import ConfigError
from dlbench.harness import params
from dlbench.harness.grid import Cell
from dlbench.records import CELL, ERROR, OUTCOME, OUTCOMES, SECONDS, missing_store

RUNS_DIR = Path("runs")
# The databases Optuna's RDB storage is tested on (``--storage`` URL schemes); SQLite is
# for one worker only.
DATABASES = ("postgresql", "mysql", "sqlite")
# Trial user attrs: the cell and outcome under the same names as the MLflow tags,
# plus who claimed the attempt and which MLflow run records it.
HOST, PID = "dlbench.host", "dlbench.pid"
MLFLOW_RUN = "dlbench.mlflow_run"
# On the MLflow run: the attempt's trial number, so a reaper finds the run of a worker
# killed before it could record MLFLOW_RUN on the trial.
OPTUNA_TRIAL = "dlbench.optuna_trial"
# A completed attempt's objective, also kept as an attribute: a worker killed between
# recording the outcome and telling Optuna leaves the value here (``objective``).
VALUE = "dlbench.value"
LIVE = (TrialState.WAITING, TrialState.RUNNING)
STOPPED = "interrupted: the worker running this cell stopped"  # the error of a reaped attempt
# A worker writes a heartbeat this often (seconds) while it trains a cell; one silent
# for GRACE_FACTOR intervals is presumed dead. Cells take seconds to minutes, so 30 s
# costs nothing and a dead worker's cell is retried within two minutes.
HEARTBEAT_INTERVAL = 30
GRACE_FACTOR = 3
UNOWNED_GRACE = 60  # seconds a claimed trial may go without its owner's pid
# (study, trial number) -> when this process's reap first saw that RUNNING trial with no pid
_WITHOUT_PID: dict[tuple[str, int], float] = {}
# The storage each study was opened with: Optuna keeps its own private (``study._storage``).
_STORES: weakref.WeakKeyDictionary[optuna.Study, optuna.storages.BaseStorage] = (
    weakref.WeakKeyDictionary()
)


def journal_path(study: str) -> Path:
    return RUNS_DIR / study / "optuna.journal"


def open_study(
    name: str,
    direction: str,
    storage: str | None = None,
    *,
    workers: int = 1,
    heartbeat: int = HEARTBEAT_INTERVAL,
) -> optuna.Study:
    """Create or load the Optuna study; default storage is the journal file in ``runs/``."""
    store = _storage(name, storage, workers, heartbeat)
    study = optuna.create_study(
        study_name=name, storage=store, direction=direction, load_if_exists=True
    )
    _STORES[study] = store
    return study


def existing_study(name: str, storage: str | None = None) -> optuna.Study | None:
    """The study if its storage holds it, else None; asking creates no file, table or
    study (``dlbench status`` of a study never run)."""
    if storage is None and not journal_path(name).exists():
        return None
    if storage is not None and missing_store(storage) is not None:
        return None
    store = _storage(name, storage, 1, HEARTBEAT_INTERVAL)
    try:
        study = optuna.load_study(study_name=name, storage=store)
    except KeyError:  # the storage exists, without this study
        return None
    _STORES[study] = store
    return study


def store_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` was opened with here (``open_study``, ``existing_study``):
    its public methods mark abandoned trials and record heartbeats."""
    return _STORES[study]


def _trial_id(study: optuna.Study, trial: FrozenTrial | Trial) -> int:
    """The storage's id of ``trial``, through the storage's public lookups."""
    store = store_of(study)
    study_id = store.get_study_id_from_name(study.study_name)
    return store.get_trial_id_from_study_id_trial_number(study_id, trial.number)


def _storage(
    name: str, url: str | None, workers: int, heartbeat: int
) -> optuna.storages.BaseStorage:
    if url is None:
        path = journal_path(name).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Absolute: Optuna's lock is a symlink to this path, and it frees a lock left by a
        # killed worker (after 30 s) only if that link resolves; a relative one never
        # does, and Optuna would wait on it forever: such a lock was left by an earlier
        # dlbench, which opened the journal by a relative path.
        lock = Path(f"{path}.lock")
        if lock.is_symlink() and not Path(os.readlink(lock)).is_absolute():
            logging.getLogger(__name__).warning("removing a stale journal lock: %s", lock)
            lock.unlink(missing_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite"):
        if workers > 1:
            raise ConfigError(
                f"SQLite locks under {workers} concurrent workers; leave --storage out "
                "(journal file, one machine) or use postgresql://... (several machines)",
                key="--storage",
            )
        return RDBStorage(url)
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else None
    if scheme not in DATABASES:
        raise ConfigError(
            f"must be a database URL like postgresql://user@host/db (schemes: "
            f"{', '.join(DATABASES)}; leave it out for the journal file), got {url!r}",
            key="--storage",
        )
    try:
        with warnings.catch_warnings():  # heartbeats: experimental since Optuna 2.9, and stable
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url, heartbeat_interval=heartbeat, grace_period=heartbeat * GRACE_FACTOR
            )
    except (ImportError, SQLAlchemyError) as err:  # no driver, no server, bad credentials
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise ConfigError(f"cannot open {url!r}: {reason}", key="--storage") from None


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
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A killed worker nobody reaped yet (its launcher died too, in a container whose
    init does not reap): it still has a pid but will never finish its cell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # not Linux, or gone meanwhile
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def worker_tags() -> dict[str, str]:
    """Who is working: recorded on trials and MLflow runs alike, read by ``worker_alive``."""
    return {HOST: socket.gethostname(), PID: str(os.getpid())}


def reap(study: optuna.Study) -> list[tuple[FrozenTrial, str]]:
    """Settle every attempt whose worker is gone; returns them with the reason, so their
    MLflow runs can be closed too (``Tracker.abandon_attempt``). One that recorded its
    outcome keeps it (the journal concludes its trial; a database storage fails it, and
    ``finished`` reads the outcome); the others fail, and ``pending`` enqueues their
    cells again.

    A database storage knows a worker is gone by its missed heartbeats (the workers may
    be on other machines, where a pid means nothing); the journal, on one machine, by
    its dead pid. Either way, an attempt that never recorded its owner's pid is gone
    after ``UNOWNED_GRACE`` seconds (killed between ``ask()`` and writing it).
    """
    gone = []
    beats = bool(_heartbeat_interval(study))
    if beats:
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        with warnings.catch_warnings():  # see _storage
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
        gone = [
            (t, "interrupted: the worker running this cell stopped sending heartbeats")
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if t.number not in before and CELL in t.user_attrs
        ]
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if PID not in attrs:
            # Claimed moments ago (claim writes the host, then the pid), or its worker
            # died in between or before (a fresh trial from ask() has no cell either): it
            # has no MLflow run yet, and only time tells the two apart. Time as this
            # process saw it: a trial's start is another machine's clock.
            seen = _WITHOUT_PID.setdefault((study.study_name, trial.number), time.monotonic())
            if time.monotonic() - seen > UNOWNED_GRACE:
                release(study, trial)
            continue
        if beats or worker_alive(attrs.get(HOST), attrs[PID]):
            continue
        if OUTCOME in attrs:
            # Killed after recording its outcome: finish it (and, by the caller, its run).
            tell(study, trial.number, attrs[OUTCOME], attrs.get(VALUE))
            gone.append((trial, "concluded: the worker stopped after recording the outcome"))
        else:
            release(study, trial)
            gone.append((trial, STOPPED))
    return gone


def _heartbeat_interval(study: optuna.Study) -> int | None:
    store = store_of(study)
    return store.get_heartbeat_interval() if isinstance(store, RDBStorage) else None


def release(study: optuna.Study, trial: FrozenTrial | Trial, reason: str = "interrupted") -> None:
    """Mark an abandoned attempt FAIL (outcome unset), so its cell is enqueued again."""
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        store, trial_id = store_of(study), _trial_id(study, trial)
        store.set_trial_user_attr(trial_id, ERROR, reason)
        store.set_trial_state_values(trial_id, TrialState.FAIL)


def finished(trial: FrozenTrial, retry_before: int = 0) -> bool:
    """Whether ``trial`` settled its cell; failures numbered below ``retry_before`` do not."""
    outcome = trial.user_attrs.get(OUTCOME)
    return outcome in OUTCOMES and not (outcome == "failed" and trial.number < retry_before)


def attempts_by_cell(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """Every attempt so far, grouped by cell id, in trial order."""
    by_cell: dict[str, list[FrozenTrial]] = {}
    for trial in study.get_trials(deepcopy=False):
        if CELL in trial.user_attrs:
            by_cell.setdefault(trial.user_attrs[CELL], []).append(trial)
    return by_cell


def unsettled(study: optuna.Study, cells: Iterable[Cell], retry_before: int = 0) -> list[Cell]:
    """The cells no attempt has settled yet (``finished``)."""
    return _unsettled(attempts_by_cell(study), cells, retry_before)


def _unsettled(
    by_cell: dict[str, list[FrozenTrial]], cells: Iterable[Cell], retry_before: int
) -> list[Cell]:
    return [
        cell
        for cell in cells
        if not any(finished(t, retry_before) for t in by_cell.get(cell.id, []))
    ]


def _enqueue(study: optuna.Study, cell_id: str, values: params.Params) -> None:
    """A WAITING trial for the cell, born with its params: ``ask()`` keeps them, so the
    trial has them from the start (``enqueue_trial`` would only fix values for a later
    ``suggest_*``), and claiming it costs no extra writes."""
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            params={name: value for name, (value, _) in values.items()},
            distributions={name: distribution for name, (_, distribution) in values.items()},
            user_attrs={CELL: cell_id},
        )
    )


def pending(study: optuna.Study, cells: Iterable[Cell], retry_before: int = 0) -> list[Cell]:
    """Enqueue every unsettled cell with no waiting or running attempt; return unsettled cells.

    Each trial carries the cell's grid axes and seed as params (``params.space``); pass
    every cell of the study, as the params' distributions are drawn from them."""
    cells = list(cells)
    by_cell = attempts_by_cell(study)
    todo = _unsettled(by_cell, cells, retry_before)
    if not todo:
        return todo
    space = params.space(study, cells)
    for cell in todo:
        if not any(t.state in LIVE for t in by_cell.get(cell.id, [])):
            _enqueue(study, cell.id, params.of(cell, space))
    return todo


def claim(study: optuna.Study, retry_before: int = 0) -> Trial | None:
    """The next waiting cell's trial, now RUNNING and owned by this process; None when none.

    A trial whose cell is already settled, or has a live attempt numbered lower (two
    workers enqueued it at once), is dropped: exactly one attempt per cell runs.
    """
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        with warnings.catch_warnings():  # we beat ourselves (``heartbeat``), not optimize()
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
            trial = study.ask()
        if _heartbeat_interval(study):  # at once: a trial with no heartbeat is never reaped
            store_of(study).record_heartbeat(_trial_id(study, trial))
        if CELL not in trial.user_attrs:
            # Another worker took the last waiting trial first and ask() made a fresh one.
            study.tell(trial, state=TrialState.FAIL)
            return None
        for key, value in worker_tags().items():  # the pid last: it marks the trial owned
            trial.set_user_attr(key, value)
        siblings = [
            t
            for t in attempts_by_cell(study).get(trial.user_attrs[CELL], [])
            if t.number != trial.number
        ]
        if any(
            finished(t, retry_before) or (t.state in LIVE and t.number < trial.number)
            for t in siblings
        ):
            release(study, trial, "duplicate")
            continue
        return trial
    return None


def attempt_number(study: optuna.Study, cell_id: str) -> int:
    """1 + the attempts at ``cell_id`` that got as far as an MLflow run."""
    return 1 + sum(MLFLOW_RUN in t.user_attrs for t in attempts_by_cell(study).get(cell_id, []))


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: Trial) -> Iterator[None]:
    """Record heartbeats for ``trial`` while a cell trains (storages that support them)."""
    store, interval = store_of(study), _heartbeat_interval(study)
    if not interval:
        yield
        return
    trial_id = _trial_id(study, trial)
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                store.record_heartbeat(trial_id)
            except Exception as err:  # a dropped connection: the next beat may get through
                logging.getLogger(__name__).warning("heartbeat of trial %d: %s", trial.number, err)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def record(
    trial: Trial,
    outcome: str,
    value: float | None,
    *,
    seconds: float = 0.0,
    error: str | None = None,
) -> None:
    """Record a cell attempt's outcome on its trial; only ``completed`` carries a value.

    This is the attempt's commit point: the worker ends the MLflow run and tells Optuna
    after it. The outcome is written last, so an attempt that has one has all its
    attributes, and ``reap`` finishes both for a worker that died after this."""
    trial.set_user_attr(SECONDS, round(seconds, 3))
    if error:
        trial.set_user_attr(ERROR, error[:2000])
    if value is not None:
        trial.set_user_attr(VALUE, value)
    trial.set_user_attr(OUTCOME, outcome)


def tell(study: optuna.Study, trial: Trial | int, outcome: str, value: float | None) -> None:
    """Finish a recorded attempt's trial, once: two reapers may both conclude it, and the
    journal reports the second one's write only when it replays it."""
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        if outcome == "completed":
            study.tell(trial, value, skip_if_finished=True)
        else:
            state = TrialState.PRUNED if outcome == "pruned" else TrialState.FAIL
            study.tell(trial, state=state, skip_if_finished=True)


def objective(trial: FrozenTrial) -> float | None:
    """A settled attempt's objective (None unless completed), also when its worker died
    between recording the outcome and telling Optuna."""
    return trial.value if trial.value is not None else trial.user_attrs.get(VALUE)
