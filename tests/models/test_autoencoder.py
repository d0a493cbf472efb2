"""The autoencoder: shapes, parameter counts, the encoder alone, and that it learns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS, INITIALIZERS, NORMS
from dlbench.components.activations import is_gated
from dlbench.errors import ConfigError
from dlbench.models import AutoEncoder


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_shapes_on_flat_and_image_inputs() -> None:
    model = AutoEncoder(64, hidden=(32,), code=8)
    for shape in [(5, 64), (5, 1, 8, 8)]:
        x = torch.randn(*shape)
        assert model(x).shape == shape
        assert model.encoder(x).shape == (5, 8)
    assert model.decoder(torch.randn(5, 8)).shape == (5, 64)


def test_parameter_count_by_hand() -> None:
    # Encoder 64 -> 32 -> 8: 2080 + 264; decoder 8 -> 32 -> 64: 288 + 2112.
    assert n_params(AutoEncoder(64, hidden=(32,), code=8)) == 2080 + 264 + 288 + 2112
    # Two hidden widths, mirrored: 10 -> 6 -> 4 -> 2 -> 4 -> 6 -> 10.
    model = AutoEncoder(10, hidden=(6, 4), code=2)
    widths = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert widths == [(10, 6), (6, 4), (4, 2), (2, 4), (4, 6), (6, 10)]


def test_no_hidden_layers_is_a_linear_bottleneck() -> None:
    model = AutoEncoder(10, hidden=(), code=3)
    assert [type(m) for m in model.encoder] == [nn.Flatten, nn.Linear]
    assert [type(m) for m in model.decoder] == [nn.Linear]
    assert model(torch.randn(2, 10)).shape == (2, 10)


def test_code_and_output_are_linear() -> None:
    model = AutoEncoder(12, hidden=(8,), code=4, activation="relu")
    assert isinstance(model.encoder[-1], nn.Linear)
    assert isinstance(model.decoder[-1], nn.Linear)


def test_identity_activation_gives_a_linear_encoder() -> None:
    torch.manual_seed(0)
    model = AutoEncoder(6, hidden=(5,), code=3, activation="identity").double()
    x, z = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    b = model.encoder(torch.zeros(1, 6, dtype=torch.float64))
    torch.testing.assert_close(
        model.encoder(2 * x + 3 * z) - b, 2 * (model.encoder(x) - b) + 3 * (model.encoder(z) - b)
    )


def test_a_few_adam_steps_reduce_reconstruction_error() -> None:
    torch.manual_seed(0)
    # Data on a 4-dimensional subspace of R^16: an 8-unit code can reproduce it.
    x = torch.randn(256, 4) @ torch.randn(4, 16)
    model = AutoEncoder(16, hidden=(32,), code=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = nn.functional.mse_loss(model(x), x).item()
    for _ in range(30):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), x).backward()
        opt.step()
    with torch.no_grad():
        after = nn.functional.mse_loss(model(x), x).item()
    assert after < 0.5 * before


def test_gated_activation_is_refused() -> None:
    with pytest.raises(
        ConfigError, match="AutoEncoder does not support the gated activation 'glu'"
    ):
        AutoEncoder(64, activation="glu")


@pytest.mark.parametrize("norm", [n.name for n in NORMS if 1 in n.flags["dims"]])
@pytest.mark.parametrize("activation", [n for n in ACTIVATIONS.names() if not is_gated(n)])
def test_every_activation_and_norm_builds_and_trains(activation: str, norm: str) -> None:
    torch.manual_seed(0)
    model = AutoEncoder(64, hidden=(32,), code=8, activation=activation, norm=norm)
    x = torch.randn(4, 1, 8, 8)
    nn.functional.mse_loss(model(x), x).backward()


def test_instancenorm_is_refused() -> None:
    with pytest.raises(ConfigError, match="instancenorm"):
        AutoEncoder(64, norm="instancenorm")


@pytest.mark.parametrize("init", INITIALIZERS.names())
def test_every_init_builds(init: str) -> None:
    model = AutoEncoder(64, hidden=(32,), code=8, init=init)
    assert model(torch.randn(2, 64)).shape == (2, 64)
