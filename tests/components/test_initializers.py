"""Initializers: empirical weight statistics against the fan-in/fan-out formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlbench.components import INITIALIZERS
from dlbench.components.initializers import initialize
from dlbench.models import MLP

FAN_IN, FAN_OUT = 1000, 500  # nn.Linear(1000, 500): weight is (500, 1000), 500k samples

# name -> (distribution, std of the weights). A uniform U(-b, b) has std b/sqrt(3).
EXPECTED: dict[str, tuple[str, float]] = {
    "normal": ("normal", 0.01),
    "uniform": ("uniform", 0.01 / math.sqrt(3)),
    "lecun_normal": ("normal", math.sqrt(1 / FAN_IN)),
    "lecun_uniform": ("uniform", math.sqrt(1 / FAN_IN)),
    "xavier_normal": ("normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "xavier_uniform": ("uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "he_normal": ("normal", math.sqrt(2 / FAN_IN)),
    "he_uniform": ("uniform", math.sqrt(2 / FAN_IN)),
    # PyTorch's own: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    "default": ("uniform", 1 / math.sqrt(FAN_IN) / math.sqrt(3)),
    "zero": ("zero", 0.0),
}

# The explicit uniform bounds from the module's docstring.
BOUNDS = {
    "uniform": 0.01,
    "lecun_uniform": math.sqrt(3 / FAN_IN),
    "xavier_uniform": math.sqrt(6 / (FAN_IN + FAN_OUT)),
    "he_uniform": math.sqrt(6 / FAN_IN),
    "default": 1 / math.sqrt(FAN_IN),
}


def big_linear(name: str, **hparams: float) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(FAN_IN, FAN_OUT)
    INITIALIZERS.create(name, **hparams)(layer)
    return layer


def test_table_covers_the_registry() -> None:
    assert set(EXPECTED) == set(INITIALIZERS.names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_weight_std_matches_formula(name: str) -> None:
    kind, std = EXPECTED[name]
    w = big_linear(name).weight.detach()
    if kind == "zero":
        assert torch.count_nonzero(w) == 0
        return
    # 500k samples: the sample std is within ~0.1% of the true one; allow 2%.
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert abs(w.mean().item()) < 0.01 * std


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_uniform_bound(name: str) -> None:
    bound = BOUNDS[name]
    w = big_linear(name).weight.detach().abs()
    assert w.max().item() <= bound
    assert w.max().item() >= 0.999 * bound


@pytest.mark.parametrize("name", [n for n, (kind, _) in EXPECTED.items() if kind == "normal"])
def test_normal_is_not_bounded_like_a_uniform(name: str) -> None:
    """A normal's tails pass sqrt(3)*std (a uniform's bound) for ~8% of samples."""
    _, std = EXPECTED[name]
    w = big_linear(name).weight.detach()
    share = (w.abs() > math.sqrt(3) * std).double().mean().item()
    expected = math.erfc(math.sqrt(3) / math.sqrt(2))  # P(|Z| > sqrt(3)) ~ 0.083
    assert share == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"default"}))
def test_bias_is_zero(name: str) -> None:
    bias = big_linear(name).bias.detach()
    assert torch.count_nonzero(bias) == 0


def test_default_keeps_pytorch_bias_scheme() -> None:
    layer = nn.Linear(FAN_IN, FAN_OUT)
    with torch.no_grad():
        layer.bias.fill_(123.0)
        layer.weight.fill_(123.0)
    INITIALIZERS.create("default")(layer)
    bias = layer.bias.detach()
    assert bias.abs().max().item() <= 1 / math.sqrt(FAN_IN)
    assert torch.count_nonzero(bias) == FAN_OUT
    assert layer.weight.abs().max().item() <= 1 / math.sqrt(FAN_IN)


def test_zero_is_all_zeros_even_from_nonzero() -> None:
    layer = nn.Linear(10, 5)
    conv = nn.Conv2d(3, 4, 3)
    init = INITIALIZERS.create("zero")
    init(layer)
    init(conv)
    for p in (*layer.parameters(), *conv.parameters()):
        assert torch.count_nonzero(p) == 0


@pytest.mark.parametrize(
    ("name", "key", "value"), [("normal", "std", 0.1), ("uniform", "bound", 0.2)]
)
def test_small_random_hyperparameters(name: str, key: str, value: float) -> None:
    assert INITIALIZERS.get(name).hyperparameters == {key: 0.01}
    w = big_linear(name, **{key: value}).weight.detach()
    std = value if name == "normal" else value / math.sqrt(3)
    assert w.std().item() == pytest.approx(std, rel=0.02)
    if name == "uniform":
        assert w.abs().max().item() <= value


def test_conv_fan_in_includes_kernel() -> None:
    """For a conv, fan_in = in_channels * kh * kw, and he_normal uses it."""
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3)
    INITIALIZERS.create("he_normal")(conv)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.02)
    assert torch.count_nonzero(conv.bias) == 0


# --- contract over the whole registry --------------------------------------------------


@pytest.mark.parametrize("name", INITIALIZERS.names())
def test_every_initializer_applies_to_linear_and_conv(name: str) -> None:
    torch.manual_seed(0)
    entry = INITIALIZERS.get(name)
    assert entry.description.strip()
    init = INITIALIZERS.create(name)
    for layer in (
        nn.Linear(8, 4),
        nn.Conv1d(3, 5, 3),
        nn.Conv2d(3, 5, 3),
        nn.Linear(8, 4, bias=False),
    ):
        shapes = [p.shape for p in layer.parameters()]
        init(layer)
        assert [p.shape for p in layer.parameters()] == shapes
        assert all(torch.isfinite(p).all() for p in layer.parameters())
        # Applying an initializer must not record an autograd graph.
        assert all(p.grad_fn is None and p.is_leaf for p in layer.parameters())
        if name not in ("zero",):
            assert torch.count_nonzero(layer.weight) > 0


# --- initialize() on a model -------------------------------------------------------------


def test_initialize_visits_every_linear_and_conv_only() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 4), nn.Linear(4, 2)
    )
    seen: list[nn.Module] = []
    assert initialize(model, seen.append) is model
    assert seen == [model[0], model[3], model[4]]


def test_initialize_mlp_every_linear_gets_it() -> None:
    torch.manual_seed(0)
    model = MLP(200, 10, width=300, depth=2, norm="batchnorm")
    initialize(model, INITIALIZERS.create("he_normal"))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        assert layer.weight.std().item() == pytest.approx(
            math.sqrt(2 / layer.in_features), rel=0.05
        )
        assert torch.count_nonzero(layer.bias) == 0
    # Other layers keep their own initialization: BatchNorm's gamma=1, beta=0.
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm1d)):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_mlp_init_argument_uses_the_registry() -> None:
    torch.manual_seed(0)
    model = MLP(64, 10, width=32, depth=2, init="zero")
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        assert torch.count_nonzero(layer.weight) == 0
        assert torch.count_nonzero(layer.bias) == 0


def _train_a_few_steps(model: nn.Module, steps: int = 5) -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 12)
    y = torch.randint(0, 3, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_zero_init_keeps_hidden_units_identical() -> None:
    """Symmetry: units that start equal get equal gradients, so they never differ.

    Sigmoid, so that sigmoid(0) = 0.5 != 0 and the weights actually move; with
    zero init every unit of a layer computes the same function forever.
    """
    model = MLP(12, 3, width=6, depth=2, activation="sigmoid", init="zero")
    _train_a_few_steps(model)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for hidden in linears[:-1]:
        w, b = hidden.weight.detach(), hidden.bias.detach()
        assert torch.count_nonzero(w) > 0, "the test is vacuous if the weights never moved"
        torch.testing.assert_close(w, w[:1].expand_as(w), rtol=0, atol=1e-7)
        torch.testing.assert_close(b, b[:1].expand_as(b), rtol=0, atol=1e-7)
    # The output layer sees identical inputs from every hidden unit: equal columns.
    w_out = linears[-1].weight.detach()
    assert torch.count_nonzero(w_out) > 0
    torch.testing.assert_close(w_out, w_out[:, :1].expand_as(w_out), rtol=0, atol=1e-7)


def test_zero_init_with_relu_hidden_weights_never_move() -> None:
    """relu(0) = 0 and relu'(0) = 0: only the output bias can learn."""
    model = MLP(12, 3, width=6, depth=2, activation="relu", init="zero")
    _train_a_few_steps(model)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for layer in linears:
        assert torch.count_nonzero(layer.weight) == 0
    assert torch.count_nonzero(linears[-1].bias) > 0


def test_random_init_breaks_symmetry() -> None:
    torch.manual_seed(0)
    model = MLP(12, 3, width=6, depth=2, activation="sigmoid", init="he_normal")
    _train_a_few_steps(model)
    w = next(m for m in model.modules() if isinstance(m, nn.Linear)).weight.detach()
    assert not torch.allclose(w, w[:1].expand_as(w))
