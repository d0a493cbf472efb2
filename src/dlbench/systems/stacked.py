"""K cells trained at once: one ``StackedMLP``, one step per batch for all of them.

Each cell keeps what training it alone (``SupervisedSystem``) would give it:

- its initial weights: its model is built from its own seed, as a lone cell's is;
- its batch order: its data module's loader, shuffled from its seed (inputs are
  gathered as (K, B, ...) in one indexing op);
- its optimizer state, learning rate and schedule position;
- its metrics and its divergence: a cell whose loss stops being finite is marked at
  that epoch, while the others train on (slices never mix; a NaN stays in its own).

Optimizers: cells with the same optimizer and hyperparameters (the lr aside) share
one torch optimizer over their slices of the stacked weights; adjacent cells form a
group (``harness.stacking`` puts them next to each other). A group whose cells share
an lr steps at it, as each would alone. A group whose lrs differ steps at lr 1 and
each cell's update is then scaled by its own lr: every registry optimizer's step is
lr times a direction that does not depend on lr (tests/systems/test_stacked.py checks
each entry), so one step of the stack matches K separate steps to float rounding.
There are no regularizer hooks, augmentation or early stopping here: the harness
stacks only cells without them (``harness.stacking``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from dlbench.components import OPTIMIZERS
from dlbench.components.losses import Loss
from dlbench.components.schedules import Multiplier
from dlbench.data.memory import InMemoryLoader
from dlbench.models.stacked import StackedMLP
from dlbench.systems.supervised import Batch, summarize_epoch

# (steps_per_epoch, epochs) -> the lr multiplier of each step (schedule x warmup)
MultiplierFactory = Callable[[int, int], Multiplier]


@dataclass(frozen=True)
class _Group:
    """Adjacent cells with one optimizer setting: one torch optimizer over their slices."""

    where: slice
    optimizer: Optimizer
    views: list[nn.Parameter]
    lr: float | None  # the cells' lr when they share it, else None (step at 1, rescale)


@dataclass(frozen=True)
class CellOptimizer:
    """One cell's optimizer: registry name, lr (after any batch-size rule), the rest."""

    name: str
    lr: float
    hparams: dict[str, Any]


