"""An in-memory data module as Lightning's ``LightningDataModule``, for a Trainer.

The data modules themselves (``data.base``) do not import Lightning, so building a cell
(validation builds every one) stays cheap; the engine wraps the first member's here.
"""

from __future__ import annotations

import lightning as L

from dlbench.data.base import InMemoryDataModule
from dlbench.data.memory import Epochs, InMemoryLoader


class LightningData(L.LightningDataModule):
    """``data``'s splits on the trainer's device: one item per training epoch (the epoch's
    loader), validation and test as one batch each."""

    def __init__(self, data: InMemoryDataModule):
        super().__init__()
        self.data = data

    def prepare_data(self) -> None:
        self.data.prepare_data()

    def setup(self, stage: str) -> None:
        self.data.setup(stage)

    def _loader(self, split: str) -> InMemoryLoader:
        return self.data.loader(split, self.trainer.strategy.root_device if self.trainer else None)

    def train_dataloader(self) -> Epochs:
        return Epochs(self._loader("train"))  # one item per epoch: the epoch itself

    def val_dataloader(self) -> InMemoryLoader:
        return self._loader("val")

    def test_dataloader(self) -> InMemoryLoader:
        return self._loader("test")
