"""What a problem is: data + model + default loss, metric and budget (DeepOBS "test problems").

A problem factory takes the batch size, the run seed and the regularizer's dropout
rate positionally (they come from other settings) and its model settings as
keyword-only arguments; those keywords, with their defaults, are exactly the
problem's own settings in a study file. Registry flags hold the task, the input
shape (what augmentations and norms are checked against) and the default budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
from torch import nn

from dlbench.registry import Named, Registry


@dataclass
class Setup:
    """What one training run needs from its problem.

    ``reconstruct``: the target is the input. ``pretext``: a pretext task module
    (``components.pretext``) to train ``model.encoder`` on instead of the labels.
    ``encoder``: where a downstream run's ``model.encoder`` weights come from: "random"
    (as initialized), a pretext name (that pretext's run with the same seed in study
    ``encoder_study``) or an MLflow run id; the harness fetches them before training.
    """

    datamodule: L.LightningDataModule
    model: nn.Module
    reconstruct: bool = False
    pretext: nn.Module | None = None
    encoder: str = "random"
    encoder_study: str = ""


PROBLEMS: Registry[Setup] = Registry("problem")

# Default budgets: small enough that a cell takes seconds on a laptop CPU (the
# embedded problems) or about a minute on one GPU (MNIST, Fashion-MNIST, CIFAR-10).
_CLASSIFY = {"metric": "val/acc", "direction": "maximize"}
_REGRESS = {"metric": "val/loss", "direction": "minimize"}


def budget(
    loss: str, lr: float, epochs: int, batch_size: int | str, optimizer: str = "sgd"
) -> dict:
    return {
        "loss": loss,
        "optimizer": optimizer,
        "lr": lr,
        "epochs": epochs,
        "batch_size": batch_size,
    }


def problem(
    name: Named,
    description: str,
    *,
    task: str,
    input_shape: tuple[int, ...],
    budget: dict[str, Any],
) -> Callable[[Callable[..., Setup]], Callable[..., Setup]]:
    """Register a problem with its task, input shape and default budget."""
    reconstruction = task == "reconstruction"
    return PROBLEMS.register(
        name,
        description=description,
        task="regression" if reconstruction else task,
        input_shape=input_shape,
        objective=_CLASSIFY if task == "classification" else _REGRESS,
        budget=budget,
    )
