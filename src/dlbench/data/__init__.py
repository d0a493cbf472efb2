"""LightningDataModules for the embedded and synthetic data, and the in-memory loader."""

from dlbench.data.digits import DigitsDataModule
from dlbench.data.memory import InMemoryLoader

__all__ = ["DigitsDataModule", "InMemoryLoader"]
