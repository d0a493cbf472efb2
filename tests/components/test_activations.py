"""Activations: values and autograd gradients against their closed forms."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS
from dlbench.components.activations import GatedLinearUnit, is_gated
from dlbench.errors import ConfigError

Fn = Callable[[torch.Tensor], torch.Tensor]


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-x))


def _phi(x: torch.Tensor) -> torch.Tensor:
    """Standard normal CDF, exact erf form."""
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def _pdf(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)


def _heaviside(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, 1.0, 0.0).to(x.dtype)


# Elementwise: name -> (f(x), f'(x)), written from the definitions, not torch's modules.
# For step_ste, "f'" is the gradient the backward pass reports (the straight-through
# identity), not the derivative of the step.
FORMULAS: dict[str, tuple[Fn, Fn]] = {
    "identity": (lambda x: x, lambda x: torch.ones_like(x)),
    "step": (_heaviside, lambda x: torch.zeros_like(x)),
    "step_ste": (_heaviside, lambda x: torch.ones_like(x)),
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

# Gated: name -> the elementwise activation applied to the gate, act(xW + b) * (xV + c).
GATED: dict[str, str] = {"glu": "sigmoid", "swiglu": "silu", "geglu": "gelu"}

ELEMENTWISE = [n for n in ACTIVATIONS.names() if not is_gated(n)]

# Avoid 0 for the gradient check (relu's kink); it is checked on its own below.
POINTS = torch.tensor([-3.0, -1.5, -0.3, 0.2, 0.7, 1.0, 2.5], dtype=torch.float64)


def test_formula_tables_cover_the_registry() -> None:
    assert set(FORMULAS) == set(ELEMENTWISE)
    assert set(GATED) == {n for n in ACTIVATIONS.names() if is_gated(n)}
    assert set(FORMULAS) | set(GATED) == set(ACTIVATIONS.names())


def test_every_entry_has_a_gated_flag() -> None:
    for entry in ACTIVATIONS:
        assert isinstance(entry.flags.get("gated"), bool), entry.name


def test_is_gated_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="allowed"):
        is_gated("nonexistent")


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_value_matches_formula(name: str) -> None:
    f, _ = FORMULAS[name]
    act = ACTIVATIONS.create(name)
    torch.testing.assert_close(act(POINTS), f(POINTS), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_gradient_matches_formula(name: str) -> None:
    _, df = FORMULAS[name]
    act = ACTIVATIONS.create(name)
    x = POINTS.clone().requires_grad_(True)
    act(x).sum().backward()
    torch.testing.assert_close(x.grad, df(POINTS), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ELEMENTWISE)
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
        ("step", 0.0, 0.0),  # 1[x > 0]: strict, so step(0) = 0
        ("step_ste", 0.0, 1.0),
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


def test_step_blocks_backprop_and_step_ste_passes_it() -> None:
    """Below a step unit every gradient is 0; the straight-through unit lets it through."""
    torch.manual_seed(0)
    x = torch.randn(16, 5)
    for name, moves in [("step", False), ("step_ste", True)]:
        layer = nn.Linear(5, 4)
        y = nn.functional.linear(ACTIVATIONS.create(name)(layer(x)), torch.randn(1, 4))
        y.sum().backward()
        assert (layer.weight.grad.abs().sum().item() > 0) is moves, name


# --- gated units ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GATED))
def test_gated_unit_owns_two_projections(name: str) -> None:
    entry = ACTIVATIONS.get(name)
    assert entry.description.strip()
    assert entry.hyperparameters == {}
    unit = ACTIVATIONS.create(name, 5, 3)
    assert isinstance(unit, GatedLinearUnit)
    assert sum(p.numel() for p in unit.parameters()) == 2 * (5 * 3 + 3)
    assert unit(torch.zeros(2, 5)).shape == (2, 3)


def _gated_formula(name: str, unit: GatedLinearUnit, x: torch.Tensor) -> torch.Tensor:
    f, _ = FORMULAS[GATED[name]]
    w, b = unit.gate.weight, unit.gate.bias
    v, c = unit.value.weight, unit.value.bias
    return f(x @ w.T + b) * (x @ v.T + c)


@pytest.mark.parametrize("name", sorted(GATED))
def test_gated_value_matches_formula(name: str) -> None:
    torch.manual_seed(0)
    unit = ACTIVATIONS.create(name, 6, 4).double()
    x = torch.randn(10, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), _gated_formula(name, unit, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(GATED))
def test_gated_gradient_matches_formula(name: str) -> None:
    """d/dx sum(act(g) * v) = (act'(g) * v) W + act(g) V, with g = xW + b, v = xV + c."""
    torch.manual_seed(0)
    f, df = FORMULAS[GATED[name]]
    unit = ACTIVATIONS.create(name, 6, 4).double()
    x = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    unit(x).sum().backward()
    with torch.no_grad():
        w, v = unit.gate.weight, unit.value.weight
        g, val = x @ w.T + unit.gate.bias, x @ v.T + unit.value.bias
        expected = (df(g) * val) @ w + f(g) @ v
    torch.testing.assert_close(x.grad, expected, rtol=1e-10, atol=1e-12)


def test_glu_matches_torch_glu_on_the_concatenated_projection() -> None:
    """Ours computes sigmoid(gate) * value; torch's F.glu(a ++ b) computes a * sigmoid(b)."""
    torch.manual_seed(0)
    unit = ACTIVATIONS.create("glu", 6, 4).double()
    x = torch.randn(10, 6, dtype=torch.float64)
    with torch.no_grad():
        both = torch.cat([unit.value(x), unit.gate(x)], dim=-1)
        torch.testing.assert_close(unit(x), nn.functional.glu(both, dim=-1))
