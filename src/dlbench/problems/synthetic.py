"""Problems on generated data: trend regression, polynomial fitting, two moons."""

from __future__ import annotations

from dlbench.data import (
    PolynomialDataModule,
    TrendDataModule,
    TwoMoonsDataModule,
)
from dlbench.models import (
    MLP,
    LinearRegression,
)
from dlbench.problems.base import NO_HIDDEN, Setup, budget, inert, problem
from dlbench.registry import Named


@problem(
    "regression_linear",
    "noisy linear trend y = 2t + 1 (the notes' stock-price example), linear regression, MSE",
    task="regression",
    input_shape=(1,),
    budget=budget("mse", 0.1, 50, 32),
)
def regression_linear(
    batch_size: int | None, seed: int, dropout: float, /, *, init: Named = "default"
) -> Setup:
    inert("regression_linear", "has no dropout layer (it is one linear layer)", dropout)
    return Setup(TrendDataModule(batch_size=batch_size, seed=seed), LinearRegression(1, init=init))


@problem(
    "polynomial_mlp",
    "cubic polynomial + noise, MLP regressor, MSE (universal approximation)",
    task="regression",
    input_shape=(1,),
    budget=budget("mse", 0.01, 50, 32, "adam"),
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
    if depth == 0:
        inert("polynomial_mlp", NO_HIDDEN, dropout, activation=activation, norm=norm)
    model = MLP(
        1, 1, width=width, depth=depth, activation=activation, norm=norm, init=init, dropout=dropout
    )
    return Setup(PolynomialDataModule(batch_size=batch_size, seed=seed), model)


@problem(
    "moons_mlp",
    "two interleaving half-moons (2-D, 2 classes), MLP classifier, cross-entropy",
    task="classification",
    input_shape=(2,),
    budget=budget("cross_entropy", 0.1, 30, 32),
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
    if depth == 0:
        inert("moons_mlp", NO_HIDDEN, dropout, activation=activation, norm=norm)
    model = MLP(
        2, 2, width=width, depth=depth, activation=activation, norm=norm, init=init, dropout=dropout
    )
    return Setup(TwoMoonsDataModule(batch_size=batch_size, seed=seed), model)
