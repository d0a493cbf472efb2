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

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator).to(self.x.device)
        else:
            order = None
        for i in range(len(self)):
            sl = slice(i * self.batch_size, min((i + 1) * self.batch_size, n))
            if order is None:
                yield self.x[sl], self.y[sl]
            else:
                idx = order[sl]
                yield self.x[idx], self.y[idx]
