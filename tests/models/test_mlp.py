"""The MLP: its size, its structure, and what it computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS, NORMS
from dlbench.errors import ConfigError
from dlbench.models import MLP


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def expected_params(n_in: int, n_out: int, width: int, depth: int, per_norm: int = 0) -> int:
    """Weights + biases of each Linear, plus ``per_norm`` parameters per hidden layer."""
    if depth == 0:
        return n_in * n_out + n_out
    first = n_in * width + width
    middle = (depth - 1) * (width * width + width)
    last = width * n_out + n_out
    return first + middle + last + depth * per_norm


@pytest.mark.parametrize(
    ("width", "depth"), [(64, 0), (64, 1), (64, 2), (32, 3), (16, 5), (100, 2)]
)
def test_parameter_count(width: int, depth: int) -> None:
    model = MLP(64, 10, width=width, depth=depth)
    assert n_params(model) == expected_params(64, 10, width, depth)
    assert len(linears(model)) == depth + 1


def test_default_digits_mlp_size() -> None:
    # 64 -> 64 -> 64 -> 10: 4160 + 4160 + 650.
    assert n_params(MLP(64, 10)) == 8970


@pytest.mark.parametrize(
    ("norm", "per_norm"), [("batchnorm", 32), ("layernorm", 32), ("groupnorm", 32), ("none", 0)]
)
def test_parameter_count_with_norm(norm: str, per_norm: int) -> None:
    # Each of these norms has a per-feature scale and shift: 2 * width parameters.
    model = MLP(64, 10, width=16, depth=3, norm=norm)
    assert n_params(model) == expected_params(64, 10, 16, 3, per_norm=per_norm)


def test_depth_zero_is_a_single_linear_layer() -> None:
    torch.manual_seed(0)
    model = MLP(64, 10, depth=0)
    (layer,) = linears(model)
    assert (layer.in_features, layer.out_features) == (64, 10)
    # Nothing but Flatten and the Linear.
    assert [type(m) for m in model.net] == [nn.Flatten, nn.Linear]
    x = torch.randn(5, 64)
    torch.testing.assert_close(model(x), x @ layer.weight.T + layer.bias)


def test_layer_order_is_linear_norm_activation() -> None:
    model = MLP(12, 3, width=8, depth=2, norm="batchnorm", activation="tanh")
    assert [type(m) for m in model.net] == [
        nn.Flatten,
        nn.Linear,
        nn.BatchNorm1d,
        nn.Tanh,
        nn.Linear,
        nn.BatchNorm1d,
        nn.Tanh,
        nn.Linear,
    ]
    widths = [(m.in_features, m.out_features) for m in linears(model)]
    assert widths == [(12, 8), (8, 8), (8, 3)]


def test_identity_activation_collapses_to_one_linear_map() -> None:
    torch.manual_seed(0)
    model = MLP(10, 3, width=7, depth=2, activation="identity").double()
    l1, l2, l3 = linears(model)
    w = l3.weight @ l2.weight @ l1.weight
    b = l3.weight @ (l2.weight @ l1.bias + l2.bias) + l3.bias
    x = torch.randn(20, 10, dtype=torch.float64)
    torch.testing.assert_close(model(x), x @ w.T + b, rtol=1e-12, atol=1e-12)
    # One linear map: f(a*x + c*z) = a*f(x) + c*f(z) up to the bias.
    z = torch.randn(20, 10, dtype=torch.float64)
    torch.testing.assert_close(
        model(2 * x + 3 * z) - b, 2 * (model(x) - b) + 3 * (model(z) - b), rtol=1e-10, atol=1e-10
    )


def test_nonlinear_activation_does_not_collapse() -> None:
    torch.manual_seed(0)
    model = MLP(10, 3, width=7, depth=2, activation="tanh").double()
    l1, l2, l3 = linears(model)
    w = l3.weight @ l2.weight @ l1.weight
    b = l3.weight @ (l2.weight @ l1.bias + l2.bias) + l3.bias
    x = torch.randn(20, 10, dtype=torch.float64)
    assert not torch.allclose(model(x), x @ w.T + b)


def test_forward_flattens_images() -> None:
    torch.manual_seed(0)
    model = MLP(64, 10, width=16, depth=1)
    x = torch.randn(4, 1, 8, 8)
    out = model(x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(out, model(x.view(4, 64)))


@pytest.mark.parametrize(
    ("norm", "cls"),
    [
        ("batchnorm", nn.BatchNorm1d),
        ("layernorm", nn.LayerNorm),
        ("groupnorm", nn.GroupNorm),
        ("none", nn.Identity),
    ],
)
def test_norm_name_is_plumbed(norm: str, cls: type[nn.Module]) -> None:
    model = MLP(12, 3, width=16, depth=3, norm=norm)
    layers = [m for m in model.net if isinstance(m, cls)]
    assert len(layers) == 3
    if norm != "none":
        assert all(type(m) is type(NORMS.create(norm, 16, 1)) for m in layers)


def test_no_norm_layers_by_default() -> None:
    model = MLP(12, 3, width=16, depth=3)
    norm_types = (nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)
    assert not any(isinstance(m, norm_types) for m in model.modules())


@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_activation_name_is_plumbed(activation: str) -> None:
    model = MLP(12, 3, width=8, depth=2, activation=activation)
    cls = type(ACTIVATIONS.create(activation))
    # Flatten, then (Linear, norm, activation) per hidden layer, then the output Linear.
    assert type(model.net[3]) is cls
    assert type(model.net[6]) is cls


def test_init_name_is_plumbed() -> None:
    model = MLP(12, 3, width=8, depth=2, init="zero")
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())
    assert torch.count_nonzero(MLP(12, 3, width=8, depth=2, init="default").net[1].bias) > 0


@pytest.mark.parametrize("kwarg", ["activation", "norm", "init"])
def test_unknown_component_name_is_a_config_error(kwarg: str) -> None:
    with pytest.raises(ConfigError, match="allowed"):
        MLP(12, 3, **{kwarg: "nonexistent"})


def test_batchnorm_mlp_train_and_eval_differ() -> None:
    torch.manual_seed(0)
    model = MLP(12, 3, width=8, depth=2, norm="batchnorm")
    x = torch.randn(16, 12)
    train_out = model.train()(x)
    eval_out = model.eval()(x)
    assert not torch.allclose(train_out, eval_out)


def test_mlp_rejects_norm_without_1d_support() -> None:
    with pytest.raises(ValueError):
        MLP(12, 3, width=8, depth=2, norm="instancenorm")
