"""How many cells a minute does `dlbench run` get from 1 CPU worker, and from 2?

The optimizer study's smoke tier (studies/optimizers_digits.yaml --smoke: 7 optimizer arms x
seed 0, 2 epochs each) is run through the real CLI, as a user would run it:

    dlbench run <repo>/studies/optimizers_digits.yaml --smoke --devices cpu --workers N \
        --tracking-uri sqlite:///<tmp>/mlflow.db                      (cwd = <tmp>)

each time in a fresh temporary directory, so nothing is already finished. The wall time
of the whole command is what a user waits for, so it is what is timed: start-up, the
cells, the report table at the end. With one worker the cells run in the launcher's own
process. With more, the launcher also starts a local MLflow server in front of the
sqlite store and one worker process per slot, each of which imports torch and Lightning
itself. Every worker uses one torch thread (the CLI's default), so 1 worker uses one
core of a 2-core machine and 2 workers use both.

Those start-up costs are fixed per command while a smoke cell takes a fraction of a
second, so a second variant gives every cell more training to do (--set epochs=E,
default 40: the same 7 cells) to show how the training itself scales. The two variants
and the two worker counts alternate (1, 2, 1, 2, ... per variant, in each of --repeats
rounds) so drift in the machine hits all alike, and medians are reported.

Where the time goes, from figures each run gives anyway or that cost a few seconds:
- the command's output, read as it comes: the launcher's first line (the study is
  validated and its stores are open), each "done <cell>" line, and the exit;
- for 2 workers, the MLflow server's own log: when it answered (whole-second stamps);
- `dlbench run` on the smoke study once it has finished: the fixed cost of launching,
  validating, opening the stores and printing the table (with nothing to do no server
  or worker is started, so it is the same for any --workers);
- the imports one worker process pays: python -c "import dlbench.harness.worker".

    python benchmarks/workers.py                 # 3 rounds, about 7 minutes on 2 cores
    python benchmarks/workers.py --repeats 1     # one round, about 2-3 minutes
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STUDY = (
    REPO / "studies" / "optimizers_digits.yaml"
)  # absolute: each command runs in its own tmp dir
DLBENCH = Path(sys.executable).with_name("dlbench")  # the console script next to this python
WORKERS = (1, 2)

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--repeats", type=int, default=3, help="rounds (median taken)")
parser.add_argument("--epochs", type=int, default=40, help="epochs per cell, larger variant")
args = parser.parse_args()

# -- what the smoke tier is: read from the study file, not assumed ---------------------------
study = yaml.safe_load(STUDY.read_text())
SMOKE_EPOCHS = study["smoke"]["epochs"]
CELLS = len(study["grid"]["optimizer"]) * len(study["smoke"]["seeds"])
variants = {
    f"{SMOKE_EPOCHS} epochs": [],
    f"{args.epochs} epochs": ["--set", f"epochs={args.epochs}"],
}


def sh(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO).stdout.strip()


cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
cpu_model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
print(f"command: {sys.executable} {' '.join(sys.argv)}")
print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
print(
    f"machine: {platform.platform()}, nproc {sh(['nproc'])}, {cpu_model}, "
    f"Python {platform.python_version()}"
)
print(f"code: {sh(['git', 'describe', '--always', '--dirty'])} ({sh([str(DLBENCH), '--version'])})")
print(f"study: {STUDY.relative_to(REPO)} --smoke: {CELLS} cells; variants: {', '.join(variants)}")
# Timings on a small machine mean little while something else runs: show how busy it was.
print(f"load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

ENV = {**os.environ, "COLUMNS": "200"}  # Rich wraps at 80 columns off a terminal: keep lines
HEADER = re.compile(r"^\S+: \d+ cells, \d+ already finished")  # the launcher's first line
DONE = re.compile(r"^\s*done \S+ s\d+: ")  # one per settled cell, as the launcher sees it
LOG_TIME = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) ")  # MLflow server log stamps


def dlbench_run(tmp: Path, workers: int, extra: list[str], expect: int = CELLS) -> dict:
    """One `dlbench run` in ``tmp`` that must settle ``expect`` cells; returns seconds from
    its start to: its first line ("header"), the first and last "done" line, its exit
    ("wall"); and the wall clock at its first line ("header_at", for the server log)."""
    command = [str(DLBENCH), "run", str(STUDY), "--smoke", *extra, "--devices", "cpu"]
    command += ["--workers", str(workers), "--tracking-uri", f"sqlite:///{tmp}/mlflow.db"]
    at: dict = {}
    output = []
    start = time.perf_counter()
    with subprocess.Popen(
        command, cwd=tmp, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout:
            now = time.perf_counter() - start
            output.append(line)
            if HEADER.match(line) and "header" not in at:
                at["header"], at["header_at"] = now, datetime.datetime.now()
            if DONE.match(line):
                at.setdefault("first", now)
                at["last"] = now
    at["wall"] = time.perf_counter() - start
    # A benchmark of a failed run is no benchmark: stop and show why (src/ may be mid-edit).
    text, settled = "".join(output), sum(bool(DONE.match(line)) for line in output)
    if process.returncode != 0 or "Traceback" in text or settled != expect or "header" not in at:
        why = f"exit {process.returncode}, {settled} of {expect} cells done"
        sys.exit(f"`{' '.join(command)}` failed ({why}):\n{text[-3000:]}")
    return at


def server_start(tmp: Path, header_at: datetime.datetime) -> float | None:
    """Seconds from the launcher's first line to the MLflow server's "Uvicorn running"."""
    for log in tmp.glob("runs/*/mlflow-server.log"):
        for line in log.read_text().splitlines():
            stamp = LOG_TIME.match(line)
            if stamp and "Uvicorn running" in line:
                ready = datetime.datetime.strptime(stamp[1], "%Y/%m/%d %H:%M:%S")
                return (ready - header_at.replace(microsecond=0)).total_seconds()
    return None  # no log, or MLflow changed its wording


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, capture_output=True, check=True)
    return time.perf_counter() - start


# -- measure: rounds of (variant x workers), alternating --------------------------------------
runs: dict[tuple[str, int], list[dict]] = {(v, n): [] for v in variants for n in WORKERS}
servers, finished, imports = [], [], []
for round_ in range(args.repeats):
    for variant, extra in variants.items():
        for n in WORKERS:
            with tempfile.TemporaryDirectory(prefix=f"dlbench-workers{n}-") as name:
                tmp = Path(name)
                at = dlbench_run(tmp, n, extra)
                runs[variant, n].append(at)
                if n > 1:
                    servers.append(server_start(tmp, at["header_at"]))
                if n == 1 and not extra:  # the same study again, now finished: fixed cost only
                    finished.append(dlbench_run(tmp, 1, extra, expect=0)["wall"])
            print(f"  round {round_ + 1}: {variant}, {n} worker(s): {at['wall']:.1f} s", flush=True)
    imports.append(timed([sys.executable, "-c", "import dlbench.harness.worker"]))
print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

# -- report: cells per minute ------------------------------------------------------------------
wall = {key: [at["wall"] for at in ats] for key, ats in runs.items()}
median = {key: statistics.median(values) for key, values in wall.items()}
per_min = {key: CELLS / (m / 60) for key, m in median.items()}

print(f"\n{args.repeats} rounds, alternating; wall time of the whole `dlbench run` command\n")
print("| smoke tier | workers | median s | min s | max s | cells/min | 2w / 1w |")
print("|------------|--------:|---------:|------:|------:|----------:|--------:|")
for (variant, n), values in wall.items():
    ratio = f"{per_min[variant, n] / per_min[variant, 1]:.2f}x" if n > 1 else ""
    print(
        f"| {variant:<10} | {n:>7} | {median[variant, n]:8.1f} | {min(values):5.1f} "
        f"| {max(values):5.1f} | {per_min[variant, n]:9.1f} | {ratio:>7} |"
    )

# -- report: where the time goes ---------------------------------------------------------------
print("\nwhere the time goes: medians in s from the command's output as it came\n")
print("| smoke tier | workers | to 1st line | to 1st done | 1st to last done | to exit |")
print("|------------|--------:|------------:|------------:|-----------------:|--------:|")
for (variant, n), ats in runs.items():
    parts = [
        statistics.median(at["header"] for at in ats),
        statistics.median(at["first"] - at["header"] for at in ats),
        statistics.median(at["last"] - at["first"] for at in ats),
        statistics.median(at["wall"] - at["last"] for at in ats),
    ]
    print(
        f"| {variant:<10} | {n:>7} | {parts[0]:11.1f} | {parts[1]:11.1f} "
        f"| {parts[2]:16.1f} | {parts[3]:7.1f} |"
    )
print(
    "\n(each column from the end of the one before; 1st line: the study is validated and its\n"
    "stores are open; with 2 workers the launcher sees a cell done at its next poll, 0.5 s)"
)
print(f"`dlbench run` on the finished study (nothing to run): {statistics.median(finished):.1f} s")
started = [s for s in servers if s is not None]
if started:
    print(
        f"2 workers: MLflow server answering {statistics.median(started):.0f} s after the first "
        f"line (its log's whole-second stamps: +-1 s)"
    )
print(f"imports of one worker process: {statistics.median(imports):.1f} s")

# -- report: where 2 workers pay off -----------------------------------------------------------
small, large = variants  # a straight line through (epochs, median wall) for each count
slope = {n: (median[large, n] - median[small, n]) / (args.epochs - SMOKE_EPOCHS) for n in WORKERS}
base = {n: median[small, n] - slope[n] * SMOKE_EPOCHS for n in WORKERS}
print(
    f"\nwall per extra epoch of all {CELLS} cells: 1 worker {slope[1]:.2f} s, "
    f"2 workers {slope[2]:.2f} s; at 0 epochs: 1 worker {base[1]:.1f} s, 2 workers {base[2]:.1f} s"
)
if min(slope.values()) <= 0:
    print(f"{args.epochs} epochs are too few to see the training under the noise: raise --epochs")
elif slope[1] > slope[2]:
    even = (base[2] - base[1]) / (slope[1] - slope[2])
    print(
        f"the training alone runs {slope[1] / slope[2]:.2f}x faster on 2 workers; they break "
        f"even at about {even:.0f} epochs per cell for these {CELLS} cells (a straight-line guess)"
    )
else:
    print("2 workers train no faster than 1 here: they never break even")
