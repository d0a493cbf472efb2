"""GPU throughput of the one engine: cells per minute by model, stack size and option.

For the MNIST-1D MLP and CNN (the real generated data) and the CIFAR-10 ResNet (random
tensors of CIFAR-10's shape, as no download is possible), K = 1, 4, 16, 64 members are
trained as one stack (``systems.training``) for --epochs epochs, in float32 and with
bf16 autocast, and once with ``--compile``; then the MNIST-1D optimizer study runs as a
real sweep with --per-device 1, 2, 4 workers on the GPU. A *cell* is one member's
training, so cells/min = K x 60 / seconds. benchmarks/gpu_check.sh samples the GPU's
utilisation alongside and adds it.

    python benchmarks/gpu.py --out gpu.md            # on a GPU machine (minutes)
    python benchmarks/gpu.py --dry-run --out gpu.md  # on a CPU: every path, tiny sizes
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from dlbench.components import LOSSES
from dlbench.data.base import InMemoryDataModule
from dlbench.data.lightning import LightningData
from dlbench.data.mnist1d import MNIST1DDataModule
from dlbench.harness import process
from dlbench.harness.options import RunOptions
from dlbench.harness.runner import make_trainer
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.models import MLP, Conv1dNet, ResNet
from dlbench.systems.optimizer import CellOptimizer
from dlbench.systems.training import Member, TrainingSystem

ROOT = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check the paths")
parser.add_argument("--epochs", type=int, default=5, help="epochs per cell")
parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gpu_results.md")
args = parser.parse_args()
process.setup()
GPU = torch.cuda.is_available() and not args.dry_run
ACCELERATOR = "gpu" if GPU else "cpu"
STACKS = (1, 4, 16, 64) if not args.dry_run else (1, 2)
EPOCHS = args.epochs if not args.dry_run else 1


class Synthetic(InMemoryDataModule):
    """Random CIFAR-10-shaped images and labels (fixed seed): the ResNet's cost only."""

    num_classes = 10

    def __init__(self, n: int, batch_size: int):
        super().__init__(batch_size=batch_size, seed=0)
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
        self.tensors = {"train": (x, y), "val": (x[:500], y[:500]), "test": (x[:500], y[:500])}


def mnist1d(layout: str) -> Callable[[], InMemoryDataModule]:
    train_size = 400 if args.dry_run else None
    return lambda: MNIST1DDataModule(
        batch_size=100, layout=layout, seed=0, **({"train_size": train_size} if train_size else {})
    )


MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[], InMemoryDataModule]]] = {
    "mnist1d_mlp": (lambda: MLP(40, 10, width=100, depth=2), mnist1d("flat")),
    "mnist1d_cnn": (lambda: Conv1dNet(1, 10, length=40), mnist1d("channels")),
    "cifar10_resnet": (
        lambda: ResNet(3, 10, blocks_per_stage=1 if args.dry_run else 2),
        lambda: Synthetic(256 if args.dry_run else 10_000, 32 if args.dry_run else 128),
    ),
}


def stack_seconds(model: str, k: int, precision: str, compiled: bool) -> float:
    """Seconds to fit and test a stack of ``k`` members of ``model``."""
    make_model, make_data = MODELS[model]
    members = []
    for seed in range(k):
        torch.manual_seed(seed)
        members.append(Member(make_model(), CellOptimizer("adam", 1e-3, {}), seed))
    system = TrainingSystem(
        members,
        LOSSES.create("cross_entropy"),
        multiplier=lambda steps, epochs: lambda step: 1.0,
    )
    if compiled:
        system.stack.compile()
    data = make_data()
    trainer = make_trainer(
        {"epochs": EPOCHS, "precision": precision}, ACCELERATOR, [0] if GPU else None
    )
    start = time.perf_counter()
    trainer.fit(system, datamodule=LightningData(data))
    trainer.test(system, datamodule=LightningData(data), verbose=False)
    if GPU:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def sweep_seconds(per_device: int) -> tuple[int, float]:
    """Cells and seconds of the MNIST-1D optimizer study as a sweep, ``per_device``
    workers on the GPU (on a dry run: its smoke tier on the CPU)."""
    spec = load_study(
        ROOT / "studies" / "optimizers.yaml", smoke=args.dry_run, overrides=[f"epochs={EPOCHS}"]
    )
    home = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="dlbench-gpu-") as tmp:
        os.chdir(tmp)
        try:
            start = time.perf_counter()
            done = run_study(
                spec,
                RunOptions(
                    tracking=f"sqlite:///{tmp}/mlflow.db",
                    devices="auto" if GPU else "cpu",
                    per_device=per_device if GPU else 1,
                ),
            )
            return len(done), time.perf_counter() - start
        finally:
            os.chdir(home)


rows = [
    "| model | K | precision | compile | s | cells/min |",
    "|---|---:|---|---|---:|---:|",
]
device = torch.cuda.get_device_name(0) if GPU else "cpu (dry run)"
print(f"device: {device}; epochs per cell: {EPOCHS}", flush=True)
for model in MODELS:
    for k in STACKS:
        for precision in ("32-true", "bf16-mixed"):
            seconds = stack_seconds(model, k, precision, compiled=False)
            rows.append(
                f"| {model} | {k} | {precision} | no | {seconds:.1f} | {k * 60 / seconds:.0f} |"
            )
            print(rows[-1], flush=True)
    if GPU:  # compiling on a CPU takes minutes and says nothing about a GPU
        k = STACKS[-2]
        seconds = stack_seconds(model, k, "32-true", compiled=True)
        rows.append(f"| {model} | {k} | 32-true | yes | {seconds:.1f} | {k * 60 / seconds:.0f} |")
        print(rows[-1], flush=True)
rows += [
    "",
    "| sweep (studies/optimizers.yaml) | --per-device | cells | s | cells/min |",
    "|---|---:|---:|---:|---:|",
]
for per_device in (1, 2, 4) if GPU else (1,):
    cells, seconds = sweep_seconds(per_device)
    rows.append(
        f"| mnist1d_mlp, --stack auto | {per_device} | {cells} | {seconds:.1f} | {cells * 60 / seconds:.0f} |"
    )
    print(rows[-1], flush=True)
args.out.write_text(f"device: {device}; epochs per cell: {EPOCHS}\n\n" + "\n".join(rows) + "\n")
print(f"written: {args.out}")
