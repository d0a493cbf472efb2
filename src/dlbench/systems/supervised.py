"""Supervised training of any model with any loss and any registered optimizer.

Metrics are per epoch (the unit every report plots): ``train/loss``, ``val/loss``,
``val/acc`` (classification), then ``test/loss``/``test/acc``. Per-step values are
summed on the device and read once an epoch, so training never waits on a
host-device synchronisation.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from dlbench.components import OPTIMIZERS


class SupervisedSystem(L.LightningModule):
    """model + loss + optimizer; ``task`` decides whether accuracy is measured."""

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        *,
        optimizer: str,
        lr: float,
        optimizer_hparams: dict[str, Any] | None = None,
        classification: bool = True,
    ):
        super().__init__()
        self.model, self.loss = model, loss
        self.optimizer_name, self.lr = optimizer, lr
        self.optimizer_hparams = dict(optimizer_hparams or {})
        self.classification = classification
        self._sums: dict[str, Tensor] = {}
        self._epoch_start = 0.0
        # Epoch whose training loss was not finite; training stops there. A diverged
        # run is a result (outcome ``diverged``), not a crash.
        self.diverged_epoch: int | None = None
        self.history: dict[str, list[float]] = {}  # metric -> value per epoch, as logged

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return OPTIMIZERS.create(
            self.optimizer_name, self.parameters(), lr=self.lr, **self.optimizer_hparams
        )

    # -- accumulation on the device, read once per epoch -------------------------------
    def _accumulate(self, stage: str, out: Tensor, y: Tensor, loss: Tensor) -> None:
        n = torch.tensor(float(len(y)), device=loss.device)
        parts = {"loss": loss.detach() * n, "n": n}
        if self.classification:
            parts["correct"] = (out.argmax(dim=1) == y).sum().to(n.dtype)
        for key, value in parts.items():
            name = f"{stage}/{key}"
            self._sums[name] = self._sums[name] + value if name in self._sums else value

    def _epoch_metrics(self, stage: str) -> dict[str, float]:
        sums = {k.split("/")[1]: v for k, v in self._sums.items() if k.startswith(stage + "/")}
        for key in list(self._sums):
            if key.startswith(stage + "/"):
                del self._sums[key]
        if not sums:
            return {}
        values = torch.stack([sums[k] for k in sorted(sums)]).tolist()  # the one sync
        got = dict(zip(sorted(sums), values, strict=True))
        metrics = {f"{stage}/loss": got["loss"] / got["n"]}
        if "correct" in got:
            metrics[f"{stage}/acc"] = got["correct"] / got["n"]
        return metrics

    def _step(self, stage: str, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        out = self.model(x)
        loss = self.loss(out, y)
        self._accumulate(stage, out, y, loss)
        return loss

    # -- hooks ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step("train", batch)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("test", batch)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._epoch_metrics("val")
            return
        self._log(self._epoch_metrics("val"))

    def on_train_epoch_end(self) -> None:
        metrics = self._epoch_metrics("train")
        metrics["time/epoch_s"] = time.perf_counter() - self._epoch_start
        self._log(metrics)
        if not math.isfinite(metrics.get("train/loss", 0.0)):
            self.diverged_epoch = self.current_epoch
            self.trainer.should_stop = True

    def on_test_epoch_end(self) -> None:
        self._log(self._epoch_metrics("test"))

    def _log(self, metrics: dict[str, float]) -> None:
        # Logging ``step`` makes Lightning use it as the x-axis: MLflow then records
        # every per-epoch metric at step = epoch, which is what reports plot.
        if metrics:
            self.log_dict({**metrics, "step": float(self.current_epoch)})
            for key, value in metrics.items():
                self.history.setdefault(key, []).append(value)
