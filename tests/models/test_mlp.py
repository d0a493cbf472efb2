"""The MLP: its size, its structure, and what it computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS, INITIALIZERS, NORMS
from dlbench.components.activations import GatedLinearUnit, is_gated
from dlbench.errors import ConfigError
from dlbench.models import MLP, gated_width
from dlbench.models.mlp import Residual, linear_params


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


@pytest.mark.parametrize("activation", [n for n in ACTIVATIONS.names() if not is_gated(n)])
def test_activation_name_is_plumbed(activation: str) -> None:
    model = MLP(12, 3, width=8, depth=2, activation=activation)
    cls = type(ACTIVATIONS.create(activation))
    # Flatten, then (Linear, norm, activation) per hidden layer, then the output Linear.
    assert type(model.net[3]) is cls
    assert type(model.net[6]) is cls


@pytest.mark.parametrize("activation", [n for n in ACTIVATIONS.names() if is_gated(n)])
def test_gated_activation_replaces_linear_and_activation(activation: str) -> None:
    model = MLP(12, 3, width=8, depth=2, activation=activation, norm="layernorm")
    h = model.hidden_width
    # Flatten, then (gated unit, norm) per hidden layer, then the output Linear.
    assert [type(m) for m in model.net] == [
        nn.Flatten,
        GatedLinearUnit,
        nn.LayerNorm,
        GatedLinearUnit,
        nn.LayerNorm,
        nn.Linear,
    ]
    inner = type(ACTIVATIONS.create(activation, 1, 1).activation)
    assert all(type(model.net[i].activation) is inner for i in (1, 3))
    assert (model.net[1].gate.in_features, model.net[1].gate.out_features) == (12, h)
    assert (model.net[3].value.in_features, model.net[3].value.out_features) == (h, h)
    assert (model.net[5].in_features, model.net[5].out_features) == (h, 3)


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


def test_the_notes_3_4_4_1_network_has_41_parameters() -> None:
    model = MLP(3, 1, width=4, depth=2)
    per_layer = [(m.weight.numel(), m.bias.numel()) for m in linears(model)]
    assert per_layer == [(12, 4), (16, 4), (4, 1)]
    assert n_params(model) == 41


# --- dropout ------------------------------------------------------------------------------


def test_dropout_follows_each_hidden_activation() -> None:
    model = MLP(12, 3, width=8, depth=2, activation="tanh", dropout=0.5)
    assert [type(m) for m in model.net] == [
        nn.Flatten,
        *[nn.Linear, nn.Identity, nn.Tanh, nn.Dropout] * 2,
        nn.Linear,
    ]
    assert all(m.p == 0.5 for m in model.net if isinstance(m, nn.Dropout))
    # No parameters added; none inserted at the default rate 0.
    assert n_params(model) == expected_params(12, 3, 8, 2)
    assert not any(isinstance(m, nn.Dropout) for m in MLP(12, 3, width=8).modules())


def test_dropout_is_active_in_train_mode_only() -> None:
    torch.manual_seed(0)
    model = MLP(12, 3, width=32, depth=2, dropout=0.5)
    x = torch.randn(8, 12)
    assert not torch.allclose(model.train()(x), model.train()(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_invalid_dropout_is_a_config_error(p: float) -> None:
    with pytest.raises(ConfigError, match="dropout"):
        MLP(12, 3, dropout=p)


# --- gated activations: the parameter-matched width -----------------------------------------


@pytest.mark.parametrize("activation", ["swiglu", "geglu", "glu"])
@pytest.mark.parametrize(
    ("n_in", "n_out", "width", "depth"),
    [(64, 10, 64, 2), (64, 10, 64, 1), (64, 10, 128, 3), (3, 1, 16, 2), (784, 10, 256, 2)],
)
def test_gated_mlp_has_about_the_parameters_of_the_relu_mlp(
    activation: str, n_in: int, n_out: int, width: int, depth: int
) -> None:
    relu = n_params(MLP(n_in, n_out, width=width, depth=depth))
    gated = MLP(n_in, n_out, width=width, depth=depth, activation=activation)
    assert gated.hidden_width == gated_width(n_in, n_out, width, depth) < width
    assert abs(n_params(gated) - relu) / relu < 0.05
    # The count is the documented formula: two projections per hidden layer.
    assert n_params(gated) == linear_params(n_in, n_out, [gated.hidden_width] * depth, True)


def test_gated_width_of_the_default_digits_mlp() -> None:
    assert gated_width(64, 10, 64, 2) == 40
    assert n_params(MLP(64, 10, activation="swiglu")) == 8890  # against 8970 for relu


@pytest.mark.parametrize("width", [30, 96, 300])
def test_gated_width_is_shazeers_two_thirds_for_one_square_layer(width: int) -> None:
    """in = out = d, one hidden layer: 3 d h + ... = 2 d w + ..., so h ~ 2/3 w."""
    assert abs(gated_width(width, width, width, 1) - 2 * width / 3) <= 1


def test_gated_width_is_the_closest_match() -> None:
    target = linear_params(64, 10, [64, 64], gated=False)
    h = gated_width(64, 10, 64, 2)

    def miss(k: int) -> int:
        return abs(linear_params(64, 10, [k, k], gated=True) - target)

    assert miss(h) <= min(miss(h - 1), miss(h + 1))


def test_gated_width_is_unchanged_at_depth_zero() -> None:
    assert gated_width(64, 10, 64, 0) == 64
    assert n_params(MLP(64, 10, depth=0, activation="swiglu")) == 650


def test_gated_norm_error_names_the_matched_width() -> None:
    # groupnorm needs 8 | width; 64 is fine but its gated width 40 ... is too: use 48 -> 29.
    h = gated_width(64, 10, 48, 2)
    assert h % 8
    with pytest.raises(ConfigError, match=f"hidden width {h} is parameter-matched to width=48"):
        MLP(64, 10, width=48, activation="swiglu", norm="groupnorm")


# --- step units ---------------------------------------------------------------------------


@pytest.mark.parametrize(("activation", "moves"), [("step", False), ("step_ste", True)])
def test_step_mlp_hidden_layers_get_no_gradient(activation: str, moves: bool) -> None:
    """The perceptron's step passes no gradient down; the straight-through one does."""
    torch.manual_seed(0)
    model = MLP(12, 3, width=8, depth=2, activation=activation)
    x, y = torch.randn(32, 12), torch.randint(0, 3, (32,))
    nn.functional.cross_entropy(model(x), y).backward()
    first, second, last = linears(model)
    assert last.weight.grad.abs().sum() > 0
    for layer in (first, second):
        assert (layer.weight.grad.abs().sum().item() > 0) is moves


