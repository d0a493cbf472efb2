"""Data modules: embedded digits, generated MNIST-1D, seeded synthetic problems,
torchvision datasets.

All serve in-memory tensors through ``InMemoryLoader`` (no DataLoader workers).
"""

from dlbench.data.base import InMemoryDataModule
from dlbench.data.digits import DigitsDataModule
from dlbench.data.memory import InMemoryLoader
from dlbench.data.mnist1d import MNIST1DDataModule
from dlbench.data.synthetic import (
    AddingProblemDataModule,
    PolynomialDataModule,
    SpiralsDataModule,
    TrendDataModule,
    TwoMoonsDataModule,
    XorDataModule,
)
from dlbench.data.vision import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "AddingProblemDataModule",
    "CIFAR10DataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "InMemoryDataModule",
    "InMemoryLoader",
    "MNIST1DDataModule",
    "MNISTDataModule",
    "PolynomialDataModule",
    "SpiralsDataModule",
    "TrendDataModule",
    "TwoMoonsDataModule",
    "XorDataModule",
]
