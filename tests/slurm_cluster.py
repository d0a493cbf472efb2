"""A real, throwaway one-node Slurm cluster on 127.0.0.1 for `dlbench submit --slurm`.

munged with its own key and socket, slurmctld and slurmd from a generated slurm.conf
(no cgroups, no accounting database: what a container allows), each in a temporary
folder; the fixture yields the environment a client needs (SLURM_CONF) and stops all
three afterwards. Needs Debian's slurmctld, slurmd, munge and slurm-client
(`scripts/system-deps slurm`), and root: slurmd starts jobs as their users.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlbench.harness.tracking import free_port

CONF = """\
ClusterName=dlbench
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def _daemon(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment of a client of a fresh one-node cluster (SLURM_CONF set), with the
    node idle and its partition up."""
    missing = [b for b in SLURM_BINARIES if shutil.which(b) is None]
    if missing:
        pytest.fail(
            f"Slurm not installed ({', '.join(missing)} missing); run `scripts/system-deps slurm`",
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.skip("a one-node Slurm cluster needs root (slurmd starts jobs as their users)")
    root = Path(tempfile.mkdtemp(prefix="dlbench-slurm-"))  # short: munge's socket path
    (root / "state").mkdir()
    (root / "spool").mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(
        CONF.format(
            host=host,
            root=root,
            ctld_port=free_port(),
            d_port=free_port(),
            cpus=os.cpu_count() or 1,
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons: list[subprocess.Popen] = []
    try:
        daemons.append(
            _daemon(
                [
                    "munged", "--foreground", "--force", f"--key-file={key}",
                    f"--socket={root}/munge.socket", f"--pid-file={root}/munged.pid",
                    f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed",
                ],
                env,
            )
        )  # fmt: skip
        _wait_for(lambda: (root / "munge.socket").exists(), "munged", root / "munged.log")
        daemons.append(_daemon(["slurmctld", "-D", "-i", "-f", str(conf)], env))
        daemons.append(_daemon(["slurmd", "-D", "-f", str(conf), "-N", host], env))
        _wait_for(lambda: _idle(env), "the node", root / "slurmd.log", root / "slurmctld.log")
        yield env
    finally:
        for daemon in reversed(daemons):
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(root, ignore_errors=True)


def _idle(env: dict[str, str]) -> bool:
    done = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and done.stdout.strip() == "idle"


def _wait_for(ready, what: str, *logs: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {log}:\n{log.read_text()[-2000:]}" for log in logs if log.exists()
            )
            pytest.fail(f"{what} did not come up in {timeout:.0f} s\n{tails}", pytrace=False)
        time.sleep(0.5)
