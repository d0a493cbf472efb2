"""One step of K members' optimizers over stacked weights is K separate steps.

In float64: in float32, RMSprop's division by a tiny second moment turns the rescaled
step's rounding (members with different lrs step at lr 1, then scale) into 1e-5."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dlbench.components import OPTIMIZERS
from dlbench.models import MLP
from dlbench.systems.optimizer import CellOptimizer, StackOptimizer
from dlbench.systems.stack import ModelStack

K, B = 3, 16


def mlps(k: int = K) -> list[MLP]:
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(MLP(8, 4, width=12, depth=2).double())
    return models


def _steps(cells: list[CellOptimizer], steps: int = 3) -> None:
    """Train a stack and each model alone on the same batches; the weights must agree."""
    models = mlps(len(cells))
    alone = copy.deepcopy(models)
    stack = ModelStack(models)
    optimizer = StackOptimizer(stack.stacked_parameters(), cells)
    lone = [
        OPTIMIZERS.create(c.name, m.parameters(), lr=c.lr, **c.hparams)
        for c, m in zip(cells, alone, strict=True)
    ]
    for step in range(steps):  # several: momentum and moment estimates carry over
        multiplier = 0.5**step  # a schedule: the lr halves each step
        x = torch.randn(len(cells), B, 8, dtype=torch.float64)
        y = torch.randint(0, 4, (len(cells), B))
        optimizer.zero_grad()
        out = stack(x)
        sum(nn.functional.cross_entropy(out[k], y[k]) for k in range(len(cells))).backward()
        optimizer.step(multiplier)
        for k, (model, opt) in enumerate(zip(alone, lone, strict=True)):
            for group in opt.param_groups:
                group["lr"] = cells[k].lr * multiplier
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[k]), y[k]).backward()
            opt.step()
    for name, stacked in zip(stack.param_names, stack.stacked_parameters(), strict=True):
        for k, model in enumerate(alone):
            expected = dict(model.named_parameters())[name]
            torch.testing.assert_close(stacked[k], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_stacked_steps_match_separate_steps_for_every_optimizer(name: str) -> None:
    _steps([CellOptimizer(name, lr, {}) for lr in (0.1, 0.03, 0.01)])  # lrs differ: rescaled


def test_members_with_different_optimizers_form_groups_and_keep_their_hyperparameters() -> None:
    cells = [
        CellOptimizer("momentum", 0.1, {"momentum": 0.9}),
        CellOptimizer("momentum", 0.05, {"momentum": 0.9}),
        CellOptimizer("momentum", 0.1, {"momentum": 0.5}),
        CellOptimizer("adam", 0.01, {}),
    ]
    stack = ModelStack(mlps(4))
    optimizer = StackOptimizer(stack.stacked_parameters(), cells)
    assert [g.where for g in optimizer.groups] == [slice(0, 2), slice(2, 3), slice(3, 4)]
    # the first group's lrs differ (step at 1, rescale); the others step at their lr
    assert [g.lr for g in optimizer.groups] == [None, 0.1, 0.01]
    _steps(cells)
