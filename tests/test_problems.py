"""Every registered problem: builds, declares its task and shape, and its model fits its data."""

from __future__ import annotations

import pytest
import torch

from dlbench.harness.spec import metrics_of
from dlbench.problems import PROBLEMS

EXPECTED = {
    "regression_linear",
    "polynomial_mlp",
    "moons_mlp",
    "digits_linear",
    "digits_mlp",
    "digits_cnn",
    "digits_rnn",
    "digits_autoencoder",
    "mnist_mlp",
    "fmnist_cnn",
    "cifar10_resnet",
}


def test_the_named_problems_are_registered() -> None:
    assert set(PROBLEMS.names()) >= EXPECTED


@pytest.mark.parametrize("name", PROBLEMS.names())
def test_problem_contract(name: str) -> None:
    entry = PROBLEMS.get(name)
    assert entry.description and entry.flags["task"] in ("classification", "regression")
    budget = entry.flags["budget"]
    assert {"loss", "optimizer", "lr", "epochs", "batch_size"} <= set(budget)
    assert entry.flags["objective"]["metric"] in metrics_of([entry])
    setup = PROBLEMS.create(name, 4, 0, 0.0)
    x = torch.randn(4, *entry.flags["input_shape"])
    out = setup.model(x)
    if setup.reconstruct:
        assert out.shape == x.shape
    elif entry.flags["task"] == "classification":
        assert out.shape == (4, setup.datamodule.num_classes)
    else:
        assert out.shape == (4, 1)


@pytest.mark.parametrize("name", ["regression_linear", "moons_mlp", "digits_cnn", "digits_rnn"])
def test_embedded_problem_data_matches_its_declared_shape(name: str) -> None:
    entry = PROBLEMS.get(name)
    setup = PROBLEMS.create(name, 8, 0, 0.0)
    x, y = next(iter(setup.datamodule.loader("train")))
    assert tuple(x.shape[1:]) == entry.flags["input_shape"] and len(x) == 8
    assert setup.model(x).shape[0] == 8
