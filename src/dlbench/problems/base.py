"""What a problem is: data + model + default loss, metric and budget (DeepOBS "test problems").

A problem factory takes the batch size, the run seed and the regularizer's dropout
rate positionally (they come from other settings) and its model settings as
keyword-only arguments; those keywords, with their defaults, are exactly the
problem's own settings in a study file. Registry flags hold the task, the input
shape (what augmentations and norms are checked against) and the default budget.

Every component a factory accepts must act. A factory whose model has no place for
one (no dropout layer for the regularizer's rate, no hidden layer for a norm or an
activation) refuses it with ``inert``: otherwise the cell would train exactly what
the default trains while MLflow records it under the other name. The factory is the
one place that knows what its model can apply, as a timm model builder knows whether
it takes a ``drop_rate``; tests/harness/test_components_act.py holds every problem
and component family to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from dlbench.components import REGULARIZERS
from dlbench.data.base import InMemoryDataModule
from dlbench.errors import ConfigError
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

    datamodule: InMemoryDataModule
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
    sequence: bool = False,
) -> Callable[[Callable[..., Setup]], Callable[..., Setup]]:
    """Register a problem with its task, input shape and default budget. ``sequence``: the
    inputs are (steps, features) sequences, not (C, L) signals, so augmentations of 1-D
    signals refuse them."""
    reconstruction = task == "reconstruction"
    return PROBLEMS.register(
        name,
        description=description,
        task="regression" if reconstruction else task,
        input_shape=input_shape,
        sequence=sequence,
        objective=_CLASSIFY if task == "classification" else _REGRESS,
        budget=budget,
    )


# Why an MLP problem of depth 0 (one linear layer) refuses dropout, a norm or an activation.
NO_HIDDEN = "with depth 0 has no hidden layer (it is one linear layer)"


def inert(problem: str, lacks: str, /, dropout: float = 0.0, **components: Named) -> None:
    """Refuse what problem ``problem``'s model would not apply; ``lacks`` says why.

    A ``dropout`` rate above 0 (the regularizer's, ``Regularizer.dropout``), or any of
    ``components`` (``norm=...``, ``activation=...``: model settings of the problem)
    other than the problem's default, is a ConfigError: "problem 'digits_linear' has
    no dropout layer: regularizer 'dropout' would not act; allowed here: none, l1, ...".
    A default is allowed (it is what the cell trains without the setting).
    """
    if dropout > 0:
        allowed = [e.name for e in REGULARIZERS if not REGULARIZERS.create(e.name).dropout]
        raise ConfigError(
            f"problem {problem!r} {lacks}: regularizer 'dropout' would not act; "
            f"allowed here: {', '.join(allowed)}"
        )
    defaults = PROBLEMS.get(problem).hyperparameters
    for key, value in components.items():
        if str(value) != str(defaults[key]):
            raise ConfigError(
                f"problem {problem!r} {lacks}: {key} {str(value)!r} would not act; "
                f"allowed here: {defaults[key]} (the default)"
            )