# --- every component name ---------------------------------------------------------------------


@pytest.mark.parametrize("norm", [n.name for n in NORMS if 1 in n.flags["dims"]])
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_every_activation_and_norm_builds_and_trains(activation: str, norm: str) -> None:
    # Width 64 so that a gated MLP's matched width (40) is divisible by groupnorm's 8
    # groups; at other widths gated + groupnorm can be a ConfigError (tested above).
    torch.manual_seed(0)
    model = MLP(64, 10, width=64, depth=2, activation=activation, norm=norm, dropout=0.1)
    out = model(torch.randn(4, 64))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert linears(model)[-1].weight.grad is not None


@pytest.mark.parametrize("init", INITIALIZERS.names())
def test_every_init_builds(init: str) -> None:
    model = MLP(12, 3, width=16, depth=2, activation="swiglu", init=init)
    assert model(torch.randn(4, 12)).shape == (4, 3)


def test_residual_mlp_is_the_mnist1d_papers_mlp() -> None:
    """h1 = relu(L1 x); h2 = h1 + relu(L2 h1); y = L3 h2 (Greydanus & Kobak's MLP)."""
    torch.manual_seed(0)
    model = MLP(40, 10, width=100, depth=2, residual=True)
    l1, l2, l3 = [m for m in model.modules() if isinstance(m, nn.Linear)]
    x = torch.randn(6, 40)
    h1 = l1(x).relu()
    torch.testing.assert_close(model(x), l3(h1 + l2(h1).relu()))
    assert sum(p.numel() for p in model.parameters()) == 15210


def test_residual_wraps_every_hidden_block_after_the_first() -> None:
    model = MLP(8, 3, width=16, depth=4, residual=True, dropout=0.1, norm="layernorm")
    blocks = [m for m in model.net if isinstance(m, Residual)]
    assert len(blocks) == 3 and all(len(b) == 4 for b in blocks)  # Linear, norm, act, Dropout
    assert not any(isinstance(m, Residual) for m in MLP(8, 3, depth=1, residual=True).net)
