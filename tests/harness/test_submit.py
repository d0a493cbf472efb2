"""`dlbench submit`: a job array of ordinary sweeps through submitit, on a real one-node
Slurm cluster (slow) and as local jobs; what a cluster cannot share is refused at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.cli import main
from dlbench.harness import storage
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study
from dlbench.harness.tracking import local_server
from dlbench.records import CELL, OUTCOME, ROLE
from postgres_server import create_database

SUBMIT = [sys.executable, "-m", "dlbench.cli", "submit"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--slurm"], "--storage: the jobs of a cluster share one Optuna database"),
        (
            ["--slurm", "--storage", "sqlite:///optuna.db"],
            "not sqlite:///optuna.db",
        ),
        (
            ["--slurm", "--storage", "postgresql://u@db/optuna"],
            "--tracking-uri: sqlite:///mlflow.db is a file on this machine",
        ),
        (["--local", "--partition", "gpu"], "--partition: is a Slurm option"),
        (["--local", "--nodes", "2", "--storage", "sqlite:///o.db"], "--storage: SQLite locks"),
    ],
)
def test_what_a_cluster_cannot_share_is_refused_and_nothing_is_written(
    workdir: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    path = write_study(workdir, TINY_STUDY)
    assert main(["submit", str(path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dlbench: error: ") and expected in err and "\n" not in err
    assert list(workdir.iterdir()) == [path]  # nothing written: no runs/, no store


def test_submit_needs_slurm_or_local(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(workdir, TINY_STUDY)
    with pytest.raises(SystemExit) as exit_:
        main(["submit", str(path)])
    assert exit_.value.code == 2 and "one of the arguments --slurm --local is required" in (
        capsys.readouterr().err
    )


def test_local_jobs_run_the_study_once(workdir: Path) -> None:
    """`dlbench submit --local --nodes 2` on a fresh clone: two jobs, the default stores."""
    path = write_study(workdir, TINY_STUDY)
    done = subprocess.run(
        [*SUBMIT, str(path), "--local", "--nodes", "2", "--tracking-uri", uri_of(workdir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_exactly_once(MlflowClient(uri_of(workdir)), path)
    status = subprocess.run(
        [sys.executable, "-m", "dlbench.cli", "status", str(path)], capture_output=True, text=True
    )
    assert "tiny: submitted jobs" in status.stdout and status.stdout.count("local") == 2


@pytest.mark.slow
def test_a_slurm_job_array_completes_every_cell_once_when_a_job_is_cancelled(
    workdir: Path, postgres_url: str, slurm_env: dict[str, str]
) -> None:
    """Two array jobs on a one-node cluster, Optuna on PostgreSQL, MLflow on a server on
    loopback; `scancel` the job training a cell: the other runs that cell again, every
    cell ends with exactly one completed run and nothing is left RUNNING."""
    optuna_url = create_database(postgres_url, "optuna_submit")
    backend = create_database(postgres_url, "mlflow_submit")
    artifacts = ("--default-artifact-root", str(workdir / "artifacts"))
    with local_server(backend, workdir / "mlflow-server.log", *artifacts) as tracking:
        # Cells of about 10 s: scancel sends SIGTERM, which submitit lets pass, and SIGKILL
        # KillWait (2 s here, 30 s by default) later; the cell must still be training then.
        path = write_study(workdir, TINY_STUDY.replace("epochs: 2", "epochs: 1200"), "tiny.yaml")
        command = [
            *SUBMIT, str(path), "--slurm", "--nodes", "2", "--cpus-per-task", "1", "--time",
            "10", "--wait", "--stack", "1", "--heartbeat", "2", "--storage", optuna_url,
            "--tracking-uri", tracking,
        ]  # fmt: skip
        submitted = subprocess.Popen(
            command, env=slurm_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        study = _study_when_created(optuna_url)
        victim = _running_attempt(study)
        job = _slurm_job_of(int(victim.user_attrs[storage.PID]))
        subprocess.run(["scancel", job], env=slurm_env, check=True)
        out, err = submitted.communicate(timeout=600)
        assert submitted.returncode == 0, (out + err)[-4000:]

        client = MlflowClient(tracking)
        _assert_exactly_once(client, path)
        runs = _cell_runs(client)
        killed = next(r for r in runs if r.info.run_id == victim.user_attrs[storage.MLFLOW_RUN])
        assert killed.info.status == "KILLED", "the cancelled job's cell was still training"
        assert all(r.info.status != "RUNNING" for r in runs)
    status = subprocess.run(
        [sys.executable, "-m", "dlbench.cli", "status", str(path), "--storage", optuna_url],
        env=slurm_env,
        capture_output=True,
        text=True,
    )
    assert "tiny: submitted jobs" in status.stdout and status.stdout.count("slurm") == 2


@pytest.mark.slow
def test_a_preempted_slurm_job_is_requeued_and_finishes_the_study(
    workdir: Path, postgres_url: str, slurm_env: dict[str, str]
) -> None:
    """Preempt the one job mid-cell as Slurm does (SIGTERM, then submitit's USR2): it
    checkpoints, requeues itself, and its second run finishes the study exactly once."""
    optuna_url = create_database(postgres_url, "optuna_preempt")
    backend = create_database(postgres_url, "mlflow_preempt")
    artifacts = ("--default-artifact-root", str(workdir / "artifacts"))
    with local_server(backend, workdir / "mlflow-server.log", *artifacts) as tracking:
        path = write_study(workdir, TINY_STUDY.replace("epochs: 2", "epochs: 40"), "tiny.yaml")
        command = [
            *SUBMIT, str(path), "--slurm", "--cpus-per-task", "1", "--time", "10", "--wait",
            "--stack", "1", "--storage", optuna_url, "--tracking-uri", tracking,
        ]  # fmt: skip
        submitted = subprocess.Popen(
            command, env=slurm_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        victim = _running_attempt(_study_when_created(optuna_url))
        job = _slurm_job_of(int(victim.user_attrs[storage.PID]))
        for signal in ("TERM", "USR2"):  # what preemption sends (submitit's Job._interrupt)
            subprocess.run(["scancel", "--signal", signal, job], env=slurm_env, check=True)
        out, err = submitted.communicate(timeout=600)
        assert submitted.returncode == 0, (out + err)[-4000:]
        _assert_exactly_once(MlflowClient(tracking), path)
        assert all(r.info.status != "RUNNING" for r in _cell_runs(MlflowClient(tracking)))
    logs = "".join(p.read_text() for p in (workdir / "runs" / "tiny" / "submitit").glob("*.out"))
    assert f"Requeued job {job}" in logs and logs.count("dlbench job 0:") == 2


def _cell_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if r.data.tags[ROLE] == "cell"]


def _assert_exactly_once(client: MlflowClient, path: Path) -> None:
    completed = [r for r in _cell_runs(client) if r.data.tags.get(OUTCOME) == "completed"]
    assert sorted(r.data.tags[CELL] for r in completed) == sorted(
        c.id for c in expand(load_study(path))
    ), "every cell completed exactly once"


def _study_when_created(url: str, timeout: float = 120) -> optuna.Study:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (study := storage.existing_study("tiny", url)) is not None:
            return study
        time.sleep(0.5)
    raise AssertionError("dlbench submit did not create the study")


def _running_attempt(study: optuna.Study, timeout: float = 180) -> optuna.trial.FrozenTrial:
    """A cell attempt a job is training, with its MLflow run open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            if storage.MLFLOW_RUN in trial.user_attrs:
                return trial
        time.sleep(0.2)
    raise AssertionError("no job started a cell")


def _slurm_job_of(pid: int) -> str:
    """The job a process of this machine runs in: an array's task as ``<array>_<index>``
    (scancel of the first task's own SLURM_JOB_ID, the array's id, would cancel them all)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    assert "SLURM_JOB_ID" in found, f"process {pid} is not in a Slurm job"
    if "SLURM_ARRAY_JOB_ID" in found:
        return f"{found['SLURM_ARRAY_JOB_ID']}_{found['SLURM_ARRAY_TASK_ID']}"
    return found["SLURM_JOB_ID"]
