"""Every registered problem: builds, declares its task and shape, and its model fits its data."""

from __future__ import annotations

import pytest
import torch

from dlbench.errors import ConfigError
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


@pytest.mark.parametrize(
    ("downsample", "head_inputs", "parameters"),
    [("none", 800, 9310), ("stride", 200, 3310), ("max", 200, 3310), ("avg", 200, 3310)],
)
def test_the_pooling_benchmarks_cnn_shrinks_its_map_as_the_notebook_does(
    downsample: str, head_inputs: int, parameters: int
) -> None:
    # conv 1->20 (80) + conv 20->20 (1,220) + Linear head_inputs -> 10
    model = PROBLEMS.create("mnist1d_pooling", 100, 0, 0.0, downsample=downsample).model
    assert model.classifier[-1].in_features == head_inputs
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_the_pooling_benchmark_refuses_an_unknown_downsample() -> None:
    with pytest.raises(ConfigError, match="downsample must be one of none, stride, max, avg"):
        PROBLEMS.create("mnist1d_pooling", 100, 0, 0.0, downsample="min")


def test_the_mnist1d_ssl_model_is_the_papers_cnn_with_an_encoder_to_transfer() -> None:
    setup = PROBLEMS.create("mnist1d_ssl", 100, 0, 0.0)
    assert sum(p.numel() for p in setup.model.parameters()) == 5210  # the paper's CNN
    assert setup.model.encoder.out_features == 125 and len(setup.model.encoder.blocks) == 3
    assert setup.model.head[-1].in_features == 125
    pretext = PROBLEMS.create("mnist1d_ssl", 100, 0, 0.0, pretext="simclr")
    assert pretext.pretext is not None and pretext.datamodule.layout == "channels"
    probe = PROBLEMS.create("mnist1d_ssl", 32, 0, 0.0, encoder="simclr", transfer="probe")
    assert not any(p.requires_grad for p in probe.model.encoder.parameters())
    with pytest.raises(ConfigError, match="train_size full"):
        PROBLEMS.create("mnist1d_ssl", 100, 0, 0.0, pretext="simclr", train_size=40)
