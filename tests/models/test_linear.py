"""Linear, logistic and softmax regression: one Linear layer, named for its loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.models import MLP, LinearRegression, LogisticRegression, SoftmaxRegression


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("model", "n_out"),
    [
        (LinearRegression(5), 1),
        (LinearRegression(5, 3), 3),
        (LogisticRegression(5), 1),
        (SoftmaxRegression(5, 4), 4),
    ],
)
def test_is_one_affine_map(model: MLP, n_out: int) -> None:
    torch.manual_seed(0)
    assert isinstance(model, MLP)  # depth 0: the same Flatten -> Linear
    assert [type(m) for m in model.net] == [nn.Flatten, nn.Linear]
    assert n_params(model) == 5 * n_out + n_out
    x = torch.randn(7, 5)
    out = model(x)
    assert out.shape == (7, n_out)
    torch.testing.assert_close(out, x @ model.linear.weight.T + model.linear.bias)


def test_softmax_regression_flattens_images() -> None:
    model = SoftmaxRegression(64, 10)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_init_is_plumbed() -> None:
    model = LogisticRegression(5, init="zero")
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())


def test_linear_regression_recovers_the_least_squares_fit() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, 3)
    y = x @ torch.tensor([[2.0], [-1.0], [0.5]]) + 0.3
    model = LinearRegression(3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    torch.testing.assert_close(
        model.linear.weight, torch.tensor([[2.0, -1.0, 0.5]]), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(model.linear.bias, torch.tensor([0.3]), atol=1e-3, rtol=0)


def test_logistic_regression_logit_pairs_with_bce_with_logits() -> None:
    torch.manual_seed(0)
    model = LogisticRegression(4)
    x, y = torch.randn(10, 4), torch.randint(0, 2, (10, 1)).float()
    z = model(x)
    p = torch.sigmoid(z)
    by_hand = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    torch.testing.assert_close(nn.BCEWithLogitsLoss()(z, y), by_hand)


def test_softmax_regression_logits_pair_with_cross_entropy() -> None:
    torch.manual_seed(0)
    model = SoftmaxRegression(4, 3)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    z = model(x)
    by_hand = -torch.log(torch.softmax(z, dim=1)[torch.arange(10), y]).mean()
    torch.testing.assert_close(nn.CrossEntropyLoss()(z, y), by_hand)
