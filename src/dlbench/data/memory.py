"""A batch iterator over tensors that already sit on the training device.

For datasets that fit in memory a DataLoader's per-sample indexing, collation and
worker processes cost far more than the arithmetic of a small model. This loader
slices whole batches out of preloaded tensors instead: one index tensor per epoch,
one gather per batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor


class InMemoryLoader:
    """Iterate ``(x, y)`` batches; reshuffled each epoch from its own seeded generator.

    The order depends only on ``seed`` and the epoch count, never on global RNG
    state, so the same cell sees the same batches on every run.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        if len(x) == 0:
            raise ValueError("cannot batch an empty dataset")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = min(batch_size, len(x))
        self.shuffle, self.drop_last = shuffle, drop_last
        self._generator = torch.Generator().manual_seed(seed)

    def to(self, device: torch.device | str) -> InMemoryLoader:
        """Move the data once, so batches are sliced on the device itself."""
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self

    def __len__(self) -> int:
        n = len(self.x) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def order(self) -> Tensor | None:
        """The next epoch's sample order (None: the data's own); advances the generator."""
        if not self.shuffle:
            return None
        return torch.randperm(len(self.x), generator=self._generator).to(self.x.device)

    def slices(self) -> list[slice]:
        """Each batch's positions in an epoch's order."""
        n, size = len(self.x), self.batch_size
        return [slice(i * size, min((i + 1) * size, n)) for i in range(len(self))]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.order()
        for sl in self.slices():
            if order is None:
                yield self.x[sl], self.y[sl]
            else:
                idx = order[sl]
                yield self.x[idx], self.y[idx]


class Epochs:
    """What Lightning iterates for training: one item per epoch, the loader itself.

    The system then runs the epoch's batches (``TrainingSystem.training_step``); a
    plain list would not do, as Lightning reads a list as several dataloaders.
    """

    def __init__(self, loader: InMemoryLoader):
        self.loader = loader

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[InMemoryLoader]:
        yield self.loader
