"""Named problems: data + model + default loss, metric and budget (DeepOBS "test problems").

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

from dlbench.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    PolynomialDataModule,
    TrendDataModule,
    TwoMoonsDataModule,
)
from dlbench.models import (
    CNN,
    MLP,
    AutoEncoder,
    LinearRegression,
    ResNet,
    SequenceModel,
    SoftmaxRegression,
)
from dlbench.registry import Named, Registry


@dataclass
class Setup:
    """What one training run needs from its problem; ``reconstruct``: the target is the input."""

    datamodule: L.LightningDataModule
    model: nn.Module
    reconstruct: bool = False


PROBLEMS: Registry[Setup] = Registry("problem")

# Default budgets: small enough that a cell takes seconds on a laptop CPU (the
# embedded problems) or about a minute on one GPU (MNIST, Fashion-MNIST, CIFAR-10).
_CLASSIFY = {"metric": "val/acc", "direction": "maximize"}
_REGRESS = {"metric": "val/loss", "direction": "minimize"}


def _budget(
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


@problem(
    "regression_linear",
    "noisy linear trend y = 2t + 1 (the notes' stock-price example), linear regression, MSE",
    task="regression",
    input_shape=(1,),
    budget=_budget("mse", 0.1, 50, 32),
)
def regression_linear(
    batch_size: int | None, seed: int, dropout: float, /, *, init: Named = "default"
) -> Setup:
    return Setup(TrendDataModule(batch_size=batch_size, seed=seed), LinearRegression(1, init=init))


@problem(
    "polynomial_mlp",
    "cubic polynomial + noise, MLP regressor, MSE (universal approximation)",
    task="regression",
    input_shape=(1,),
    budget=_budget("mse", 0.01, 50, 32, "adam"),
)
def polynomial_mlp(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    width: int = 32,
    depth: int = 2,
    activation: Named = "tanh",
    norm: Named = "none",
    init: Named = "default",
) -> Setup:
    model = MLP(
        1, 1, width=width, depth=depth, activation=activation, norm=norm, init=init, dropout=dropout
    )
    return Setup(PolynomialDataModule(batch_size=batch_size, seed=seed), model)


@problem(
    "moons_mlp",
    "two interleaving half-moons (2-D, 2 classes), MLP classifier, cross-entropy",
    task="classification",
    input_shape=(2,),
    budget=_budget("cross_entropy", 0.1, 30, 32),
)
def moons_mlp(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    width: int = 16,
    depth: int = 2,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
) -> Setup:
    model = MLP(
        2, 2, width=width, depth=depth, activation=activation, norm=norm, init=init, dropout=dropout
    )
    return Setup(TwoMoonsDataModule(batch_size=batch_size, seed=seed), model)


@problem(
    "digits_linear",
    "8x8 digits (embedded), softmax regression (one linear layer), cross-entropy",
    task="classification",
    input_shape=(64,),
    budget=_budget("cross_entropy", 0.1, 20, 64),
)
def digits_linear(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    init: Named = "default",
    preprocessing: Named = "standardize",
) -> Setup:
    return Setup(
        DigitsDataModule(batch_size=batch_size, seed=seed, preprocessing=preprocessing),
        SoftmaxRegression(64, 10, init=init),
    )


@problem(
    "digits_mlp",
    "8x8 digits (embedded, 1,797 images), MLP classifier, cross-entropy",
    task="classification",
    input_shape=(64,),
    budget=_budget("cross_entropy", 0.1, 20, 64),
)
def digits_mlp(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    width: int = 64,
    depth: int = 2,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "standardize",
    train_size: int | str = "full",
) -> Setup:
    model = MLP(
        64,
        10,
        width=width,
        depth=depth,
        activation=activation,
        norm=norm,
        init=init,
        dropout=dropout,
    )
    return Setup(
        DigitsDataModule(
            batch_size=batch_size,
            seed=seed,
            preprocessing=preprocessing,
            train_size=train_size,
        ),
        model,
    )


@problem(
    "digits_cnn",
    "8x8 digits as 1x8x8 images, CNN (conv-norm-act-pool x2), cross-entropy",
    task="classification",
    input_shape=(1, 8, 8),
    budget=_budget("cross_entropy", 0.05, 15, 64),
)
def digits_cnn(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    channels: int = 16,
    pool: str = "max",
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "standardize",
    train_size: int | str = "full",
) -> Setup:
    model = CNN(
        1,
        10,
        image_size=8,
        channels=(channels, 2 * channels),
        pool=pool,
        activation=activation,
        norm=norm,
        init=init,
        dropout=dropout,
    )
    return Setup(
        DigitsDataModule(
            batch_size=batch_size,
            layout="image",
            seed=seed,
            preprocessing=preprocessing,
            train_size=train_size,
        ),
        model,
    )


@problem(
    "digits_rnn",
    "8x8 digits read row by row (8 steps of 8 pixels), RNN/LSTM/GRU, cross-entropy",
    task="classification",
    input_shape=(8, 8),
    budget=_budget("cross_entropy", 0.01, 20, 64, "adam"),
)
def digits_rnn(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    cell: str = "lstm",
    hidden: int = 64,
    layers: int = 1,
    preprocessing: Named = "standardize",
) -> Setup:
    model = SequenceModel(8, 10, cell=cell, hidden=hidden, layers=layers)
    return Setup(
        DigitsDataModule(
            batch_size=batch_size, layout="sequence", seed=seed, preprocessing=preprocessing
        ),
        model,
    )


@problem(
    "digits_autoencoder",
    "8x8 digits, AutoEncoder 64-32-8-32-64, reconstruction MSE",
    task="reconstruction",
    input_shape=(64,),
    budget=_budget("mse", 0.01, 20, 64, "adam"),
)
def digits_autoencoder(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    code: int = 8,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "standardize",
) -> Setup:
    model = AutoEncoder(64, hidden=(32,), code=code, activation=activation, norm=norm, init=init)
    return Setup(
        DigitsDataModule(batch_size=batch_size, seed=seed, preprocessing=preprocessing),
        model,
        reconstruct=True,
    )


@problem(
    "mnist_mlp",
    "MNIST (torchvision, downloads to data/), MLP classifier, cross-entropy",
    task="classification",
    input_shape=(784,),
    budget=_budget("cross_entropy", 0.1, 10, 128),
)
def mnist_mlp(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    width: int = 256,
    depth: int = 2,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
) -> Setup:
    model = MLP(
        784,
        10,
        width=width,
        depth=depth,
        activation=activation,
        norm=norm,
        init=init,
        dropout=dropout,
    )
    return Setup(MNISTDataModule(batch_size=batch_size, seed=seed), model)


@problem(
    "fmnist_cnn",
    "Fashion-MNIST (torchvision, downloads to data/), CNN, cross-entropy",
    task="classification",
    input_shape=(1, 28, 28),
    budget=_budget("cross_entropy", 0.05, 10, 128),
)
def fmnist_cnn(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    channels: int = 32,
    pool: str = "max",
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
) -> Setup:
    model = CNN(
        1,
        10,
        image_size=28,
        channels=(channels, 2 * channels),
        pool=pool,
        activation=activation,
        norm=norm,
        init=init,
        dropout=dropout,
    )
    return Setup(FashionMNISTDataModule(batch_size=batch_size, layout="image", seed=seed), model)


@problem(
    "cifar10_resnet",
    "CIFAR-10 (torchvision, downloads to data/), small ResNet, cross-entropy",
    task="classification",
    input_shape=(3, 32, 32),
    budget=_budget("cross_entropy", 0.05, 20, 128, "nesterov"),
)
def cifar10_resnet(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    blocks_per_stage: int = 2,
    activation: Named = "relu",
    norm: Named = "batchnorm",
    init: Named = "default",
) -> Setup:
    model = ResNet(
        3, 10, blocks_per_stage=blocks_per_stage, activation=activation, norm=norm, init=init
    )
    return Setup(CIFAR10DataModule(batch_size=batch_size, layout="image", seed=seed), model)
