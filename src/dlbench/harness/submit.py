"""Across machines: ``dlbench submit``, a job array of ordinary sweeps through submitit.

Each job of the array runs ``sweep.run_study`` on its node, as ``dlbench run`` would by
hand on each machine: it plans its own devices, claims cells from the shared Optuna
storage and logs to the shared MLflow server. Nothing is scheduled here; Slurm runs the
jobs, Optuna's storage hands out the cells exactly once:

- a job that hits its time limit or is preempted is requeued by submitit (the job is a
  ``Checkpointable``, resubmitted as it was: the storage knows what is done);
- a job that is killed (``scancel``, a node failure) leaves its cell RUNNING: the other
  jobs' workers find it by its heartbeat (or, on the same host, its dead pid) and run it
  again, so every cell still ends with exactly one completed run.

``--slurm`` needs stores every node reaches: a PostgreSQL/MySQL ``--storage`` and an MLflow
server (or database) ``--tracking-uri``. ``--local`` runs the same jobs as processes of
this machine (submitit's LocalExecutor), with the default stores, and waits for them.
The submitted jobs are listed in ``runs/<study>/jobs.json``; ``dlbench status`` shows them.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import submitit
from rich.console import Console

from dlbench.errors import ConfigError
from dlbench.harness import storage
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import StudySpec
from dlbench.records import tracking_uri

CLUSTERS = ("slurm", "local")
SHARED_STORAGE = ("postgresql", "mysql")  # Optuna storages every node reaches
SHARED_TRACKING = ("http://", "https://", "postgresql", "mysql")  # MLflow stores likewise
POLL = 5.0  # seconds between looks at the jobs while waiting for them


@dataclass(frozen=True)
class SubmitOptions:
    """Where the jobs run and what each asks for; ``None`` leaves Slurm's default."""

    cluster: str  # slurm | local
    nodes: int = 1  # jobs in the array, one per node
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: int | None = None
    partition: str | None = None
    time_min: int = 60  # each job's time limit; a job that reaches it is requeued
    wait: bool = False  # --slurm: wait for the jobs (--local always does)


class SweepJob(submitit.helpers.Checkpointable):
    """One job of the array: the ordinary sweep of the study (``run_study``) on this node.

    Checkpointable: at a time limit or preemption submitit resubmits it as it is; the
    sweep it then runs skips what is settled and retries what the killed one left."""

    def __init__(self, spec: StudySpec, options: RunOptions, cwd: str):
        self.study, self.smoke, self.overrides = spec.source, spec.smoke, list(spec.overrides)
        self.options, self.cwd = options, cwd

    def __call__(self, index: int) -> int:
        from dlbench.harness.spec import load_study
        from dlbench.harness.sweep import run_study

        os.chdir(self.cwd)  # runs/ and relative study paths as where it was submitted
        spec = load_study(self.study, smoke=self.smoke, overrides=self.overrides)
        print(f"dlbench job {index}: {spec.name} on {os.uname().nodename}", flush=True)
        return len(run_study(spec, self.options, Console(stderr=True)))


def check(options: RunOptions, submit: SubmitOptions) -> None:
    """Refuse, before anything is written, what a cluster's jobs could not share."""
    if submit.cluster == "local":
        if submit.partition is not None:
            raise ConfigError(
                "is a Slurm option; --local runs on this machine", source="--partition"
            )
        return
    if not (options.storage or "").startswith(SHARED_STORAGE):
        got = options.storage or f"the local journal {storage.RUNS_DIR}/<study>/optuna.journal"
        raise ConfigError(
            f"the jobs of a cluster share one Optuna database every node reaches "
            f"(postgresql://user@host/db or mysql://...), not {got}",
            source="--storage",
        )
    uri = tracking_uri(options.tracking)
    if not uri.startswith(SHARED_TRACKING):
        raise ConfigError(
            f"{uri} is a file on this machine; the jobs log to one MLflow server every node "
            "reaches (http://host:5000, started with `mlflow server`) or a database URL",
            source="--tracking-uri",
        )
    if shutil.which("sbatch") is None:
        raise ConfigError("sbatch is not on PATH: this is not a Slurm submit host (try --local)")


