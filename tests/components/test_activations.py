"""Activations: values and autograd gradients against their closed forms."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from dlbench.components import ACTIVATIONS

Fn = Callable[[torch.Tensor], torch.Tensor]


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-x))


def _phi(x: torch.Tensor) -> torch.Tensor:
    """Standard normal CDF, exact erf form."""
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def _pdf(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)


# name -> (f(x), f'(x)), written from the definitions, not from torch's modules.
FORMULAS: dict[str, tuple[Fn, Fn]] = {
    "identity": (lambda x: x, lambda x: torch.ones_like(x)),
    "relu": (lambda x: torch.where(x > 0, x, 0.0), lambda x: (x > 0).to(x.dtype)),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "tanh": (
        lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
        lambda x: 1 - torch.tanh(x) ** 2,
    ),
    "gelu": (lambda x: x * _phi(x), lambda x: _phi(x) + x * _pdf(x)),
    "silu": (
        lambda x: x * _sigmoid(x),
        lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))),
    ),
}

# Avoid 0 for the gradient check (relu's kink); it is checked on its own below.
POINTS = torch.tensor([-3.0, -1.5, -0.3, 0.2, 0.7, 1.0, 2.5], dtype=torch.float64)


def test_formula_table_covers_the_registry() -> None:
    assert set(FORMULAS) == set(ACTIVATIONS.names())


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_value_matches_formula(name: str) -> None:
    f, _ = FORMULAS[name]
    act = ACTIVATIONS.create(name)
    torch.testing.assert_close(act(POINTS), f(POINTS), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_gradient_matches_formula(name: str) -> None:
    _, df = FORMULAS[name]
    act = ACTIVATIONS.create(name)
    x = POINTS.clone().requires_grad_(True)
    act(x).sum().backward()
    torch.testing.assert_close(x.grad, df(POINTS), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_every_activation_has_description_and_no_hyperparameters(name: str) -> None:
    entry = ACTIVATIONS.get(name)
    assert entry.description.strip()
    assert entry.hyperparameters == {}
    # Elementwise: shape kept, no parameters.
    act = ACTIVATIONS.create(name)
    assert act(torch.zeros(2, 3, 4)).shape == (2, 3, 4)
    assert list(act.parameters()) == []


@pytest.mark.parametrize(
    ("name", "value", "grad"),
    [
        ("identity", 0.0, 1.0),
        ("relu", 0.0, 0.0),  # torch's convention at the kink
        ("sigmoid", 0.5, 0.25),  # the maximum slope of the sigmoid
        ("tanh", 0.0, 1.0),
        ("gelu", 0.0, 0.5),
        ("silu", 0.0, 0.5),
    ],
)
def test_at_zero(name: str, value: float, grad: float) -> None:
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    y = ACTIVATIONS.create(name)(x)
    y.backward()
    assert y.item() == pytest.approx(value)
    assert x.grad.item() == pytest.approx(grad)


def test_sigmoid_gradient_is_at_most_a_quarter() -> None:
    x = torch.linspace(-10, 10, 2001, dtype=torch.float64, requires_grad=True)
    ACTIVATIONS.create("sigmoid")(x).sum().backward()
    assert x.grad.max().item() == pytest.approx(0.25)
    assert (x.grad <= 0.25).all()


def test_gelu_is_the_exact_erf_form_not_tanh() -> None:
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    exact = x * _phi(x)
    approx = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    y = ACTIVATIONS.create("gelu")(x)
    torch.testing.assert_close(y, exact, rtol=1e-12, atol=1e-12)
    assert (y - approx).abs().max().item() > 1e-5


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturating_activations_have_vanishing_gradient(name: str) -> None:
    x = torch.tensor([-20.0, 20.0], dtype=torch.float64, requires_grad=True)
    ACTIVATIONS.create(name)(x).sum().backward()
    assert (x.grad.abs() < 1e-8).all()
