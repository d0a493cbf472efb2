"""What does dlbench's harness cost over a plain PyTorch loop, for one cell?

One cell of a study (by default the optimizer study's sgd arm: the MNIST-1D MLP, batch
100, seed 0; ``--study optimizers_digits`` is the digits MLP, ``--study augmentation
--arm none`` the digits CNN) is trained twice,
side by side, in one process:

- dlbench: the real sweep path, Tracker.start_cell -> runner.train (a stack of one on
  the one engine: Lightning fit + test, metrics through the buffered MLflow logger) ->
  Tracker.end_cell, into a real MLflow sqlite store in a temporary directory.
  runner.train builds its problem (data split, standardizing, model) itself, so that
  per-cell work is part of its time.
- plain: a hand-written loop training the same model (built by the same problem, same
  seed) on the same split tensors, already in memory, with the same batches
  (InMemoryLoader, same shuffle seed), the same number of steps, val loss + accuracy
  once per epoch and a final test pass. No logging, no framework.

Each side is warmed up once, then the two alternate for --repeats rounds (so drift
in the machine hits both alike) and the medians are compared. The final val accuracy
of each is printed so a reader can see both trained the same thing.

    python benchmarks/overhead.py                          # MLP sgd cell, 20 epochs, 5 repeats
    python benchmarks/overhead.py --study augmentation --arm none   # the digits CNN
    python benchmarks/overhead.py --repeats 1 --epochs 2   # quick sanity check
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning
import mlflow
import torch

from dlbench.data.memory import InMemoryLoader
from dlbench.harness import process
from dlbench.harness.grid import expand
from dlbench.harness.runner import train as train_cells
from dlbench.harness.spec import load_study
from dlbench.harness.tracking import Tracker
from plain import prepare, train

STUDIES = Path(__file__).resolve().parents[1] / "studies"  # absolute: we chdir
SEED = 0  # the study's first seed; any seed costs the same

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--repeats", type=int, default=5, help="timed rounds per side (median taken)")
parser.add_argument("--epochs", type=int, default=20, help="epochs per cell (the study's 20)")
parser.add_argument("--study", default="optimizers", help="a study in studies/ (one axis)")
parser.add_argument("--arm", default="sgd", help="the arm to run (sgd, adam, ...; none, ...)")
args = parser.parse_args()
# CPU figures: neither side sees a GPU, as a sweep's CPU worker (harness.devices.hidden_gpus)
os.environ["CUDA_VISIBLE_DEVICES"] = ""
process.setup()

# -- the cell, exactly as a sweep would expand it ---------------------------------------------
spec = load_study(STUDIES / f"{args.study}.yaml", overrides=[f"epochs={args.epochs}"])
cells = [c for c in expand(spec) if c.arm_label == args.arm and c.seed == SEED]
if not cells:
    sys.exit(f"no arm {args.arm!r}; arms: {', '.join(sorted({c.arm_label for c in expand(spec)}))}")
cell = cells[0]
settings = cell.settings

print(f"command: {sys.executable} {' '.join(sys.argv)}")
print(
    f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
    f"torch {torch.__version__} ({torch.get_num_threads()} threads), lightning "
    f"{lightning.__version__}, mlflow {mlflow.__version__}"
)
# Timings on a small machine mean little while something else runs: show how busy it was.
print(f"load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
print(f"cell: {cell.label} ({cell.id}) {dict(settings)}")

# -- the plain side's data: the same split tensors dlbench trains on, built once -------------
initial, tensors = prepare(cell)  # the plain side copies this model each time
steps_per_epoch = len(InMemoryLoader(*tensors["train"], settings["batch_size"]))
print(f"steps: {args.epochs} epochs x {steps_per_epoch} = {args.epochs * steps_per_epoch}")


def plain() -> float:
    """The same training by hand (benchmarks/plain.py), from the same initial weights."""
    return train(cell, copy.deepcopy(initial), tensors)


def dlbench_cell(tracker: Tracker, uri: str) -> float:
    """One cell through the sweep's own calls; returns the last epoch's val accuracy."""
    run_id = tracker.start_cell(cell, 1)
    (result,) = train_cells(
        [cell], spec.objective, run_ids=[run_id], tracking_uri=uri, accelerator="cpu"
    )
    tracker.end_cell(run_id, result.outcome, result.objective, result.error)
    assert result.outcome == "completed", result.error
    return result.final["val/acc"]


# -- measure: warm up once each, then alternate ------------------------------------------------
home = os.getcwd()
with tempfile.TemporaryDirectory(prefix="dlbench-overhead-") as tmp:
    os.chdir(tmp)  # Lightning and MLflow write relative to cwd: keep it all out of the repo
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating tables..."
    uri = f"sqlite:///{tmp}/mlflow.db"
    tracker = Tracker(spec, uri)  # once per study in a sweep, so not part of a cell's time
    sides = {"dlbench": lambda: dlbench_cell(tracker, uri), "plain": plain}
    times: dict[str, list[float]] = {name: [] for name in sides}
    acc = {name: fn() for name, fn in sides.items()}  # warm-up: imports, allocator, sqlite
    for _ in range(args.repeats):
        for name, fn in sides.items():
            start = time.perf_counter()
            acc[name] = fn()
            times[name].append(time.perf_counter() - start)
    tracker.close()
    os.chdir(home)

# -- report ------------------------------------------------------------------------------------
median = {name: statistics.median(values) for name, values in times.items()}
print(
    f"torch threads after the runs: {torch.get_num_threads()}, load average after: "
    f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
)
print(f"\n{args.repeats} repeats after one warm-up each, alternating\n")
print("| side    | median s | min s  | max s  | ms/step | final val/acc |")
print("|---------|---------:|-------:|-------:|--------:|--------------:|")
for name, values in times.items():
    per_step = 1000 * median[name] / (args.epochs * steps_per_epoch)
    print(
        f"| {name:<7} | {median[name]:8.3f} | {min(values):6.3f} | {max(values):6.3f} "
        f"| {per_step:7.2f} | {acc[name]:13.4f} |"
    )
print(f"\nratio dlbench / plain (medians): {median['dlbench'] / median['plain']:.2f}x")
print(f"overhead per cell: {median['dlbench'] - median['plain']:.3f} s")
