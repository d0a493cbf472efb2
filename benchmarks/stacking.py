"""Cells per minute: the plain one-model loop, dlbench one cell at a time, dlbench stacked.

An optimizer study (7 optimizers, here with --seeds seeds each) is trained three ways,
in one process, each on both cores (torch threads = 2). --problem picks it: ``mlp`` is
studies/optimizers.yaml (the MNIST-1D MLP, 20 epochs), ``cnn`` the same seven
optimizers on the MNIST-1D CNN (benchmarks/optimizers_cnn.yaml), ``digits`` the digits
MLP (studies/optimizers_digits.yaml):

- plain: benchmarks/plain.py's hand-written loop, one cell after another;
- dlbench --stack 1: the real sweep (Optuna journal, MLflow sqlite store, Lightning),
  one model at a time;
- dlbench --stack auto: the same sweep, cells that differ only in seed, init, lr or
  optimizer trained K at a time (systems.training; K chosen by the worker).

Each dlbench sweep runs in a fresh temporary directory, so it trains every cell; its
time counts from the call to the settled study (stores opened, runs written), not
process start-up (benchmarks/startup.py measures that). The MLflow store's schema is
created before the clock, as a user's mlflow.db exists after their first study: that
is MLflow's one-time migration of a new database (about 0.2 s of the stacked sweep's
4 s here), paid once per store, not per study; --fresh-store counts it too. The three ways alternate for
--repeats rounds and the medians are compared, so drift in the machine hits all alike.
The mean final val accuracy of each way is printed: stacking trains the same models,
so it should match.

    python benchmarks/stacking.py                # MNIST-1D MLP, 10 seeds: 70 cells, 3 rounds
    python benchmarks/stacking.py --problem cnn --seeds 3 --epochs 5 --repeats 1
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from dlbench.harness.grid import expand
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.records import STACKED
from plain import prepare, train

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {
    "mlp": ROOT / "studies" / "optimizers.yaml",
    "cnn": ROOT / "benchmarks" / "optimizers_cnn.yaml",
    "digits": ROOT / "studies" / "optimizers_digits.yaml",
}

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--problem", choices=sorted(STUDIES), default="mlp", help="which study")
parser.add_argument("--seeds", type=int, default=10, help="seeds per optimizer")
parser.add_argument("--epochs", type=int, default=20, help="epochs per cell (the study's 20)")
parser.add_argument("--repeats", type=int, default=3, help="rounds of all three ways (median)")
parser.add_argument(
    "--fresh-store", action="store_true", help="count the MLflow store's creation in the time"
)
args = parser.parse_args()
# CPU figures: neither side sees a GPU, as a sweep's CPU worker (harness.devices.hidden_gpus)
os.environ["CUDA_VISIBLE_DEVICES"] = ""

torch.set_num_threads(2)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
seeds = list(range(args.seeds))
spec = load_study(STUDIES[args.problem], overrides=[f"epochs={args.epochs}", f"seeds={seeds}"])
cells = expand(spec)
print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
print(f"cells: {len(cells)} ({spec.name}, {args.epochs} epochs, seeds 0-{args.seeds - 1})")
print(f"MLflow store: {'created inside' if args.fresh_store else 'created before'} the clock")


def plain() -> list[float]:
    prepared = [prepare(cell) for cell in cells]  # models and data built before the clock
    start = time.perf_counter()
    accs = [
        train(cell, model, tensors) for cell, (model, tensors) in zip(cells, prepared, strict=True)
    ]
    return [time.perf_counter() - start, *accs]


def sweep(stack: int) -> list[float]:
    home = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="dlbench-stacking-") as tmp:
        os.chdir(tmp)
        uri = f"sqlite:///{tmp}/mlflow.db"
        if not args.fresh_store:
            MlflowClient(uri).search_experiments()  # creates the store's tables
        start = time.perf_counter()
        run_study(spec, RunOptions(tracking=uri, devices="cpu", threads=2, stack=stack))
        seconds = time.perf_counter() - start
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name(spec.name).experiment_id])
        cell_runs = [r for r in runs if STACKED in r.data.tags]
        sizes = sorted({int(r.data.tags[STACKED]) for r in cell_runs})
        print(f"  --stack {stack or 'auto'}: stack sizes {sizes}")
        os.chdir(home)
        return [seconds, *(r.data.metrics["val/acc"] for r in cell_runs)]


ways = {
    "plain loop": plain,
    "dlbench --stack 1": lambda: sweep(1),
    "dlbench --stack auto": lambda: sweep(0),
}
seconds: dict[str, list[float]] = {name: [] for name in ways}
accs: dict[str, list[float]] = {}
for _ in range(args.repeats):
    for name, fn in ways.items():
        took, *accs[name] = fn()
        seconds[name].append(took)
median = {name: statistics.median(values) for name, values in seconds.items()}
base = len(cells) / median["plain loop"] * 60
print(f"\n{args.repeats} rounds, alternating; medians")
print("\n| way | median s | min s | max s | cells/min | vs plain | mean val/acc |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, values in seconds.items():
    rate = len(cells) / median[name] * 60
    print(
        f"| {name} | {median[name]:.1f} | {min(values):.1f} | {max(values):.1f} | {rate:.0f} "
        f"| {rate / base:.2f}x | {statistics.mean(accs[name]):.4f} |"
    )
print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
