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
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from conftest import TINY_STUDY, write_study
from dlbench.harness import storage
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study
from dlbench.records import CELL, ERROR


def test_the_journal_lock_of_a_killed_worker_can_be_freed(workdir: Path) -> None:
    """Optuna frees a lock left by a dead process after its grace period, judged by the
    lock symlink's target; that target must resolve from the lock's folder, which a
    relative journal path (runs/...) does not."""
    study = storage.open_study("locked", "maximize")
    lock = storage.store_of(study)._backend._lock  # Optuna's own internals, in a test only
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


# -- params: what a plain Optuna client sees (harness.params) ------------------------------
AXES_STUDY = """\
name: axes
problem: digits_mlp
fixed: {init: he_normal, width: 16, depth: 1, epochs: 2}
grid:
  optimizer: [sgd, adam]
  lr: [0.1, 0.01, 0.001]
  batch_size: [64, 128]
seeds: [0, 1]
"""


def _plain_client(name: str, path: Path) -> optuna.Study:
    """The study as ``optuna.load_study`` on the journal file sees it (no dlbench)."""
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))


def _sweep(study: optuna.Study, cells: list) -> list[optuna.trial.Trial]:
    """pending + claim until none is left, each told a value that the optimizer decides."""
    storage.pending(study, cells)
    claimed = []
    while (trial := storage.claim(study)) is not None:
        value = {"sgd": 0.5, "adam": 0.8}[trial.params["optimizer"]] + trial.params["lr"]
        storage.record(trial, "completed", value)
        storage.tell(study, trial, "completed", value)
        claimed.append(trial)
    return claimed


def test_a_swept_journal_shows_a_plain_optuna_client_every_axis_and_the_seed(
    workdir: Path,
) -> None:
    spec = load_study(write_study(workdir, AXES_STUDY))
    cells = expand(spec)
    study = storage.open_study(spec.name, spec.objective.direction)
    claimed = _sweep(study, cells)
    assert len(claimed) == len(cells) == 2 * 3 * 2 * 2
    plain = _plain_client(spec.name, storage.journal_path(spec.name))
    trials = plain.get_trials(states=(TrialState.COMPLETE,))
    by_id = {cell.id: cell for cell in cells}
    for trial in trials:
        cell = by_id[trial.user_attrs[CELL]]
        assert trial.params == {
            "optimizer": cell.arm["optimizer"],
            "lr": float(cell.arm["lr"]),
            "batch_size": int(cell.arm["batch_size"]),
            "seed": cell.seed,
        }
        assert trial.distributions == {
            "optimizer": CategoricalDistribution(["sgd", "adam"]),  # study order
            "lr": FloatDistribution(0.001, 0.1, log=True),  # a decade or more: log
            "batch_size": IntDistribution(64, 128),
            "seed": IntDistribution(0, 1),
        }
    frame = plain.trials_dataframe()
    assert {f"params_{p}" for p in ("optimizer", "lr", "batch_size", "seed")} <= set(frame)
    assert frame["params_lr"].dtype.kind == "f" and frame["params_batch_size"].dtype.kind == "i"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    importances = optuna.importance.get_param_importances(plain, evaluator=evaluator)
    assert set(importances) == {"optimizer", "lr", "batch_size", "seed"}
    assert max(importances, key=importances.get) == "optimizer"  # it decides the value


