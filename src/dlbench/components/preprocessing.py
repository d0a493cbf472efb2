"""Input preprocessing: what the notes call zero-centering and normalization.

A preprocessing maps the ``{"train", "val", "test"}`` splits to new splits using
statistics of the *training* split only, so nothing about val or test leaks into
training. Statistics are per feature (per pixel for flat images).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from dlbench.registry import Registry

Splits = dict[str, tuple[Tensor, Tensor]]
Preprocess = Callable[[Splits], Splits]
_BLOCK = 4096  # samples per block when computing statistics: at most ~100 MB in float64


def train_statistics(x: Tensor, dims: tuple[int, ...] = (0,)) -> tuple[Tensor, Tensor]:
    """Mean and (population) std of ``x`` over ``dims``, kept broadcastable against ``x``.

    ``dims=(0,)`` gives per-feature statistics (one per pixel of a flat image),
    ``(0, 2, 3)`` per-channel ones for ``(N, C, H, W)`` images. A feature that is
    constant in training gets std 1: it is centred, never divided by zero.
    """
    # Two passes in float64 (float32 sums over 10^7 pixels lose digits), a block of
    # samples at a time so that a large dataset is never copied whole.
    if 0 not in dims:
        raise ValueError(f"statistics must be taken over the samples (dim 0), got dims {dims}")
    blocks = x.split(_BLOCK)
    count = math.prod(x.shape[d] for d in dims)
    mean = sum(b.sum(dim=dims, keepdim=True, dtype=torch.float64) for b in blocks) / count
    var = sum((b.double() - mean).square_().sum(dim=dims, keepdim=True) for b in blocks) / count
    std = var.sqrt()
    std = torch.where(std == 0, torch.ones_like(std), std)
    return mean.to(x.dtype), std.to(x.dtype)


def standardize(splits: Splits, dims: tuple[int, ...] = (0,), *, inplace: bool = False) -> Splits:
    """Every split's inputs as ``(x - mean) / std`` with the *training* split's statistics.

    Targets are returned unchanged. ``inplace`` overwrites the input tensors instead
    of allocating new ones (for large float datasets the caller owns, such as CIFAR-10
    after its uint8 -> float conversion).
    """
    mean, std = train_statistics(splits["train"][0], dims)
    if inplace:
        return {name: (x.sub_(mean).div_(std), y) for name, (x, y) in splits.items()}
    return {name: ((x - mean) / std, y) for name, (x, y) in splits.items()}


PREPROCESSING: Registry[Preprocess] = Registry("preprocessing")


@PREPROCESSING.register("none", description="Raw inputs, as the dataset stores them")
def none() -> Preprocess:
    return lambda splits: splits


@PREPROCESSING.register(
    "center", description="Zero-centering: subtract the training mean of each feature"
)
def center() -> Preprocess:
    def apply(splits: Splits) -> Splits:
        mean, _ = train_statistics(splits["train"][0])
        return {name: (x - mean, y) for name, (x, y) in splits.items()}

    return apply


@PREPROCESSING.register(
    "standardize",
    description="Standardization: (x - mean) / std per feature, training statistics (constant features: std 1)",
)
def standardization() -> Preprocess:
    return standardize
