"""Stacked training: one step of K stacked cells is K separate steps; fits agree; refusals."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS, LOSSES, OPTIMIZERS
from dlbench.components.activations import is_gated
from dlbench.data import DigitsDataModule, InMemoryLoader
from dlbench.models import MLP
from dlbench.models.stacked import StackedMLP, refusal
from dlbench.systems import SupervisedSystem
from dlbench.systems.stacked import CellOptimizer, StackedSystem

K, B = 3, 16


def mlps(k: int = K, **kwargs: object) -> list[MLP]:
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(MLP(8, 4, width=12, depth=2, **kwargs))
    return models


def system(models: list[MLP], optimizers: list[CellOptimizer]) -> StackedSystem:
    x, y = torch.randn(40, 8), torch.randint(0, 4, (40,))
    loaders = [InMemoryLoader(x, y, B, shuffle=True, seed=i) for i in range(len(models))]
    stacked = StackedSystem(
        models,
        LOSSES.create("cross_entropy"),
        optimizers,
        loaders,
        multiplier=lambda steps, epochs: lambda step: 1.0,
    )
    stacked.configure_optimizers()
    stacked._multiplier = lambda step: 0.5**step  # a schedule: the lr halves each step
    return stacked


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_stacked_steps_match_separate_steps_for_every_optimizer(name: str) -> None:
    models = mlps()
    alone = copy.deepcopy(models)
    lrs = [0.1, 0.03, 0.01]
    stacked = system(models, [CellOptimizer(name, lr, {}) for lr in lrs])
    optimizers = [
        OPTIMIZERS.create(name, m.parameters(), lr=lr) for m, lr in zip(alone, lrs, strict=True)
    ]
    loss = nn.CrossEntropyLoss()
    for step in range(3):  # several steps: momentum and moment estimates carry over
        x, y = torch.randn(K, B, 8), torch.randint(0, 4, (K, B))
        stacked._train_step(x, y)
        for k, (model, optimizer) in enumerate(zip(alone, optimizers, strict=True)):
            for group in optimizer.param_groups:
                group["lr"] = lrs[k] * 0.5**step
            optimizer.zero_grad()
            loss(model(x[k]), y[k]).backward()
            optimizer.step()
    linears = [[m for m in model.net if isinstance(m, nn.Linear)] for model in alone]
    for i, (w, b) in enumerate(zip(stacked.model.weights, stacked.model.biases, strict=True)):
        for k in range(K):
            torch.testing.assert_close(w[k], linears[k][i].weight, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(b[k, 0], linears[k][i].bias, rtol=1e-5, atol=1e-6)


def test_cells_with_different_optimizers_form_groups_and_keep_their_hyperparameters() -> None:
    cells = [
        CellOptimizer("momentum", 0.1, {"momentum": 0.9}),
        CellOptimizer("momentum", 0.05, {"momentum": 0.9}),
        CellOptimizer("momentum", 0.1, {"momentum": 0.5}),
        CellOptimizer("adam", 0.01, {}),
    ]
    models = mlps(4)
    alone = copy.deepcopy(models)
    stacked = system(models, cells)
    assert [g.where for g in stacked._groups] == [slice(0, 2), slice(2, 3), slice(3, 4)]
    # the first group's lrs differ (step at 1, rescale); the others step at their lr
    assert [g.lr for g in stacked._groups] == [None, 0.1, 0.01]
    x, y = torch.randn(4, B, 8), torch.randint(0, 4, (4, B))
    for _ in range(2):
        stacked._train_step(x, y)
    for k, (model, cell) in enumerate(zip(alone, cells, strict=True)):
        optimizer = OPTIMIZERS.create(cell.name, model.parameters(), lr=cell.lr, **cell.hparams)
        for step in range(2):
            optimizer.param_groups[0]["lr"] = cell.lr * 0.5**step
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[k]), y[k]).backward()
            optimizer.step()
        torch.testing.assert_close(
            stacked.model.weights[0][k], model.net[1].weight, atol=1e-6, rtol=1e-5
        )


@pytest.mark.parametrize("name", [e.name for e in ACTIVATIONS if not is_gated(e.name)])
def test_every_elementwise_activation_stacks_to_the_same_outputs(name: str) -> None:
    models = mlps(activation=name, dropout=0.0)
    x = torch.randn(K, 5, 8)
    out = StackedMLP(models)(x)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x[k]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("models", "reason"),
    [
        (mlps(norm="batchnorm"), "running statistics"),
        (mlps(activation="swiglu"), "own parameters"),
        ([*mlps(2), MLP(8, 4, width=16, depth=2)], "architectures differ"),
        ([nn.Linear(8, 4)] * 2, "only MLPs stack"),
    ],
)
def test_what_cannot_stack_says_why(models: list[nn.Module], reason: str) -> None:
    assert reason in refusal(models)
    with pytest.raises(ValueError, match=reason):
        StackedMLP(models)


def _fit(module: L.LightningModule, data: DigitsDataModule, epochs: int) -> None:
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)


def test_a_stacked_fit_reproduces_each_cells_own_fit_on_digits() -> None:
    """Seeds 0-2 and two lrs, trained stacked and one by one: the same curves."""
    cells = [(seed, lr) for seed in range(3) for lr in (0.1, 0.02)]
    models, loaders, lone = [], [], []
    for seed, lr in cells:
        torch.manual_seed(seed)
        model = MLP(64, 10, width=32, depth=1)
        lone_model = copy.deepcopy(model)
        data = DigitsDataModule(batch_size=64, layout="flat", seed=seed)
        models.append(model)
        loaders.append(data.loader("train"))
        alone = SupervisedSystem(
            lone_model, LOSSES.create("cross_entropy"), optimizer="momentum", lr=lr
        )
        _fit(alone, data, epochs=3)
        lone.append(alone.history)
    stacked = StackedSystem(
        models,
        LOSSES.create("cross_entropy"),
        [CellOptimizer("momentum", lr, {}) for _, lr in cells],
        loaders,
        multiplier=lambda steps, epochs: lambda step: 1.0,
    )
    _fit(stacked, DigitsDataModule(batch_size=64, layout="flat", seed=0), epochs=3)
    for history, expected in zip(stacked.history, lone, strict=True):
        assert history.keys() == expected.keys()
        for key in ("train/loss", "val/loss", "val/acc", "test/acc"):
            assert history[key] == pytest.approx(expected[key], abs=1e-4), key
    assert stacked.diverged == [None] * len(cells)


def test_a_diverging_cell_is_marked_and_the_others_train_on() -> None:
    data = DigitsDataModule(batch_size=64, layout="flat", seed=0)
    models = [MLP(64, 10, width=16, depth=1) for _ in range(2)]
    stacked = StackedSystem(
        models,
        LOSSES.create("cross_entropy"),
        [CellOptimizer("sgd", 1e6, {}), CellOptimizer("sgd", 0.1, {})],
        [data.loader("train"), data.loader("train")],
        multiplier=lambda steps, epochs: lambda step: 1.0,
    )
    _fit(stacked, data, epochs=3)
    assert stacked.diverged[0] is not None and stacked.diverged[0][0] == 0
    assert stacked.diverged[1] is None
    assert stacked.history[1]["val/acc"][-1] > 0.5  # chance is 0.1
