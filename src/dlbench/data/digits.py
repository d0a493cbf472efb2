"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download.

Split once, stratified and with a fixed seed, into train/val/test (60/20/20), so
every run of every study sees the same three sets. Pixels are then preprocessed
with training statistics only: standardized by default (per-pixel mean and std;
pixels constant in training get std 1), or zero-centred, or left raw.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dlbench.components.preprocessing import PREPROCESSING
from dlbench.data import cache as disk
from dlbench.data.base import InMemoryDataModule, Layout
from dlbench.errors import ConfigError
from dlbench.registry import Named

SPLIT_SEED = 0  # fixed on purpose: the split is part of the problem, not of the run


@cache
def digits_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fixed stratified 60/20/20 split as float32 features in [0, 16] and int64 labels.

    Cached in the process and on disk (``data.cache``, keyed by the split seed and the
    scikit-learn version that made it): a later process reads it in milliseconds instead
    of importing scikit-learn (0.8 s). Callers must not modify the arrays.
    """
    path = disk.cache_dir() / f"digits-split{SPLIT_SEED}-sklearn{version('scikit-learn')}.npz"
    names = [f"{part}_{split}" for split in ("train", "val", "test") for part in "xy"]
    stored = disk.read(path, names)
    if stored is None:
        stored = _split()
        disk.write(path, stored, "the digits split")
    return {
        split: (stored[f"x_{split}"], stored[f"y_{split}"]) for split in ("train", "val", "test")
    }


def _split() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x, y = x.astype(np.float32), y.astype(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=0.4, stratify=y, random_state=SPLIT_SEED
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=SPLIT_SEED
    )
    split = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    return {f"{part}_{name}": xy["xy".index(part)] for name, xy in split.items() for part in "xy"}


def train_subset(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified subset of ``size`` training examples, the same for every run and seed.

    Fixed by ``SPLIT_SEED`` like the split itself: a smaller training set is a different
    problem, and arms compared on it must see the same examples. Preprocessing statistics
    then come from the subset alone, as they would for a user who only has that much data.
    """
    keep = subset_indices(y, size, "train_size")
    return x[keep], y[keep]


def subset_indices(y: np.ndarray, size: int, key: str) -> np.ndarray:
    """Sorted indices of a stratified subset of ``size`` of the labels ``y``; nested: a
    larger subset contains every smaller one. ``key`` names the setting in errors."""
    classes = len(np.unique(y))
    if not classes <= size <= len(y):
        raise ConfigError(
            f"{key} must be between {classes} (one example per class) and {len(y)} "
            f"(the training split) or 'full', got {size}"
        )
    # Each class gets its share of ``size`` (largest remainders round up), drawn in one
    # fixed random order.
    labels, counts = np.unique(y, return_counts=True)
    exact = size * counts / len(y)
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[: size - quota.sum()]] += 1
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    keep = np.concatenate([order[y[order] == c][:q] for c, q in zip(labels, quota, strict=True)])
    keep.sort()
    return keep


class DigitsDataModule(InMemoryDataModule):
    """The digits as flat 64-vectors, 1x8x8 images (or upsampled to ``image_size``) or
    8-step row sequences.

    ``train_size`` makes a smaller dataset (preprocessed with its own statistics);
    ``labelled`` keeps that fraction of the training labels of the whole dataset
    (preprocessed with the statistics of all its images, as a self-supervised user who has
    every image but few labels would): a fixed, stratified, nested subset, at least one
    example per class."""

    task = "classification"
    num_classes = 10

    def __init__(
        self,
        *,
        batch_size: int | None = 64,
        layout: Layout = "flat",
        seed: int = 0,
        preprocessing: Named = "standardize",
        train_size: int | str = "full",
        labelled: float = 1.0,
        image_size: int = 8,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        self.layout, self.image_size = layout, image_size
        raw = digits_splits()
        if train_size != "full":  # a fixed, stratified subset of that many examples
            raw = {**raw, "train": train_subset(*raw["train"], int(train_size))}
        splits = {name: (torch.from_numpy(x), torch.from_numpy(y)) for name, (x, y) in raw.items()}
        prepared = PREPROCESSING.create(preprocessing)(splits)
        if labelled != 1.0:  # fewer labels of the same data: statistics from all of it
            x, y = prepared["train"]
            count = max(self.num_classes, round(labelled * len(y)))
            keep = torch.from_numpy(subset_indices(y.numpy(), count, "labelled"))
            prepared["train"] = (x[keep], y[keep])
        self.tensors = {name: (self._shape(x), y) for name, (x, y) in prepared.items()}

    def _shape(self, x: Tensor) -> Tensor:
        if self.layout == "image":
            images = x.reshape(-1, 1, 8, 8)
            if self.image_size == 8:
                return images
            # Bilinear upsampling of the preprocessed pixels: room for a grid of patches.
            return F.interpolate(images, size=self.image_size, mode="bilinear")
        if self.layout == "sequence":
            return x.reshape(-1, 8, 8)
        return x
