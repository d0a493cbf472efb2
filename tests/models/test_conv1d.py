"""The 1-D CNN: the MNIST-1D paper's shape and parameter count, its math, its norms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlbench.errors import ConfigError
from dlbench.models import Conv1dEncoder, Conv1dNet
from dlbench.models.conv1d import MapNorm, conv_length


def test_default_is_the_papers_cnn() -> None:
    """25 channels, kernels 5/3/3, stride 2, padding 1: 40 -> 19 -> 10 -> 5, head 125 -> 10."""
    model = Conv1dNet(1, 10, length=40)
    assert [conv_length(n, k, 2, 1) for n, k in [(40, 5), (19, 3), (10, 3)]] == [19, 10, 5]
    assert model.classifier[-1].in_features == 125
    assert sum(p.numel() for p in model.parameters()) == 5210  # the paper's notebook prints 5210


def test_forward_is_strided_convs_relu_then_linear() -> None:
    torch.manual_seed(0)
    model = Conv1dNet(1, 10, length=40)
    x = torch.randn(4, 1, 40)
    h = x
    for conv in [m for m in model.features if isinstance(m, nn.Conv1d)]:
        h = F.conv1d(h, conv.weight, conv.bias, stride=2, padding=1).relu()
    head = model.classifier[-1]
    torch.testing.assert_close(model(x), h.flatten(1) @ head.weight.T + head.bias)


def test_map_norm_batchnorm_normalizes_each_channel_over_batch_and_length() -> None:
    x = torch.randn(8, 5, 12) * 3 + 2
    out = MapNorm("batchnorm", 5).train()(x)
    torch.testing.assert_close(out, nn.BatchNorm1d(5).train()(x))
    assert out.mean(dim=(0, 2)).abs().max() < 1e-5


def test_map_norm_layernorm_normalizes_each_sample_over_channels_and_length() -> None:
    out = MapNorm("layernorm", 5)(torch.randn(3, 5, 12) * 4 + 1)
    assert out.mean(dim=(1, 2)).abs().max() < 1e-5
    torch.testing.assert_close(
        out.var(dim=(1, 2), unbiased=False), torch.ones(3), atol=1e-3, rtol=0
    )


def test_dropout_sits_before_the_head_and_gated_units_are_refused() -> None:
    model = Conv1dNet(1, 10, length=40, dropout=0.5)
    assert isinstance(model.classifier[1], nn.Dropout)
    with pytest.raises(ConfigError, match="gated"):
        Conv1dNet(1, 10, length=40, activation="swiglu")


def test_too_short_a_signal_is_refused() -> None:
    with pytest.raises(ConfigError, match="too short"):
        Conv1dNet(1, 10, length=2)


@pytest.mark.parametrize(("pool", "fn"), [("max", F.max_pool1d), ("avg", F.avg_pool1d)])
def test_a_pool_halves_the_map_after_each_block(pool: str, fn: object) -> None:
    torch.manual_seed(0)
    net = Conv1dNet(1, 10, length=40, channels=(20, 20), kernels=(3, 3), stride=1, pool=pool)
    assert net.classifier[-1].in_features == 20 * 10  # 40 -> 20 -> 10
    conv1, conv2 = (m for m in net.features if isinstance(m, nn.Conv1d))
    x = torch.randn(4, 1, 40)
    h = fn(F.relu(conv1(x)), 2)  # type: ignore[operator]
    h = fn(F.relu(conv2(h)), 2)  # type: ignore[operator]
    torch.testing.assert_close(net(x), net.classifier[-1](h.flatten(1)))


def test_an_unknown_pool_is_refused() -> None:
    with pytest.raises(ConfigError, match="pool must be one of none, max, avg"):
        Conv1dNet(1, 10, length=40, pool="min")


def test_the_encoder_is_the_cnn_without_its_head() -> None:
    net, encoder = Conv1dNet(1, 10, length=40), Conv1dEncoder(1, length=40)
    assert [type(m) for m in net.features] == [type(m) for b in encoder.blocks for m in b]
    assert encoder.out_features == net.classifier[-1].in_features == 125
