"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download.

Split once, stratified and with a fixed seed, into train/val/test (60/20/20), so
every run of every study sees the same three sets. Pixels are standardized with
the training set's per-pixel mean and std (pixels that are constant in training
get std 1), the notes' "normalization with training statistics".
"""

from __future__ import annotations

from typing import Literal

import lightning as L
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dlbench.data.memory import InMemoryLoader

SPLIT_SEED = 0  # fixed on purpose: the split is part of the problem, not of the run
Layout = Literal["flat", "image", "sequence"]


def digits_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fixed stratified 60/20/20 split as float32 features in [0, 16] and int64 labels."""
    x, y = load_digits(return_X_y=True)
    x, y = x.astype(np.float32), y.astype(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=0.4, stratify=y, random_state=SPLIT_SEED
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=SPLIT_SEED
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


class DigitsDataModule(L.LightningDataModule):
    """The digits as flat 64-vectors, 1x8x8 images or 8-step row sequences."""

    num_classes = 10

    def __init__(self, *, batch_size: int | None = 64, layout: Layout = "flat", seed: int = 0):
        super().__init__()
        self.layout, self.seed = layout, seed
        splits = digits_splits()
        mean = splits["train"][0].mean(axis=0)
        std = splits["train"][0].std(axis=0)
        std[std == 0] = 1.0
        self.tensors = {
            name: (torch.from_numpy(self._shape((x - mean) / std)), torch.from_numpy(y))
            for name, (x, y) in splits.items()
        }
        # None means full batch: the whole training set in one step (gradient descent).
        self.batch_size = batch_size or len(self.tensors["train"][0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.tensors["train"][0].shape[1:])

    def _shape(self, x: np.ndarray) -> np.ndarray:
        if self.layout == "image":
            return x.reshape(-1, 1, 8, 8)
        if self.layout == "sequence":
            return x.reshape(-1, 8, 8)
        return x

    def _loader(self, split: str) -> InMemoryLoader:
        x, y = self.tensors[split]
        if split == "train":
            loader = InMemoryLoader(x, y, self.batch_size, shuffle=True, seed=self.seed)
        else:  # evaluation results do not depend on batching, so use one batch
            loader = InMemoryLoader(x, y, len(x))
        return loader.to(self.trainer.strategy.root_device) if self.trainer else loader

    def train_dataloader(self) -> InMemoryLoader:
        return self._loader("train")

    def val_dataloader(self) -> InMemoryLoader:
        return self._loader("val")

    def test_dataloader(self) -> InMemoryLoader:
        return self._loader("test")
