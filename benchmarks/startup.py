"""Start-up time of the `dlbench` command, each a fresh process as a user runs it:
`--help` (target < 1 s), `validate` of one study (studies/optimizers.yaml, < 2 s), of
every study file in studies/ (< 3 s), and of a study file with a typo (< 2 s to the
one-line refusal, exit 2).

`--help` must not import torch, lightning or mlflow; `validate` imports torch (it
builds every distinct cell: models and data) but never Lightning, MLflow or Optuna's
storages.

    python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DLBENCH = [str(Path(sys.executable).with_name("dlbench"))]  # the console script users run
TARGETS = {"--help": 1.0, "validate one": 2.0, "validate all": 3.0, "validate a typo": 2.0}
TYPO = "name: typo\nproblem: mnist1d_mlp\nfixed: {optimzer: adam}\nseeds: [0]\n"


def timed(command: list[str], expect: int = 0) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True)
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr[-500:]!r}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    studies = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "studies").rglob("*.yaml"))
    typo = Path(tempfile.mkdtemp()) / "typo.yaml"
    typo.write_text(TYPO)
    commands = {
        "--help": [*DLBENCH, "--help"],
        "validate one": [*DLBENCH, "validate", "studies/optimizers.yaml"],
        "validate all": [*DLBENCH, "validate", *studies],
        "validate a typo": [*DLBENCH, "validate", str(typo)],
    }
    expect = {name: 2 if name == "validate a typo" else 0 for name in commands}
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"command: python benchmarks/startup.py --repeats {args.repeats}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for name, command in commands.items():
        timed(command, expect[name])  # warm the file cache and bytecode
    times = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(timed(command, expect[name]))
    print("\n| command | median s | min s | max s | target s | met |")
    print("|---|---:|---:|---:|---:|---|")
    for name, values in times.items():
        label = f"dlbench {name}" + (f" ({len(studies)} files)" if name == "validate all" else "")
        median = statistics.median(values)
        print(
            f"| {label} | {median:.2f} | {min(values):.2f} | {max(values):.2f} "
            f"| {TARGETS[name]:.0f} | {'yes' if median < TARGETS[name] else 'no'} |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
