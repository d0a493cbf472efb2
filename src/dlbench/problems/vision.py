"""Problems on torchvision datasets (MNIST, Fashion-MNIST, CIFAR-10), downloaded to data/."""

from __future__ import annotations

from dlbench.data import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from dlbench.models import (
    CNN,
    MLP,
    ResNet,
)
from dlbench.problems.base import NO_HIDDEN, Setup, budget, inert, problem
from dlbench.registry import Named


@problem(
    "mnist_mlp",
    "MNIST (torchvision, downloads to data/), MLP classifier, cross-entropy",
    task="classification",
    input_shape=(784,),
    budget=budget("cross_entropy", 0.1, 10, 128),
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
    if depth == 0:
        inert("mnist_mlp", NO_HIDDEN, dropout, activation=activation, norm=norm)
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
    budget=budget("cross_entropy", 0.05, 10, 128),
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
    budget=budget("cross_entropy", 0.05, 20, 128, "nesterov"),
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
    inert("cifar10_resnet", "has no dropout layer (a ResNet)", dropout)
    model = ResNet(
        3, 10, blocks_per_stage=blocks_per_stage, activation=activation, norm=norm, init=init
    )
    return Setup(CIFAR10DataModule(batch_size=batch_size, layout="image", seed=seed), model)