def submit(
    spec: StudySpec, options: RunOptions, how: SubmitOptions, console: Console
) -> list[submitit.Job]:
    """Submit ``how.nodes`` jobs of the study's sweep; with --local (or ``how.wait``) wait
    for them, drawing the study's progress, and raise ``Incomplete`` if cells are left."""
    from dlbench.harness import encoders, process
    from dlbench.harness.plan import checked_cells
    from dlbench.harness.sweep import Incomplete, Monitor
    from dlbench.harness.tracking import Tracker, shared_store

    process.setup()
    check(options, how)
    cells = checked_cells(spec)  # a bad study stops here: nothing submitted
    uri = tracking_uri(options.tracking)
    encoders.check_available(cells, uri, spec.source)
    # The queue exists before any job starts (and a storage that cannot take this many
    # jobs, SQLite, is refused before anything is written).
    study = storage.open_study(
        spec.name,
        spec.objective.direction,
        options.storage,
        workers=how.nodes,
        heartbeat=options.heartbeat,
    )
    storage.pending(study, cells)
    folder = storage.RUNS_DIR / spec.name / "submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=how.cluster)
    executor.update_parameters(
        name=f"dlbench-{spec.name}",
        nodes=1,
        tasks_per_node=1,
        timeout_min=how.time_min,
        gpus_per_node=how.gpus_per_node,
        **({"cpus_per_task": how.cpus_per_task} if how.cpus_per_task else {}),
        **({"mem_gb": how.mem_gb} if how.mem_gb else {}),
        **({"slurm_partition": how.partition} if how.partition else {}),
        **({"slurm_array_parallelism": how.nodes} if how.cluster == "slurm" else {}),
    )
    waits = how.wait or how.cluster == "local"
    with shared_store(uri, how.nodes, folder / "mlflow-server.log") as shared:
        # The experiment and its parent run too, so jobs starting at once find them
        # instead of racing to create them.
        Tracker(spec, shared)
        job = SweepJob(spec, options.with_tracking(shared), str(Path.cwd()))
        jobs = executor.map_array(job, range(how.nodes))
        record(spec.name, how.cluster, jobs, folder)
        console.print(
            f"[bold]{spec.name}[/]: {len(cells)} cells, {len(jobs)} {how.cluster} jobs "
            f"({', '.join(j.job_id for j in jobs)}); logs in {folder}/"
        )
        if waits:
            monitor = Monitor(study, cells, spec.objective.metric)
            already = len(cells) - len(storage.unsettled(study, cells))
            with monitor.progress(console, already), _cancel_on_interrupt(jobs):
                while any(state == "running" for state in job_states(how.cluster, jobs)):
                    monitor.poll()
                    time.sleep(POLL if how.cluster == "slurm" else 0.5)
                monitor.poll()
            left = storage.unsettled(study, cells)
            if left:
                raise Incomplete(
                    f"{spec.name}: the jobs ended with {len(left)} of {len(cells)} cells not "
                    f"run (their logs: {folder}/); submit again to resume"
                )
    return jobs


@contextlib.contextmanager
def _cancel_on_interrupt(jobs: list[submitit.Job]) -> Iterator[None]:
    """Ctrl-C while waiting cancels the jobs: their cells go back to the queue."""
    try:
        yield
    except KeyboardInterrupt:
        for job in jobs:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        raise


# -- the jobs of a study: recorded at submission, shown by `dlbench status` -----------------
def jobs_file(study: str) -> Path:
    return storage.RUNS_DIR / study / "jobs.json"


def record(study: str, cluster: str, jobs: list[submitit.Job], folder: Path) -> None:
    """Append this submission's jobs to ``runs/<study>/jobs.json``."""
    path = jobs_file(study)
    known = json.loads(path.read_text()) if path.is_file() else []
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    host = socket.gethostname()  # a local job's id is a process id on this host
    known += [
        {"job": j.job_id, "cluster": cluster, "host": host, "submitted": now, "log": str(folder)}
        for j in jobs
    ]
    path.write_text(json.dumps(known, indent=1))


def submitted(study: str) -> list[dict[str, str]]:
    """The study's recorded jobs, each with its state now."""
    path = jobs_file(study)
    if not path.is_file():
        return []
    known = json.loads(path.read_text())
    slurm = _squeue([j["job"] for j in known if j["cluster"] == "slurm"])
    for job in known:
        if job["cluster"] == "slurm":
            job["state"] = slurm.get(job["job"], "ended")
        else:  # a local job's id is its process id
            alive = storage.worker_alive(job["host"], job["job"])
            job["state"] = "running" if alive else "ended"
    return known


def job_states(cluster: str, jobs: list[submitit.Job]) -> list[str]:
    """Each job: "running" (queued or running) or "ended"; Slurm's own word via squeue,
    which needs no accounting database (submitit's job.state asks sacct)."""
    if cluster == "local":
        return ["ended" if job.done() else "running" for job in jobs]
    queued = _squeue([job.job_id for job in jobs])
    return ["running" if job.job_id in queued else "ended" for job in jobs]


def _squeue(ids: list[str]) -> dict[str, str]:
    """Slurm's state of each queued or running job of ``ids`` (an array task's id is
    ``<array>_<index>``); ended jobs are not in the queue."""
    if not ids or shutil.which("squeue") is None:
        return {}
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(i.split("_")[0] for i in ids)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = dict(line.split(maxsplit=1) for line in out.splitlines() if line.strip())
    return {i: found[i].lower() for i in ids if i in found}
