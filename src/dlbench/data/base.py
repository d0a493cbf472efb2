"""What every in-memory DataModule shares: split tensors in, device-resident loaders out.

A subclass only has to fill ``self.tensors`` with ``{"train", "val", "test"}`` ->
``(x, y)`` (in ``__init__`` when building the data is cheap, in ``setup`` when it
means reading files). This base class then serves them through ``InMemoryLoader``
on the trainer's device: training batches of ``batch_size``, reshuffled each epoch
from the run ``seed``; validation and test as one unshuffled batch, since
evaluation results do not depend on batching.

A Trainer gets it through ``data.lightning.LightningData``, which hands Lightning one
item per training epoch: the epoch's ``InMemoryLoader``. The system runs the epoch's
steps itself (``TrainingSystem.training_step``), so Lightning's per-batch machinery
(hooks, closures, fetchers: about 1 ms a step, several times a small model's
arithmetic) runs once an epoch instead of once a step. ``standardize`` (in components.preprocessing) is the notes'
"normalization with training statistics": every split is shifted and scaled by the
training split's mean and std, so no statistic of val or test leaks into training.
"""

from __future__ import annotations

from typing import Literal

import torch

from dlbench.components.preprocessing import Splits
from dlbench.data.memory import InMemoryLoader
from dlbench.errors import ConfigError

Layout = Literal["flat", "image", "channels", "sequence"]  # channels: (1, length) signals
# "classification": class-index int64 targets, one logit per class (cross-entropy), also
# for two classes; "binary" (one logit, BCE, float 0/1 targets) is for problems that
# ask for it, and no bundled DataModule does; "regression": float (N, k) targets.
Task = Literal["regression", "binary", "classification"]
SPLITS = ("train", "val", "test")


class InMemoryDataModule:
    """Train/val/test tensors served by ``InMemoryLoader`` on a device.

    Subclasses set ``task`` and ``num_classes`` (None for regression) and fill
    ``self.tensors``. ``batch_size=None`` means full batch: the whole training set in
    one step, i.e. gradient descent rather than stochastic gradient descent.

    No Lightning here, so validating a study (which builds every cell's data module)
    never imports it: ``data.lightning.LightningData`` hands one to a Trainer.
    """

    task: Task = "classification"
    num_classes: int | None = None

    def __init__(self, *, batch_size: int | None, seed: int):
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 or None (full batch), got {batch_size}")
        self.seed = seed  # the run seed: decides the training order, never the data
        self._batch_size = batch_size
        self.tensors: Splits = {}

    @property
    def batch_size(self) -> int:
        """The training batch size; for full batch, the training set's size (once loaded)."""
        if self._batch_size is not None:
            return self._batch_size
        if "train" not in self.tensors:
            raise RuntimeError("the full-batch size is known only once the data is loaded (setup)")
        return len(self.tensors["train"][0])

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:  # Lightning's batch-size tuner sets it
        self._batch_size = value

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input sample (without the batch dimension)."""
        return tuple(self.tensors["train"][0].shape[1:])

    def prepare_data(self) -> None:
        """Download what ``setup`` reads (once per machine); nothing for embedded data."""

    def setup(self, stage: str | None = None) -> None:
        """Fill ``tensors`` when that means reading files; embedded data does it at once."""

    def loader(self, split: str, device: torch.device | str | None = None) -> InMemoryLoader:
        """``split``'s batches, on ``device`` (where they stay)."""
        if split not in self.tensors:
            raise RuntimeError(f"no {split} data yet: call setup() first (the Trainer does)")
        x, y = self.tensors[split]
        if split == "train":
            loader = InMemoryLoader(x, y, self.batch_size, shuffle=True, seed=self.seed)
        else:  # evaluation results do not depend on batching, so use one batch
            loader = InMemoryLoader(x, y, len(x))
        return loader.to(device) if device is not None else loader
