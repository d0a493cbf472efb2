"""Self-supervised pre-training: a supervised system whose targets come from a pretext task.

The task module (``components.pretext``: context prediction or SimCLR) turns each batch
of images into ``(logits, targets)``; everything else (cross-entropy, optimizer,
schedule, regularizer, divergence handling, per-epoch metrics) is ``SupervisedSystem``'s.
``val/acc`` is the pretext's own accuracy: the right neighbour position out of 8, or the
partner view out of the 2N - 1 others. The labels of the dataset are never read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from dlbench.components.pretext import View
from dlbench.systems.supervised import SupervisedSystem


class PretextSystem(SupervisedSystem):
    """``model.encoder`` + ``task`` trained on the task; ``model.head`` is left untouched."""

    def __init__(self, model: nn.Module, task: nn.Module, loss: nn.Module, *, seed: int, **kwargs):
        super().__init__(model, loss, classification=True, **kwargs)
        self.task, self.seed = task, seed
        # Patch positions come from this generator, so a cell's draws depend on its seed only.
        self._draws = torch.Generator().manual_seed(seed)

    def _step(self, stage: str, batch: tuple[Tensor, Tensor]) -> Tensor:
        images, _ = batch
        logits, targets = self.task(self.model.encoder, images, self._view(), self._draws)
        loss = self.loss(logits, targets)
        self._accumulate(stage, logits, targets, loss)
        return loss

    def _view(self) -> View | None:
        """The study's augmentation as an image -> image map (a pretext has no labels)."""
        if self.augmentation is None:
            return None
        augment = self.augmentation
        return lambda x: augment(x, torch.zeros(len(x), dtype=torch.long, device=x.device))[0]

    @contextlib.contextmanager
    def _fixed_draws(self, batch_idx: int) -> Iterator[None]:
        """Held-out batch ``batch_idx`` gets the same patches and views at every epoch, and
        training's random streams are left where they were: val/acc moves with the weights."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        train_draws = self._draws
        fixed = self.seed * 100_003 + batch_idx  # distinct per (seed, batch)
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(fixed)
            self._draws = torch.Generator().manual_seed(fixed)
            try:
                yield
            finally:
                self._draws = train_draws

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        with self._fixed_draws(batch_idx):
            super().validation_step(batch, batch_idx)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        with self._fixed_draws(batch_idx):
            super().test_step(batch, batch_idx)