def test_claims_duplicate_and_fresh_trial_paths_keep_the_params_consistent(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_study(write_study(workdir, TINY_STUDY))
    cells = expand(spec)
    study = storage.open_study(spec.name, spec.objective.direction)
    storage.pending(study, cells)
    with monkeypatch.context() as race:  # a second worker enqueued them all at once
        race.setattr(storage, "attempts_by_cell", lambda study: {})
        storage.pending(study, cells)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 2 * len(cells)
    claimed = [storage.claim(study) for _ in cells]
    assert sorted(t.user_attrs[CELL] for t in claimed) == sorted(c.id for c in cells)
    assert all(set(t.params) == {"optimizer", "seed"} for t in claimed)
    # The last waiting trial is taken by another worker between claim's look and its ask().
    other = _plain_client(spec.name, storage.journal_path(spec.name))
    left = study.get_trials(states=(TrialState.WAITING,))
    ask = study.ask

    def racing_ask(*args, **kwargs):
        while other.get_trials(states=(TrialState.WAITING,)):
            taken = other.ask()  # a duplicate: given up by whoever took it
            assert set(taken.params) == {"optimizer", "seed"}  # a plain ask() gets params
            other.tell(taken, state=TrialState.FAIL)
        return ask(*args, **kwargs)

    with monkeypatch.context() as race:
        race.setattr(study, "ask", racing_ask)
        assert left and storage.claim(study) is None
    fresh = study.get_trials()[-1]
    assert fresh.state == TrialState.FAIL and fresh.params == {} and CELL not in fresh.user_attrs
    for i, trial in enumerate(claimed):
        storage.record(trial, "completed", 0.5 + 0.1 * i)
        storage.tell(study, trial, "completed", 0.5 + 0.1 * i)
    released = [t for t in study.get_trials() if t.user_attrs.get(ERROR) == "duplicate"]
    assert all(set(t.params) == {"optimizer", "seed"} for t in released)
    assert storage.pending(study, cells) == []
    plain = _plain_client(spec.name, storage.journal_path(spec.name))
    assert len(plain.trials_dataframe()) == len(plain.trials)
    assert set(optuna.importance.get_param_importances(plain)) == {"optimizer", "seed"}


def test_a_journal_whose_trials_have_no_params_still_resumes(workdir: Path) -> None:
    """A study an earlier dlbench started (``enqueue_trial({})``): its settled cells stay
    settled, the cells it queued are run, and the cells queued now carry params."""
    spec = load_study(write_study(workdir, TINY_STUDY))
    cells = expand(spec)
    study = storage.open_study(spec.name, spec.objective.direction)
    for cell in cells[:3]:
        study.enqueue_trial({}, user_attrs={CELL: cell.id})
    done = study.ask()
    storage.record(done, "completed", 0.7)
    storage.tell(study, done, "completed", 0.7)
    interrupted = study.ask()
    storage.release(study, interrupted)  # its worker was killed: the cell is run again
    todo = storage.pending(study, cells)
    assert [c.id for c in todo] == [c.id for c in cells[1:]]
    ran = []
    while (trial := storage.claim(study)) is not None:
        ran.append(trial.user_attrs[CELL])
        storage.record(trial, "completed", 0.6)
        storage.tell(study, trial, "completed", 0.6)
    assert sorted(ran) == sorted(c.id for c in cells[1:])
    assert storage.pending(study, cells) == []
    plain = _plain_client(spec.name, storage.journal_path(spec.name))
    settled = {t.user_attrs[CELL]: t for t in plain.get_trials(states=(TrialState.COMPLETE,))}
    assert settled[cells[0].id].params == {}  # what the earlier dlbench recorded
    assert settled[cells[1].id].params == {"optimizer": cells[1].arm["optimizer"], "seed": 0}
    assert set(settled[cells[3].id].params) == {"optimizer", "seed"}
    assert "params_optimizer" in plain.trials_dataframe()
    # Importance over the trials that have the params (those without make no search space).
    found = optuna.importance.get_param_importances(plain, params=["optimizer", "seed"])
    assert set(found) == {"optimizer", "seed"}


def test_a_changed_grid_keeps_distributions_a_strict_storage_accepts(workdir: Path) -> None:
    """An RDB storage refuses a param whose distribution does not match earlier trials';
    a study re-run with a seed added, a value added to a numeric axis and an optimizer
    label renamed must still enqueue (the renamed axis is left off its new trials)."""
    url = f"sqlite:///{workdir / 'optuna.db'}"
    first = load_study(write_study(workdir, AXES_STUDY))
    study = storage.open_study(first.name, first.objective.direction, url)
    _sweep(study, expand(first))
    changed = (
        AXES_STUDY.replace("seeds: [0, 1]", "seeds: [0, 1, 2]")
        .replace("[0.1, 0.01, 0.001]", "[0.3, 0.1, 0.01, 0.001]")
        .replace("[sgd, adam]", "[sgd, {name: adam, label: adam2}]")  # the same cells
    )
    second = load_study(write_study(workdir, changed, "changed.yaml"))
    study = storage.open_study(second.name, second.objective.direction, url)
    todo = storage.pending(study, expand(second))  # raised ValueError before the fit
    assert len(todo) == 2 * 4 * 2 * 3 - 24  # the renamed cells are settled already
    new = study.get_trials(states=(TrialState.WAITING,))
    assert new and all("optimizer" not in t.params for t in new)
    assert {t.distributions["seed"] for t in new} == {IntDistribution(0, 2)}
    assert {t.distributions["lr"] for t in new} == {FloatDistribution(0.001, 0.3, log=True)}
    trial = storage.claim(study)
    assert trial is not None and set(trial.params) == {"lr", "batch_size", "seed"}


def test_a_search_studys_trials_carry_the_cells_axes_and_seed(workdir: Path) -> None:
    text = TINY_STUDY + "search: {trials: 2, params: {momentum: {low: 0.0, high: 0.9}}}\n"
    spec = load_study(write_study(workdir, text))
    study = storage.open_study(spec.name, spec.objective.direction)
    storage.pending(study, expand(spec))
    trials = study.get_trials()
    assert len(trials) == 2 * 2 * 2  # optimizers x seeds x search trials
    assert {(t.params["optimizer"], t.params["seed"]) for t in trials} == {
        (o, s) for o in ("sgd", "adam") for s in (0, 1)
    }