class StackedSystem(L.LightningModule):
    """The models of K cells, with their optimizers and train loaders, as one system."""

    automatic_optimization = False  # training_step runs a whole epoch (as SupervisedSystem)

    def __init__(
        self,
        models: Sequence[nn.Module],
        loss: Loss,
        optimizers: Sequence[CellOptimizer],
        loaders: Sequence[InMemoryLoader],
        *,
        multiplier: MultiplierFactory,
        classification: bool = True,
    ):
        super().__init__()
        if not len(models) == len(optimizers) == len(loaders):
            raise ValueError("one optimizer and one loader per model")
        self.model, self.loss = StackedMLP(models), loss
        self.cell_optimizers, self.loaders = list(optimizers), list(loaders)
        self.multiplier_factory, self.classification = multiplier, classification
        self._multiplier: Multiplier | None = None
        self._groups: list[_Group] = []
        self._batches: dict[str, list[Batch]] = {}  # per stage, read once per epoch
        self._steps, self._epoch_start = 0, 0.0
        k = len(models)
        self.diverged: list[tuple[int, int] | None] = [None] * k  # (epoch, step) per cell
        self.history: list[dict[str, list[float]]] = [{} for _ in range(k)]
        self.loggers_per_cell: list[Any] = []  # BufferedMLFlowLogger per cell, if logging

    # -- optimizers: one per group of adjacent cells with equal settings -----------------
    def configure_optimizers(self) -> list[Optimizer]:
        # Called once the weights are on their device: the slices below are views of them.
        self._groups, start = [], 0
        key = lambda c: (c.name, sorted(c.hparams.items()))  # noqa: E731
        for (name, hparams), members in groupby(self.cell_optimizers, key=key):
            where = slice(start, start + len(list(members)))
            views = [nn.Parameter(p.data[where]) for p in self.model.parameters()]
            lrs = {c.lr for c in self.cell_optimizers[where]}
            lr = lrs.pop() if len(lrs) == 1 else None  # one lr: the optimizer runs at it
            optimizer = OPTIMIZERS.create(
                name, views, lr=1.0 if lr is None else lr, **dict(hparams)
            )
            self._groups.append(_Group(where, optimizer, views, lr))
            start = where.stop
        # Cells of a group whose lrs differ step at lr 1 and have their update scaled
        # by their lr afterwards; the others' updates are left as they are (weight 1).
        weight = [
            c.lr if g.lr is None else 1.0
            for g in self._groups
            for c in self.cell_optimizers[g.where]
        ]
        self._weight = torch.tensor(weight, device=self.model.weights[0].device).view(-1, 1, 1)
        self._rescale = any(g.lr is None for g in self._groups)
        return [g.optimizer for g in self._groups]

    def _optimizer_step(self) -> None:
        """Every group's step; then one rescale of all cells if some group's lrs differ."""
        assert self._multiplier is not None
        multiplier = self._multiplier(self._steps)
        stacked = list(self.model.parameters())
        before = [p.detach().clone() for p in stacked] if self._rescale else []
        for group in self._groups:
            for view, p in zip(group.views, stacked, strict=True):
                view.grad = p.grad[group.where]
            for options in group.optimizer.param_groups:  # the schedule, as LambdaLR sets it
                options["lr"] = (1.0 if group.lr is None else group.lr) * multiplier
            group.optimizer.step()
        if self._rescale:
            for p, old in zip(stacked, before, strict=True):
                p.data.copy_(old.lerp_(p.data, self._weight))  # old + lr*(step at lr*multiplier)

    # -- training: one Lightning step per epoch ------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def training_step(self, epoch: InMemoryLoader, batch_idx: int) -> None:
        if self._multiplier is None:
            self._multiplier = self.multiplier_factory(len(epoch), self.trainer.max_epochs)
        x, y = epoch.x, epoch.y  # every cell's data is the same; only the order differs
        orders = [loader.order() for loader in self.loaders]
        ids = torch.arange(len(x), device=x.device)
        order = torch.stack([ids if o is None else o.to(x.device) for o in orders])
        for sl in epoch.slices():
            idx = order[:, sl]  # (K, B): each cell's own batch
            self._train_step(x[idx], y[idx])

    def _train_step(self, x: Tensor, y: Tensor) -> None:
        """One step of every cell, on inputs (K, B, ...) and targets (K, B, ...)."""
        out = self.model(x)
        losses = self.loss.stacked(out, y)
        self._accumulate("train", out, y, losses)
        for p in self.model.parameters():
            p.grad = None
        losses.sum().backward()  # each cell's gradient is its own loss's
        self._optimizer_step()
        self._steps += 1

    # -- evaluation: every cell on the same full batch -----------------------------------
    def _evaluate(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        k = self.model.k
        xs, ys = x.expand(k, *x.shape), y.expand(k, *y.shape)
        out = self.model(xs)
        self._accumulate(stage, out, ys, self.loss.stacked(out, ys))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    # -- per-epoch metrics, per cell -----------------------------------------------------
    def _accumulate(self, stage: str, out: Tensor, y: Tensor, losses: Tensor) -> None:
        correct = (out.argmax(dim=-1) == y).sum(dim=1) if self.classification else None
        self._batches.setdefault(stage, []).append((losses.detach(), out.shape[1], correct))

    def _epoch_metrics(self, stage: str) -> list[tuple[dict[str, float], int | None]]:
        batches = self._batches.pop(stage, [])
        return summarize_epoch(stage, batches) if batches else []

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log([metrics for metrics, _ in self._epoch_metrics("val")])

    def on_train_epoch_end(self) -> None:
        seconds = time.perf_counter() - self._epoch_start
        steps = len(self._batches.get("train", []))
        summary = self._epoch_metrics("train")
        self._log([{**metrics, "time/epoch_s": seconds} for metrics, _ in summary])
        for k, (_, first_bad) in enumerate(summary):
            if first_bad is not None and self.diverged[k] is None:
                self.diverged[k] = (self.current_epoch, self._steps - steps + first_bad)
        if all(d is not None for d in self.diverged):
            self.trainer.should_stop = True

    def on_test_epoch_end(self) -> None:
        self._log([metrics for metrics, _ in self._epoch_metrics("test")])

    def _log(self, per_cell: list[dict[str, float]]) -> None:
        for k, metrics in enumerate(per_cell):
            for key, value in metrics.items():
                self.history[k].setdefault(key, []).append(value)
            if self.loggers_per_cell:
                self.loggers_per_cell[k].log_metrics(metrics, step=self.current_epoch)
