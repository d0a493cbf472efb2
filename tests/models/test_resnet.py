"""The small ResNet: shapes, parameter counts by hand, the residual path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS, INITIALIZERS, NORMS
from dlbench.components.activations import is_gated
from dlbench.errors import ConfigError
from dlbench.models import BasicBlock, ResNet


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("in_channels", "size", "final"), [(1, 8, 2), (3, 32, 8)])
def test_output_shape(in_channels: int, size: int, final: int) -> None:
    model = ResNet(in_channels, 10, widths=(8, 16, 32), blocks_per_stage=1)
    x = torch.randn(2, in_channels, size, size)
    assert model(x).shape == (2, 10)
    # Two stride-2 stages: size / 4 before the global pool.
    assert model.stages(model.stem(x)).shape == (2, 32, final, final)


def test_default_is_three_stages_of_two_blocks() -> None:
    model = ResNet(1, 10)
    blocks = [m for m in model.stages if isinstance(m, BasicBlock)]
    assert len(blocks) == 6
    assert [b.conv2.out_channels for b in blocks] == [16, 16, 32, 32, 64, 64]
    assert [b.conv1.stride for b in blocks] == [(1, 1), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]
    # A 1x1 projection where the shape changes, the identity elsewhere.
    assert [isinstance(b.shortcut, nn.Identity) for b in blocks] == [1, 1, 0, 1, 0, 1]
    assert isinstance(model.stem[1], nn.BatchNorm2d)  # batchnorm by default


def test_parameter_count_by_hand() -> None:
    # stem 1->4 3x3: 36 + 4 = 40.
    # stage 1, block 4->4: two 3x3 convs of 144 + 4 = 296.
    # stage 2, block 4->8 stride 2: 288 + 8, 576 + 8, 1x1 shortcut 32 + 8 = 920.
    # head 8 -> 10: 90.
    model = ResNet(1, 10, widths=(4, 8), blocks_per_stage=1, norm="none")
    assert n_params(model) == 40 + 296 + 920 + 90 == 1346
    # batchnorm: 2 per channel after the stem (4), in block 1 (2 x 4), block 2 (3 x 8).
    bn = ResNet(1, 10, widths=(4, 8), blocks_per_stage=1, norm="batchnorm")
    assert n_params(bn) == 1346 + 2 * (4 + 8 + 24)


def test_block_with_zero_convolutions_is_its_shortcut() -> None:
    """The residual path: with the residual branch at 0, a block computes act(x)."""
    torch.manual_seed(0)
    block = BasicBlock(4, 4, 1, activation="relu", norm="none")
    for conv in (block.conv1, block.conv2):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_block_computes_its_formula() -> None:
    torch.manual_seed(0)
    block = BasicBlock(3, 6, 2, activation="tanh", norm="none")
    x = torch.randn(2, 3, 8, 8)
    f = nn.functional
    inner = torch.tanh(f.conv2d(x, block.conv1.weight, block.conv1.bias, stride=2, padding=1))
    residual = f.conv2d(inner, block.conv2.weight, block.conv2.bias, padding=1)
    shortcut = f.conv2d(x, block.shortcut[0].weight, block.shortcut[0].bias, stride=2)
    torch.testing.assert_close(block(x), torch.tanh(residual + shortcut))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "geglu"}, "ResNet does not support the gated activation 'geglu'"),
        ({"widths": ()}, "at least one stage"),
        ({"blocks_per_stage": 0}, "at least one stage"),
        ({"norm": "nonexistent"}, "allowed"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ResNet(1, 10, **kwargs)


@pytest.mark.parametrize("norm", [n.name for n in NORMS if 2 in n.flags["dims"]])
@pytest.mark.parametrize("activation", [n for n in ACTIVATIONS.names() if not is_gated(n)])
def test_every_activation_and_norm_builds_and_trains(activation: str, norm: str) -> None:
    torch.manual_seed(0)
    model = ResNet(1, 10, widths=(8, 16), blocks_per_stage=1, activation=activation, norm=norm)
    out = model(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10)
    out.sum().backward()


@pytest.mark.parametrize("init", INITIALIZERS.names())
def test_every_init_builds(init: str) -> None:
    model = ResNet(1, 10, widths=(8, 16), blocks_per_stage=1, init=init)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_init_reaches_every_convolution_and_the_head() -> None:
    model = ResNet(1, 10, widths=(8, 16), blocks_per_stage=1, norm="none", init="zero")
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())
