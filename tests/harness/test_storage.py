"""The Optuna storage as the harness opens it."""

from __future__ import annotations

import os
from pathlib import Path

from dlbench.harness import storage


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
