"""ModelStack: any plain module stacked, each member's outputs, views and streams its own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS
from dlbench.models import MLP, Conv1dNet, SequenceModel
from dlbench.systems.stack import ModelStack, Streams, refusal, vectorizable


def _models(make: type[nn.Module] | object, k: int = 3, **kwargs: object) -> list[nn.Module]:
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(make(**kwargs))  # type: ignore[operator]
    return models


CASES = {
    "mlp": (lambda: MLP(8, 4, width=12, depth=2), (5, 8)),
    "mlp+batchnorm": (lambda: MLP(8, 4, width=12, depth=2, norm="batchnorm"), (5, 8)),
    "mlp+swiglu": (lambda: MLP(8, 4, width=12, depth=2, activation="swiglu"), (5, 8)),
    "mlp+dropout": (lambda: MLP(8, 4, width=12, depth=2, dropout=0.5), (5, 8)),
    "conv1d": (lambda: Conv1dNet(1, 4, length=16, channels=(3, 3, 3)), (5, 1, 16)),
}


@pytest.mark.parametrize("case", CASES)
def test_each_members_output_is_its_own_models(case: str) -> None:
    make, shape = CASES[case]
    models = _models(make)
    for m in models:
        m.eval()  # dropout off: outputs are deterministic to compare
    stack = ModelStack(models)
    stack.eval()
    x = torch.randn(3, *shape)
    out, shared = stack(x), stack(x[0], shared=True)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x[k]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(shared[k], model(x[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_every_activation_stacks(name: str) -> None:
    models = _models(lambda: MLP(8, 4, width=12, depth=1, activation=name))
    x = torch.randn(3, 5, 8)
    out = ModelStack(models)(x)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x[k]), rtol=1e-5, atol=1e-6)


def test_what_cannot_be_vectorized_is_looped() -> None:
    assert vectorizable(MLP(8, 4, width=12, depth=1))
    assert not vectorizable(MLP(8, 4, width=12, depth=1, dropout=0.2))  # draws masks
    gru = SequenceModel(1, 4, cell="gru", hidden=3)
    assert not vectorizable(gru)  # no vmap batching rule for aten::gru
    models = _models(lambda: SequenceModel(1, 4, cell="gru", hidden=3))
    stack = ModelStack(models)
    x = torch.randn(3, 5, 7, 1)
    for k, model in enumerate(models):
        torch.testing.assert_close(stack(x)[k], model(x[k]), rtol=1e-5, atol=1e-6)


def test_models_of_different_architectures_do_not_stack() -> None:
    models = [MLP(8, 4, width=12, depth=1), MLP(8, 4, width=16, depth=1)]
    assert refusal(models) == "the models' architectures differ"
    with pytest.raises(ValueError, match="architectures differ"):
        ModelStack(models)


def test_bound_members_are_views_of_their_slices() -> None:
    models = _models(lambda: MLP(8, 4, width=12, depth=1))
    stack = ModelStack(models)
    stack.bind()
    with torch.no_grad():
        stack.stacked_parameters()[0][1].fill_(7.0)
        models[2].net[1].weight.zero_()  # an in-place update of a member (a regularizer's)
    assert torch.equal(next(models[1].parameters()), torch.full_like(models[1].net[1].weight, 7))
    assert torch.equal(stack.stacked_parameters()[0][2], torch.zeros_like(models[2].net[1].weight))


def test_each_member_draws_from_its_own_stream() -> None:
    torch.manual_seed(0)
    streams = Streams([torch.manual_seed(s).get_state() for s in (10, 11)])
    outer = torch.get_rng_state()
    with streams.of(0):
        first = torch.rand(3)
    with streams.of(1):
        other = torch.rand(3)
    with streams.of(0):
        second = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), outer)  # the global stream did not move
    torch.manual_seed(10)
    assert torch.equal(torch.cat([first, second]), torch.rand(6))  # one stream, continued
    torch.manual_seed(11)
    assert torch.equal(other, torch.rand(3))
