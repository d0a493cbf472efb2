"""The Optuna storage as the harness opens it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from conftest import TINY_STUDY, write_study
from dlbench.harness import storage
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study
from dlbench.records import CELL


def test_the_journal_lock_of_a_killed_worker_can_be_freed(workdir: Path) -> None:
    """Optuna frees a lock left by a dead process after its grace period, judged by the
    lock symlink's target; that target must resolve from the lock's folder, which a
    relative journal path (runs/...) does not."""
    study = storage.open_study("locked", "maximize")
    lock = study._storage._backend._lock
    lock.acquire()  # as a worker writing to the journal when it is killed
    try:
        link = Path(lock._lock_file)
        assert link.is_symlink() and link.resolve() == storage.journal_path("locked").resolve()
        assert os.path.exists(link), "the lock's target resolves (os.stat follows the link)"
    finally:
        lock.release()


def _half_claimed(folder: Path) -> tuple[optuna.Study, optuna.trial.Trial]:
    """A trial as claim leaves it between writing the host and the pid."""
    spec = load_study(write_study(folder, TINY_STUDY))
    study = storage.open_study(spec.name, spec.objective.direction)
    storage.pending(study, expand(spec))
    trial = study.ask()
    trial.set_user_attr(storage.HOST, socket.gethostname())
    return study, trial


def test_a_trial_claimed_moments_ago_is_not_reaped_before_its_pid_is_written(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claim writes the host, then the pid: another worker's reap in between must not
    take the half-written owner for a dead one (it did, and failed a live worker's cell)."""
    monkeypatch.setattr(storage, "_WITHOUT_PID", {})
    study, trial = _half_claimed(workdir)
    assert storage.reap(study) == []
    assert study.get_trials()[trial.number].state == optuna.trial.TrialState.RUNNING


def test_a_trial_left_without_a_pid_is_failed_once_the_grace_has_passed(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_WITHOUT_PID", {})
    monkeypatch.setattr(storage, "UNOWNED_GRACE", 0.05)
    study, trial = _half_claimed(workdir)
    storage.reap(study)  # the first sight starts the clock
    assert study.get_trials()[trial.number].state == optuna.trial.TrialState.RUNNING
    time.sleep(0.1)
    assert storage.reap(study) == []  # no MLflow run to close: it never got that far
    assert study.get_trials()[trial.number].state == optuna.trial.TrialState.FAIL
    storage.pending(study, expand(load_study(workdir / "study.yaml")))
    cell = trial.user_attrs[CELL]
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs[CELL] for t in waiting].count(cell) == 1  # enqueued again


def test_a_stale_lock_of_an_earlier_dlbench_is_removed(workdir: Path) -> None:
    """Earlier versions locked the journal with a relative symlink, which Optuna waits on
    forever; opening the study removes it (in a child process: a hang must not be ours)."""
    journal = storage.journal_path("locked")
    journal.parent.mkdir(parents=True)
    Path(f"{journal}.lock").symlink_to(journal)  # relative, as they left it
    code = "from dlbench.harness import storage; storage.open_study('locked', 'maximize')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert not Path(f"{journal}.lock").is_symlink()
