"""The MLflow side of a sweep: the records reports and users' notebooks read.

experiment = study name; one parent run per study (tag ``dlbench.role=study``) and
one child run per cell attempt (``mlflow.parentRunId``, ``dlbench.cell``), with every
resolved setting as a param, per-epoch metrics (written by Lightning's MLFlowLogger
at step = epoch), the outcome and the environment as tags.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import lightning
import optuna
import torch
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial
from sqlalchemy import event
from sqlalchemy.engine import Engine

import dlbench
from dlbench import plugins
from dlbench.harness.grid import Cell, refused
from dlbench.harness.spec import StudySpec
from dlbench.harness.storage import (
    HOST,
    LIVE,
    MLFLOW_RUN,
    OPTUNA_TRIAL,
    PID,
    VALUE,
    reap,
    worker_alive,
    worker_tags,
)
from dlbench.harness.ui_view import write_view
from dlbench.records import (
    ARM,
    ATTEMPT,
    AXES,
    CELL,
    CLAIM,
    DIRECTION,
    ERROR,
    LABELS,
    OBJECTIVE,
    OBJECTIVE_METRIC,
    OUTCOME,
    PARENT,
    PLUGINS,
    REFERENCES,
    REFUSED,
    ROLE,
    SEARCH_TRIAL,
    SECONDS,
    SEEDS,
    STACK_SECONDS,
    STUDY,
    SUMMARY,
    TRIALS,
    references_json,
)

EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
SERVER_START_TIMEOUT = 120  # seconds; a first start migrates the database schema


def configure() -> None:
    """What a process that writes runs needs from MLflow; called by the entry points
    (``harness.process.setup``), never on import."""
    # MLflow announces database creation and migrations at INFO: noise at every sweep start.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Against a tracking server MLflow prints "View run ... at: URL" to stdout for every
    # run it closes: hundreds of lines through a sweep's progress bar.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow draws a progress bar for every artifact download: one per downstream cell of
    # a transfer study (harness.encoders), through the sweep's own bar.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not event.contains(Engine, "connect", write_ahead_log):
        event.listen(Engine, "connect", write_ahead_log)


def write_ahead_log(connection: Any, _record: Any) -> None:
    """SQLite stores (MLflow's default) in write-ahead-log mode.

    A cell's run costs about 14 commits. In the default rollback-journal mode each one
    syncs the disk, 0.7 ms here; with WAL and ``synchronous=NORMAL`` a commit is 0.01 ms
    (benchmarks/RESULTS.md), and readers such as the MLflow UI no longer block the
    sweep's writes. The database stays consistent through crashes; a power cut can lose
    the last commits. The mode stays with the file, which gets ``-wal``/``-shm``
    companions while in use: copy a store in use with ``sqlite3 mlflow.db ".backup
    copy.db"``, not ``cp``.
    """
    if not isinstance(connection, sqlite3.Connection):
        return
    try:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] not in ("wal", "memory"):
            connection.execute("PRAGMA journal_mode=WAL")  # once per file: it needs a write lock
        connection.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.OperationalError as err:  # read-only or busy: it works as it is, slower
        logging.getLogger(__name__).debug("SQLite store left in its journal mode: %s", err)


@cache
def environment_tags() -> dict[str, str]:
    """Where a run ran: versions, git commit (``+dirty`` with local changes) and device."""
    device = (
        torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    )
    return {
        "dlbench.version": dlbench.__version__,
        "dlbench.git_commit": _git_commit(),
        "dlbench.torch": torch.__version__,
        "dlbench.lightning": lightning.__version__,
        "dlbench.python": platform.python_version(),
        "dlbench.device": device,
    }


def _git_commit() -> str:
    root = Path(dlbench.__file__).resolve().parents[2]
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        # Generated reports are outputs, not code: rendering one does not make the tree dirty.
        changed = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports")
        return commit + ("+dirty" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Tracker:
    """One study's experiment and parent run; creates and closes cell runs.

    The launcher creates (or reopens) the experiment and the parent run up front;
    workers ``attach`` to them, so concurrent workers never race to create either.
    """

    def __init__(self, spec: StudySpec, uri: str, *, attach: bool = False):
        self.uri, self.spec = uri, spec
        self.client = MlflowClient(uri)
        experiment = self.client.get_experiment_by_name(spec.name)
        if attach:
            found = self.client.search_runs(
                [experiment.experiment_id], f"tags.`{ROLE}` = 'study'", max_results=1
            )
            self.experiment_id, self.parent_id = experiment.experiment_id, found[0].info.run_id
            return
        self.experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(spec.name)
        )
        # MLflow 3's UI shows an experiment of unknown kind as a GenAI one (traces, no runs).
        self.client.set_experiment_tag(self.experiment_id, *EXPERIMENT_KIND)
        # The page `dlbench ui STUDY` opens: the cells grouped by arm, the objective charted.
        objective = spec.objective
        write_view(
            self.client, self.experiment_id, list(spec.grid), objective.metric, objective.summary
        )
        self.parent_id = self._parent_run()

    def _parent_run(self) -> str:
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{ROLE}` = 'study'", max_results=1
        )
        tags = {
            ROLE: "study",
            STUDY: self.spec.name,
            "dlbench.problem": ", ".join(self.spec.problems),
            "dlbench.source": self.spec.source,
            "dlbench.source_sha": self.spec.source_sha,
            AXES: ",".join(self.spec.grid),
            OBJECTIVE: self.spec.objective.metric,
            DIRECTION: self.spec.objective.direction,
            SUMMARY: self.spec.objective.summary,
            SEEDS: ",".join(map(str, self.spec.seeds)),
            **{
                LABELS + axis: json.dumps([a.label for a in arms])
                for axis, arms in self.spec.grid.items()
            },
            **({TRIALS: str(self.spec.search.trials)} if self.spec.search else {}),
            CLAIM: self.spec.claim.to_json() if self.spec.claim else "",  # "": no claim (any more)
            REFERENCES: references_json(self.spec.references),  # "[]": none (any more)
            PLUGINS: plugins.to_json(self.spec.plugins),  # "[]": none
            REFUSED: json.dumps(refused(self.spec)),  # "{}": none
            "mlflow.note.content": self.spec.description,
            **environment_tags(),
        }
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=self.spec.name, tags=tags)
        if self.spec.source and Path(self.spec.source).is_file():
            self.client.log_text(run.info.run_id, Path(self.spec.source).read_text(), "study.yaml")
        return run.info.run_id

    def start_cell(self, cell: Cell, attempt: int, extra: dict[str, str] | None = None) -> str:
        """A child run for one attempt at ``cell``, with its params and tags (and ``extra``
        ones); returns its id."""
        tags = {
            **(extra or {}),
            PARENT: self.parent_id,
            ROLE: "cell",
            STUDY: cell.study,
            CELL: cell.grid_id,
            ATTEMPT: str(attempt),
            **({} if cell.trial is None else {SEARCH_TRIAL: str(cell.trial)}),
            **({PLUGINS: plugins.to_json(self.spec.plugins)} if self.spec.plugins else {}),
            AXES: ",".join(cell.arm),
            **{ARM + axis: label for axis, label in cell.arm.items()},
            **environment_tags(),
            **worker_tags(),
            "dlbench.threads": str(torch.get_num_threads()),  # sets a metric's last bits
        }
        run = self.client.create_run(self.experiment_id, run_name=cell.label, tags=tags)
        params = {"problem": cell.problem, "seed": cell.seed, **cell.settings}
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def end_cell(
        self,
        run_id: str,
        outcome: str,
        objective: float | None,
        error: str | None = None,
        *,
        seconds: float | None = None,
        stack_seconds: float | None = None,
    ) -> None:
        """Outcome tag, the objective's value, the cell's cost (``records.SECONDS``; for a
        stacked cell its share, with the stack's wall time) and a terminal status (FAILED
        only for crashes)."""
        tags = [RunTag(OUTCOME, outcome), *([RunTag(ERROR, error[:5000])] if error else [])]
        if seconds is not None:
            tags.append(RunTag(SECONDS, f"{seconds:.3f}"))
        if stack_seconds is not None:
            tags.append(RunTag(STACK_SECONDS, f"{stack_seconds:.3f}"))
        metrics = (
            []
            if objective is None
            else [Metric(OBJECTIVE_METRIC, objective, int(time.time() * 1000), 0)]
        )
        self.client.log_batch(run_id, metrics=metrics, tags=tags)  # one write, not three
        status = "FAILED" if outcome == "failed" else "FINISHED"
        self.client.set_terminated(run_id, status)

    def close_stale(self, study: optuna.Study, reason: str) -> None:
        """Close every cell run left RUNNING whose attempt is over: its trial settled or
        failed (its reaper died before closing the run), or, for a run with no trial in
        this storage, its worker on this host is gone."""
        running = self._running()  # before the trials: a run's trial exists before it
        trials = {str(t.number): t for t in study.get_trials(deepcopy=False)}
        for run in running:
            tags, run_id = run.data.tags, run.info.run_id
            trial = _attempt_of(run_id, trials.get(tags.get(OPTUNA_TRIAL, "")))
            if trial is None:
                if not worker_alive(tags.get(HOST), tags.get(PID)):
                    self.abandon(run_id, reason)
            elif trial.state not in LIVE:
                self._close(run_id, trial, reason)

    def reap(self, study: optuna.Study) -> None:
        """Settle the attempts of workers that are gone (``storage.reap``) and close
        their runs."""
        for gone, reason in reap(study):
            self.abandon_attempt(gone, reason)

    def abandon_attempt(self, trial: FrozenTrial, reason: str) -> None:
        """Close the run of a reaped attempt: the one its trial names, or, if the worker
        died before recording that, the one tagged with its trial number."""
        tagged = self._running(f" and tags.`{OPTUNA_TRIAL}` = '{trial.number}'")
        ids = {run.info.run_id for run in tagged if _attempt_of(run.info.run_id, trial)}
        ids |= {trial.user_attrs[MLFLOW_RUN]} if MLFLOW_RUN in trial.user_attrs else set()
        for run_id in ids:
            self._close(run_id, trial, reason)

    def _running(self, where: str = "") -> list[Run]:
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE}` = 'cell' and attributes.status = 'RUNNING'{where}",
            max_results=10_000,
        )

    def _close(self, run_id: str, trial: FrozenTrial, reason: str) -> None:
        """With the outcome the trial recorded (``storage.record``), else as killed; a
        run that ended meanwhile is left as it is."""
        if self.client.get_run(run_id).info.status != RunStatus.to_string(RunStatus.RUNNING):
            return
        attrs = trial.user_attrs
        if OUTCOME in attrs:
            self.end_cell(
                run_id,
                attrs[OUTCOME],
                attrs.get(VALUE),
                attrs.get(ERROR),
                seconds=attrs.get(SECONDS),
            )
        else:
            self.abandon(run_id, reason)

    def abandon(self, run_id: str, reason: str) -> None:
        """Close a run whose worker died mid-cell, so nothing stays RUNNING forever."""
        if self.client.get_run(run_id).info.status == RunStatus.to_string(RunStatus.RUNNING):
            self.client.set_tag(run_id, OUTCOME, "failed")
            self.client.set_tag(run_id, ERROR, reason)
            self.client.set_terminated(run_id, "KILLED")

    def close(self) -> None:
        self.client.set_terminated(self.parent_id, "FINISHED")


def _attempt_of(run_id: str, trial: FrozenTrial | None) -> FrozenTrial | None:
    """``trial``, unless it records another run: a trial of the same number in another
    Optuna storage (after --storage changed, or runs/ was deleted and mlflow.db kept)."""
    if trial is None or trial.user_attrs.get(MLFLOW_RUN, run_id) != run_id:
        return None
    return trial


@contextlib.contextmanager
def shared_store(uri: str, workers: int, log: Path) -> Iterator[str]:
    """The tracking URI several workers can write to at once.

    A SQLite store locks ("database is locked") when several processes write to it,
    so for more than one worker a local MLflow server on 127.0.0.1 fronts it for the
    sweep and is stopped afterwards; workers log through it over HTTP. Servers and
    other databases are used as they are.
    """
    if workers == 1 or not uri.startswith("sqlite"):
        yield uri
        return
    with local_server(uri, log) as url:
        yield url


@contextlib.contextmanager
def local_server(backend: str, log: Path, *options: str) -> Iterator[str]:
    """``mlflow server`` for ``backend`` on a free port of 127.0.0.1; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", *options]
    with log.open("w") as out:
        # MLflow 3's job runner (huey consumers) is unused here and slows the start.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local MLflow server did not start; see {log}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(url: str) -> bool:
    """Whether the MLflow server at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
