"""Several real worker processes on one machine: exactly-once coverage, kills, determinism."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.harness import storage, worker
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.harness.tracking import Tracker, local_server
from dlbench.records import CELL, ERROR, OUTCOME, ROLE
from postgres_server import create_database

# Four cells long enough (about 2 s each) that a kill lands inside one.
STUDY = TINY_STUDY.replace("epochs: 2", "epochs: 12")


def _dlbench(path: Path, folder: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dlbench.cli",
        "run",
        str(path),
        "--tracking-uri",
        uri_of(folder),
        *args,
    ]


def _runs(folder: Path, study: str) -> list:
    client = MlflowClient(uri_of(folder))
    experiment = client.get_experiment_by_name(study)
    return [
        r for r in client.search_runs([experiment.experiment_id]) if r.data.tags[ROLE] == "cell"
    ]


def _assert_exactly_once(folder: Path, path: Path) -> list:
    """Every cell has exactly one completed run, and no run is left RUNNING."""
    runs = _runs(folder, "tiny")
    completed = [r for r in runs if r.data.tags.get(OUTCOME) == "completed"]
    assert sorted(r.data.tags[CELL] for r in completed) == sorted(
        c.id for c in expand(load_study(path))
    ), "every cell completed exactly once"
    assert all(r.info.status != "RUNNING" for r in runs), "no run may stay RUNNING"
    return completed


def _running_attempt(
    study: optuna.Study | None = None, timeout: float = 180
) -> optuna.trial.FrozenTrial:
    """Wait for a cell attempt that a worker is training, with its MLflow run open."""
    deadline = time.monotonic() + timeout
    journal = storage.journal_path("tiny")
    while time.monotonic() < deadline:
        if study is not None or journal.exists():
            study = study or storage.open_study("tiny", "maximize")
            for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
                if storage.MLFLOW_RUN in trial.user_attrs:
                    return trial
        time.sleep(0.1)
    raise AssertionError("no worker started a cell")


def test_two_workers_cover_the_grid_exactly_once_when_one_is_killed(workdir: Path) -> None:
    path = write_study(workdir, STUDY, "tiny.yaml")
    process = subprocess.Popen(
        _dlbench(path, workdir, "--devices", "cpu", "--workers", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim = _running_attempt()
    os.kill(int(victim.user_attrs[storage.PID]), signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "a worker exited with code -9" in err  # the launcher says so, and goes on

    completed = _assert_exactly_once(workdir, path)
    killed = [
        r for r in _runs(workdir, "tiny") if r.info.run_id == victim.user_attrs[storage.MLFLOW_RUN]
    ]
    assert killed[0].info.status == "KILLED" and "stopped" in killed[0].data.tags[ERROR]
    assert len({r.data.tags[storage.PID] for r in _runs(workdir, "tiny")}) == 2  # both worked

    # Determinism: the same cells in one in-process worker give the same metrics (to
    # float rounding: two workers stack 2 cells each, one stacks all 4).
    alone = workdir / "alone"
    alone.mkdir()
    os.chdir(alone)
    run_study(load_study(path), tracking=uri_of(alone), devices="cpu")
    by_cell = {r.data.tags[CELL]: r.data.metrics for r in _runs(alone, "tiny")}
    for run in completed:
        for key in ("train/loss", "val/loss", "val/acc", "test/acc"):
            assert run.data.metrics[key] == pytest.approx(
                by_cell[run.data.tags[CELL]][key], rel=1e-5
            ), key


def test_a_killed_multi_worker_run_resumes_with_one_worker(workdir: Path) -> None:
    """Kill -9 the whole run (launcher and workers) mid-cell, then run it again."""
    path = write_study(workdir, STUDY, "tiny.yaml")
    process = subprocess.Popen(
        _dlbench(path, workdir, "--devices", "cpu", "--workers", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _running_attempt()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    result = subprocess.run(
        _dlbench(path, workdir, "--devices", "cpu"), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    _assert_exactly_once(workdir, path)


def test_two_machines_share_postgresql_and_one_dies_mid_cell(
    workdir: Path, postgres_url: str
) -> None:
    """Two `dlbench run`s as if on two machines: Optuna on PostgreSQL, MLflow on a tracking
    server backed by PostgreSQL. Kill one mid-cell; the other retries that cell after the
    missed heartbeats, and the grid completes exactly once."""
    optuna_url = create_database(postgres_url, "optuna_two_machines")
    backend = create_database(postgres_url, "mlflow_two_machines")
    artifacts = ("--default-artifact-root", str(workdir / "artifacts"))
    with local_server(backend, workdir / "mlflow-server.log", *artifacts) as tracking:
        path = write_study(workdir, STUDY, "tiny.yaml")
        machine = [
            sys.executable, "-m", "dlbench.cli", "run", str(path), "--devices", "cpu",
            "--storage", optuna_url, "--tracking-uri", tracking, "--heartbeat", "1",
        ]  # fmt: skip
        first = subprocess.Popen(machine, stderr=subprocess.DEVNULL, start_new_session=True)
        victim = _running_attempt(storage.open_study("tiny", "maximize", optuna_url))
        second = subprocess.Popen(machine, stderr=subprocess.PIPE, text=True)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        _, err = second.communicate(timeout=300)
        assert second.returncode == 0, err

        client = MlflowClient(tracking)
        experiment = client.get_experiment_by_name("tiny")
        runs = [
            r for r in client.search_runs([experiment.experiment_id]) if r.data.tags[ROLE] == "cell"
        ]
        completed = [r for r in runs if r.data.tags[OUTCOME] == "completed"]
        assert sorted(r.data.tags[CELL] for r in completed) == sorted(
            c.id for c in expand(load_study(path))
        ), "every cell completed exactly once"
        killed = next(r for r in runs if r.info.run_id == victim.user_attrs[storage.MLFLOW_RUN])
        assert killed.info.status == "KILLED" and "interrupted" in killed.data.tags[ERROR]
        assert all(r.info.status != "RUNNING" for r in runs)


def test_an_attempt_killed_after_recording_its_outcome_is_concluded_not_redone(
    workdir: Path,
) -> None:
    """The window between writing the outcome and telling Optuna: the next worker's reap
    finishes the attempt with the recorded value, and the cell is not run again."""
    spec = load_study(write_study(workdir, STUDY))
    cells = expand(spec)
    study = storage.open_study(spec.name, spec.objective.direction)
    storage.pending(study, cells)
    trial = storage.claim(study)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: the killed worker
    trial.set_user_attr(storage.PID, dead.pid)
    trial.set_user_attr(storage.VALUE, 0.75)  # what finish() writes before the outcome...
    trial.set_user_attr(OUTCOME, "completed")  # ...and then it died before study.tell
    assert storage.reap(study) == []  # nothing to retry, no MLflow run to close
    (settled,) = [t for t in study.get_trials() if t.number == trial.number]
    assert settled.state == optuna.trial.TrialState.COMPLETE and settled.value == 0.75
    assert storage.objective(settled) == 0.75
    todo = storage.pending(study, cells)
    assert trial.user_attrs[CELL] not in {c.id for c in todo} and len(todo) == len(cells) - 1


def test_a_run_whose_id_never_reached_its_trial_is_closed_by_the_next_worker(
    workdir: Path,
) -> None:
    """The window between creating a cell's MLflow run and recording its id on the trial
    (a stacked worker records several ids after creating several runs)."""
    spec = load_study(write_study(workdir, TINY_STUDY))
    cells = {cell.id: cell for cell in expand(spec)}
    study = storage.open_study(spec.name, spec.objective.direction)
    storage.pending(study, cells.values())
    trial = storage.claim(study)
    tracker = Tracker(spec, uri_of(workdir))
    orphan = worker._start(study, tracker, trial, cells[trial.user_attrs[CELL]], {})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial.set_user_attr(storage.PID, dead.pid)  # ...and its worker died here

    job = worker.Job(
        study=spec.source, smoke=False, overrides=[], storage=None, tracking=uri_of(workdir),
        accelerator="cpu", devices=None, threads=1, retry_before=0, workers=1, heartbeat=0,
    )  # fmt: skip
    worker.work(spec, job)
    closed = MlflowClient(uri_of(workdir)).get_run(orphan)
    assert closed.info.status == "KILLED" and "stopped" in closed.data.tags[ERROR]
    _assert_exactly_once(workdir, Path(spec.source))
