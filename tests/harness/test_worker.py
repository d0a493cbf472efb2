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
from optuna.trial import Trial

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.harness import storage, worker
from dlbench.harness.grid import expand
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import StudySpec, load_study
from dlbench.harness.sweep import run_study
from dlbench.harness.tracking import Tracker, local_server
from dlbench.records import CELL, ERROR, OBJECTIVE_METRIC, OUTCOME, ROLE
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


def _two_workers(folder: Path) -> tuple[Path, subprocess.Popen]:
    """`dlbench run` of STUDY with two CPU worker processes, its stderr piped."""
    path = write_study(folder, STUDY, "tiny.yaml")
    command = _dlbench(path, folder, "--devices", "cpu", "--workers", "2")
    return path, subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def test_two_workers_cover_the_grid_exactly_once_when_one_is_killed(workdir: Path) -> None:
    path, process = _two_workers(workdir)
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
    run_study(load_study(path), RunOptions(tracking=uri_of(alone), devices="cpu"))
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
        completed = [r for r in runs if r.data.tags.get(OUTCOME) == "completed"]
        assert sorted(r.data.tags[CELL] for r in completed) == sorted(
            c.id for c in expand(load_study(path))
        ), "every cell completed exactly once"
        killed = next(r for r in runs if r.info.run_id == victim.user_attrs[storage.MLFLOW_RUN])
        assert killed.info.status == "KILLED" and "interrupted" in killed.data.tags[ERROR]
        assert all(r.info.status != "RUNNING" for r in runs)


def _dead_pid() -> int:
    """A pid that no longer runs: the killed worker's."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def _work(spec: StudySpec, folder: Path) -> None:
    """One in-process worker on ``spec`` until every cell is settled."""
    job = worker.Job(
        study=spec.source, smoke=False, overrides=[],
        options=RunOptions(tracking=uri_of(folder), heartbeat=0),
        accelerator="cpu", devices=None, threads=1, retry_before=0, workers=1,
    )  # fmt: skip
    worker.work(spec, job)


def _attempt(folder: Path, text: str) -> tuple[StudySpec, optuna.Study, Trial, str]:
    """A study written to ``folder``, one of its cells claimed and its MLflow run started
    (not yet recorded on the trial): the state a worker leaves at that point."""
    spec = load_study(write_study(folder, text))
    cells = {cell.id: cell for cell in expand(spec)}
    study = storage.open_study(spec.name, spec.objective.direction)
    storage.pending(study, cells.values())
    trial = storage.claim(study)
    cell = cells[trial.user_attrs[CELL]]
    return spec, study, trial, worker._start(study, Tracker(spec, uri_of(folder)), trial, cell, {})


def test_an_attempt_killed_after_recording_its_outcome_is_concluded_not_redone(
    workdir: Path,
) -> None:
    """The window after the commit point (the outcome on the trial), before the MLflow run
    ends and Optuna is told: the next worker finishes both with the recorded outcome, and
    the cell is not run again."""
    spec, study, trial, run_id = _attempt(workdir, STUDY)
    trial.set_user_attr(storage.MLFLOW_RUN, run_id)
    trial.set_user_attr(storage.PID, _dead_pid())
    storage.record(trial, "completed", 0.75, seconds=1.0)  # ...and it died here

    _work(spec, workdir)
    (settled,) = [t for t in study.get_trials() if t.number == trial.number]
    assert settled.state == optuna.trial.TrialState.COMPLETE and settled.value == 0.75
    run = MlflowClient(uri_of(workdir)).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags[OUTCOME] == "completed"
    assert run.data.metrics[OBJECTIVE_METRIC] == 0.75
    completed = _assert_exactly_once(workdir, Path(spec.source))
    assert run_id in {r.info.run_id for r in completed}  # not trained again


def test_the_last_cell_killed_after_its_outcome_is_concluded_by_the_next_sweep(
    workdir: Path,
) -> None:
    """As above, for a study's last cell: the re-run has no cell to train and starts no
    worker, so the launcher concludes the attempt itself."""
    one_cell = TINY_STUDY.replace("seeds: [0, 1]", "seeds: [0]").replace(
        "    - {name: adam, lr: 0.01}\n", ""
    )
    spec, study, trial, run_id = _attempt(workdir, one_cell)
    assert len(expand(spec)) == 1
    trial.set_user_attr(storage.MLFLOW_RUN, run_id)
    trial.set_user_attr(storage.PID, _dead_pid())
    storage.record(trial, "completed", 0.5)  # ...and it died here

    assert (
        run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu")) == []
    )  # nothing trained
    run = MlflowClient(uri_of(workdir)).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags[OUTCOME] == "completed"
    assert study.get_trials()[trial.number].state == optuna.trial.TrialState.COMPLETE


def test_a_run_whose_id_never_reached_its_trial_is_closed_by_the_next_worker(
    workdir: Path,
) -> None:
    """The window between creating a cell's MLflow run and recording its id on the trial
    (a stacked worker records several ids after creating several runs)."""
    spec, _, trial, orphan = _attempt(workdir, TINY_STUDY)
    trial.set_user_attr(storage.PID, _dead_pid())  # ...and its worker died here

    _work(spec, workdir)
    closed = MlflowClient(uri_of(workdir)).get_run(orphan)
    assert closed.info.status == "KILLED" and "stopped" in closed.data.tags[ERROR]
    _assert_exactly_once(workdir, Path(spec.source))


def test_a_run_whose_trial_failed_before_it_was_closed_is_closed_by_the_next_sweep(
    workdir: Path,
) -> None:
    """A reaper killed between failing a dead worker's trial and closing its run."""
    spec, study, trial, run_id = _attempt(workdir, TINY_STUDY)
    storage.release(study, trial)  # ...and the reaper died here

    run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu"))
    closed = MlflowClient(uri_of(workdir)).get_run(run_id)
    assert closed.info.status == "KILLED" and "stopped" in closed.data.tags[ERROR]
    _assert_exactly_once(workdir, Path(spec.source))


def _workers_of(launcher: int) -> list[int]:
    """The worker processes ``launcher`` started (not its MLflow server)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == launcher and b"dlbench.harness.worker" in command:
            found.append(int(entry.name))
    return found


def test_a_sweep_whose_workers_all_die_says_so_and_exits_1(workdir: Path) -> None:
    _, process = _two_workers(workdir)
    _running_attempt()
    for pid in _workers_of(process.pid):
        os.kill(pid, signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 1, err
    assert "every worker stopped" in err.splitlines()[-1] and "cells not run" in err
    runs = _runs(workdir, "tiny")
    assert runs and all(r.info.status != "RUNNING" for r in runs), "no run may stay RUNNING"
