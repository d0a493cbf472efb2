"""The Optuna storage as the harness opens it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import optuna

from conftest import TINY_STUDY, write_study
from dlbench.harness import storage
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study


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


def test_a_trial_claimed_moments_ago_is_not_reaped_before_its_pid_is_written(
    workdir: Path,
) -> None:
    """claim writes the host, then the pid: another worker's reap in between must not
    take the half-written owner for a dead one (it did, and failed a live worker's cell)."""
    spec = load_study(write_study(workdir, TINY_STUDY))
    study = storage.open_study(spec.name, spec.objective.direction)
    storage.pending(study, expand(spec))
    trial = study.ask()
    trial.set_user_attr(storage.HOST, socket.gethostname())  # ...and no pid yet
    assert storage.reap(study) == []
    assert study.get_trials()[trial.number].state == optuna.trial.TrialState.RUNNING
