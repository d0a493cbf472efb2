"""Supervised training of any model with any loss, optimizer and training components.

A LightningModule built from plain parts: the model, the loss, a regularizer (penalty,
post-step decay, weight noise), an augmentation (training batches only) and an
optional LR scheduler factory. Metrics are per epoch (the unit every report plots):
``train/loss``, ``val/loss``, ``val/acc`` (classification), then ``test/*``. Per-step
values stay on the device and are read once an epoch, so training never waits on a
host-device synchronisation.

One Lightning training step is one whole epoch (the data module hands over the
epoch's ``InMemoryLoader``, ``data.base``): the system runs the epoch's optimizer
steps itself (manual optimization), so Lightning's per-step hooks and closures run
once an epoch. A small model's step costs less than that machinery; epoch-level
hooks, callbacks and validation are Lightning's as before. Epoch metrics go straight to
``history`` and the logger; Lightning's ``log`` carries only what a callback monitors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from dlbench.components import OPTIMIZERS
from dlbench.components.augmentations import Augmentation
from dlbench.components.regularizers import Regularizer
from dlbench.data.memory import InMemoryLoader

# (optimizer, steps_per_epoch, epochs) -> a scheduler stepped after every optimizer step
SchedulerFactory = Callable[[Optimizer, int, int], LRScheduler]
# One batch's loss, size and correct predictions (None unless classifying), left on the
# device; a loss and count of each model when K models are stacked (systems.stacked).
Batch = tuple[Tensor, int, Tensor | None]


def summarize_epoch(stage: str, batches: list[Batch]) -> list[tuple[dict[str, float], int | None]]:
    """Per model (one, or K stacked): the stage's epoch metrics, and the index of its first
    batch whose loss was not finite (None if none). One host-device sync for all."""
    losses = torch.stack([loss for loss, _, _ in batches]).float().reshape(len(batches), -1)
    sizes = torch.tensor([n for _, n, _ in batches], device=losses.device)[:, None]
    at = torch.arange(len(batches), device=losses.device)[:, None]
    parts = [(losses * sizes).sum(0), torch.where(losses.isfinite(), len(batches), at).amin(0)]
    classification = batches[0][2] is not None
    if classification:
        parts.append(torch.stack([c for _, _, c in batches]).reshape(len(batches), -1).sum(0))
    got = torch.stack([part.float() for part in parts]).tolist()
    n = sum(n for _, n, _ in batches)
    summary = []
    for i in range(losses.shape[1]):
        metrics = {f"{stage}/loss": got[0][i] / n}
        if classification:
            metrics[f"{stage}/acc"] = got[2][i] / n
        first_bad = int(got[1][i])
        summary.append((metrics, first_bad if first_bad < len(batches) else None))
    return summary


class SupervisedSystem(L.LightningModule):
    """model + loss + optimizer (+ regularizer, augmentation, schedule)."""

    automatic_optimization = False  # training_step runs a whole epoch of steps itself

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        *,
        optimizer: str,
        lr: float,
        optimizer_hparams: dict[str, Any] | None = None,
        classification: bool = True,
        reconstruct: bool = False,
        regularizer: Regularizer | None = None,
        augmentation: Augmentation | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        super().__init__()
        self.model, self.loss = model, loss
        self.optimizer_name, self.lr = optimizer, lr
        self.optimizer_hparams = dict(optimizer_hparams or {})
        self.classification, self.reconstruct = classification, reconstruct
        self.regularizer = regularizer or Regularizer()
        self.augmentation, self.scheduler_factory = augmentation, scheduler
        # Per batch, per stage: (loss, batch size, correct), kept on the device and read
        # once per epoch (``_epoch_metrics``), so training never waits on the host.
        self._batches: dict[str, list[Batch]] = {}
        self._penalized = type(self.regularizer).penalty is not Regularizer.penalty
        self._epoch_start = 0.0
        self._scheduler: LRScheduler | None = None  # built at the first epoch, from its length
        self._steps = 0  # optimizer steps before this epoch
        # Where the training loss first was not finite; training stops at the end of that
        # epoch. A diverged run is a result (outcome ``diverged``), not a crash.
        self.diverged_epoch: int | None = None
        self.diverged_step: int | None = None
        self.history: dict[str, list[float]] = {}  # metric -> value per epoch, as logged
        self._monitored: set[str] = set()  # metrics Lightning callbacks watch (on_fit_start)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def configure_optimizers(self) -> Optimizer:
        # Frozen parameters (a transferred encoder's, ``EncoderClassifier.freeze``) are
        # left out, so no optimizer state or decoupled weight decay ever touches them.
        trainable = [p for p in self.parameters() if p.requires_grad]
        return OPTIMIZERS.create(
            self.optimizer_name, trainable, lr=self.lr, **self.optimizer_hparams
        )

    # -- per-batch values on the device, read once per epoch ---------------------------
    def _accumulate(self, stage: str, out: Tensor, y: Tensor, loss: Tensor) -> None:
        correct = None
        if self.classification:
            labels = y.argmax(dim=1) if y.is_floating_point() else y  # soft labels (mixup)
            correct = (out.argmax(dim=1) == labels).sum()
        self._batches.setdefault(stage, []).append((loss.detach(), len(out), correct))

    def _epoch_metrics(self, stage: str) -> tuple[dict[str, float], int | None]:
        batches = self._batches.pop(stage, [])
        return summarize_epoch(stage, batches)[0] if batches else ({}, None)

    def _step(self, stage: str, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        if self.reconstruct:
            y = x
        elif stage == "train" and self.augmentation is not None:
            x, y = self.augmentation(x, y)
        out = self.model(x)
        loss = self.loss(out, y)
        self._accumulate(stage, out, y, loss)
        return loss

    # -- hooks ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def training_step(self, epoch: InMemoryLoader, batch_idx: int) -> None:
        """One epoch: every batch's forward, backward, optimizer and schedule step."""
        optimizer = self.optimizers().optimizer  # torch's own, without Lightning's wrapper
        if self._scheduler is None and self.scheduler_factory is not None:
            self._scheduler = self.scheduler_factory(optimizer, len(epoch), self.trainer.max_epochs)
        for batch in epoch:
            self._train_step(batch, optimizer)

    def _train_step(self, batch: tuple[Tensor, Tensor], optimizer: Optimizer) -> None:
        optimizer.zero_grad()
        # Weight noise stays on through forward and backward; it is lifted before the step.
        with self.regularizer.perturb(self.model):
            loss = self._step("train", batch)
            if self._penalized:
                loss = loss + self.regularizer.penalty(self.model)
            loss.backward()
        lr = optimizer.param_groups[0]["lr"]  # the lr this step is taken with
        optimizer.step()
        if self._scheduler is not None:
            self._scheduler.step()
        self.regularizer.after_step(self.model, lr)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("test", batch)

    def on_validation_epoch_end(self) -> None:
        metrics, _ = self._epoch_metrics("val")
        if not self.trainer.sanity_checking:
            self._log(metrics)

    def on_train_epoch_end(self) -> None:
        steps = len(self._batches.get("train", []))
        metrics, first_bad = self._epoch_metrics("train")
        metrics["time/epoch_s"] = time.perf_counter() - self._epoch_start
        self._log(metrics)
        if first_bad is not None and self.diverged_epoch is None:
            self.diverged_epoch, self.diverged_step = self.current_epoch, self._steps + first_bad
            self.trainer.should_stop = True
        self._steps += steps

    def on_test_epoch_end(self) -> None:
        self._log(self._epoch_metrics("test")[0])

    def on_fit_start(self) -> None:
        # What Lightning's own callbacks (early stopping) watch; see ``_log``.
        self._monitored = {getattr(c, "monitor", None) for c in self.trainer.callbacks} - {None}

    def _log(self, metrics: dict[str, float]) -> None:
        """Into ``history`` and the logger (MLflow: step = epoch) directly; through
        Lightning's ``log`` (about 0.2 ms a metric) only what a callback monitors."""
        if not metrics:
            return
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=self.current_epoch)
        watched = {k: v for k, v in metrics.items() if k in self._monitored}
        if watched:
            self.log_dict(watched, logger=False)
