"""Memory over a long sweep: one worker process's resident set (RSS) after 5 cells and
after 100, through the real worker loop (Optuna journal storage, MLflow sqlite store,
Lightning fit per cell). Target: no growth beyond 10%, i.e. nothing MLflow, Lightning,
Optuna or dlbench caches accumulates per cell. Also prints the peak RSS of the worker.

By default each cell is its own Lightning fit (``--stack 1``, as for cells that cannot
stack): 100 fits, the most chances to leak. ``--stack 0`` lets the worker stack them
(systems.training), as a sweep of this study would by default.

    python benchmarks/memory.py [--cells 100] [--epochs 2] [--stack 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import textwrap
import time
from pathlib import Path

from dlbench.harness import storage, worker
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.harness.tracking import Tracker

STUDY = """\
name: memory
description: The digits MLP, one seed per cell, for the memory benchmark.
problem: digits_mlp
fixed: {{init: he_normal, width: 64, depth: 2, epochs: {epochs}, batch_size: 64, optimizer: sgd, lr: 0.1}}
seeds: [{seeds}]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--stack", type=int, default=1, help="cells per fit (0: auto)")
    args = parser.parse_args()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"command: python benchmarks/memory.py --cells {args.cells} --epochs {args.epochs} "
        f"--stack {args.stack}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rss: list[float] = []  # MiB after each cell
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        path = Path(folder) / "memory.yaml"
        seeds = ", ".join(map(str, range(args.cells)))
        path.write_text(textwrap.dedent(STUDY.format(epochs=args.epochs, seeds=seeds)))
        spec = load_study(path)
        uri = f"sqlite:///{folder}/mlflow.db"
        storage.open_study(spec.name, spec.objective.direction)
        Tracker(spec, uri)  # experiment and parent run, as the launcher makes them
        job = worker.Job(
            study=str(path),
            smoke=False,
            overrides=[],
            options=RunOptions(tracking=uri, stack=args.stack),
            accelerator="cpu",
            devices=None,
            threads=torch_threads(),
            retry_before=0,
            workers=1,
        )
        start = time.perf_counter()
        worker.work(spec, job, on_finish=lambda: rss.append(resident_mib()))
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    at5, last = rss[4], rss[-1]
    print(f"\n{len(rss)} cells in {seconds:.0f} s ({60 * len(rss) / seconds:.0f} cells/min)\n")
    print("| after cell | RSS MiB |")
    print("|---:|---:|")
    for n in sorted({1, 5, 10, 25, 50, 75, len(rss)}):
        print(f"| {n} | {rss[n - 1]:.0f} |")
    growth = last / at5 - 1
    print(
        f"\ngrowth from cell 5 to cell {len(rss)}: {100 * growth:+.1f}% (target <= +10%: "
        f"{'met' if growth <= 0.10 else 'NOT met'})"
    )
    print(f"peak RSS of the worker: {peak:.0f} MiB")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def resident_mib() -> float:
    """This process's resident set now (Linux: VmRSS in /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this benchmark needs Linux)")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
