"""Named problems: data + model + loss + metric + default budget (DeepOBS "test problems").

A problem factory takes the batch size and seed positionally and its model/data
settings as keyword-only arguments; those keywords, with their defaults, are
exactly the settings a study file may give for the problem. Registry flags hold the
task, the default objective and the default training budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
from torch import nn

from dlbench.data import DigitsDataModule
from dlbench.models import MLP
from dlbench.registry import Registry


@dataclass
class Setup:
    """Everything one training run needs from its problem."""

    datamodule: L.LightningDataModule
    model: nn.Module
    loss: nn.Module
    classification: bool


PROBLEMS: Registry[Setup] = Registry("problem")


@PROBLEMS.register(
    "digits_mlp",
    description="8x8 digits (embedded, 1,797 images), MLP classifier, cross-entropy",
    task="classification",
    objective={"metric": "val/acc", "direction": "maximize"},
    budget={"optimizer": "sgd", "lr": 0.1, "epochs": 20, "batch_size": 64},
)
def digits_mlp(
    batch_size: int | None,
    seed: int,
    /,
    *,
    width: int = 64,
    depth: int = 2,
    activation: str = "relu",
    norm: str = "none",
    init: str = "default",
) -> Setup:
    data = DigitsDataModule(batch_size=batch_size, layout="flat", seed=seed)
    model = MLP(64, 10, width=width, depth=depth, activation=activation, norm=norm, init=init)
    return Setup(data, model, nn.CrossEntropyLoss(), classification=True)
