"""Start-up time of the `dlbench` command: `--help` (target < 1 s) and `validate` of every
study file in studies/ (target < 3 s), each a fresh process as a user runs it.

`--help` must not import torch, lightning or mlflow; `validate` imports torch and
lightning (it builds every distinct cell) but never touches MLflow or Optuna.

    python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DLBENCH = [str(Path(sys.executable).with_name("dlbench"))]  # the console script users run
TARGETS = {"--help": 1.0, "validate": 3.0}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    studies = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "studies").rglob("*.yaml"))
    commands = {"--help": [*DLBENCH, "--help"], "validate": [*DLBENCH, "validate", *studies]}
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"command: python benchmarks/startup.py --repeats {args.repeats}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for command in commands.values():
        timed(command)  # warm the file cache and bytecode
    times = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(timed(command))
    print("\n| command | median s | min s | max s | target s | met |")
    print("|---|---:|---:|---:|---:|---|")
    for name, values in times.items():
        label = f"dlbench {name}" + (f" ({len(studies)} study files)" if name == "validate" else "")
        median = statistics.median(values)
        print(
            f"| {label} | {median:.2f} | {min(values):.2f} | {max(values):.2f} "
            f"| {TARGETS[name]:.0f} | {'yes' if median < TARGETS[name] else 'no'} |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
