"""The CNN: shapes on digits and CIFAR-sized images, parameter counts, min pooling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import ACTIVATIONS, INITIALIZERS, NORMS
from dlbench.components.activations import is_gated
from dlbench.errors import ConfigError
from dlbench.models import CNN, MinPool2d


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def brute_force_min_pool(x: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    n, c, h, w = x.shape
    out = torch.empty(n, c, (h - k) // stride + 1, (w - k) // stride + 1, dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, :, i, j] = window.reshape(n, c, -1).min(dim=-1).values
    return out


@pytest.mark.parametrize(("k", "stride"), [(2, None), (3, 1), (3, 2), (2, 1)])
def test_min_pool_matches_brute_force(k: int, stride: int | None) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 9)
    expected = brute_force_min_pool(x, k, stride or k)
    torch.testing.assert_close(MinPool2d(k, stride)(x), expected, rtol=0, atol=0)


def test_min_pool_padding_never_wins() -> None:
    x = torch.ones(1, 1, 3, 3)
    out = MinPool2d(3, stride=1, padding=1)(x)
    torch.testing.assert_close(out, torch.ones(1, 1, 3, 3))


def test_min_max_avg_pools_order() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    lo, mid, hi = MinPool2d(2)(x), nn.AvgPool2d(2)(x), nn.MaxPool2d(2)(x)
    assert (lo <= mid).all() and (mid <= hi).all()


@pytest.mark.parametrize(
    ("in_channels", "size", "channels", "pool"),
    [
        (1, 8, (16, 32), "max"),
        (3, 32, (16, 32), "avg"),
        (1, 8, (4, 8, 8), "min"),
        (3, 32, (8,), "max"),
    ],
)
def test_output_shape(in_channels: int, size: int, channels: tuple[int, ...], pool: str) -> None:
    model = CNN(in_channels, 10, image_size=size, channels=channels, pool=pool)
    assert model(torch.randn(2, in_channels, size, size)).shape == (2, 10)
    # Each pool halves the map: the head sees channels[-1] * (size / 2^blocks)^2 features.
    side = size // 2 ** len(channels)
    assert model.classifier[-1].in_features == channels[-1] * side * side


def test_digits_maps_shrink_to_2x2() -> None:
    model = CNN(1, 10, image_size=8)
    assert model.features(torch.randn(2, 1, 8, 8)).shape == (2, 32, 2, 2)


def test_parameter_count_by_hand() -> None:
    # conv 1->4, 3x3: 4*1*9 + 4 = 40; conv 4->8: 8*4*9 + 8 = 296;
    # 8x8 -> 4x4 -> 2x2, head 8*2*2 -> 10: 32*10 + 10 = 330. Total 666.
    model = CNN(1, 10, image_size=8, channels=(4, 8))
    assert n_params(model) == 40 + 296 + 330 == 666
    # batchnorm adds a scale and a shift per channel: 2 * (4 + 8).
    assert n_params(CNN(1, 10, image_size=8, channels=(4, 8), norm="batchnorm")) == 666 + 24
    # A 5x5 kernel on 3 channels, 32x32 -> 16x16: 6*3*25 + 6 = 456; head 6*256*2 + 2 = 3074.
    assert n_params(CNN(3, 2, image_size=32, channels=(6,), kernel_size=5)) == 456 + 3074


def test_block_order_and_rectangular_images() -> None:
    model = CNN(1, 10, image_size=(8, 16), channels=(8,), norm="batchnorm", activation="tanh")
    assert [type(m) for m in model.features] == [nn.Conv2d, nn.BatchNorm2d, nn.Tanh, nn.MaxPool2d]
    assert model(torch.randn(2, 1, 8, 16)).shape == (2, 10)


def test_dropout_sits_before_the_head() -> None:
    model = CNN(1, 10, image_size=8, dropout=0.3)
    assert [type(m) for m in model.classifier] == [nn.Flatten, nn.Dropout, nn.Linear]
    assert [type(m) for m in CNN(1, 10, image_size=8).classifier] == [nn.Flatten, nn.Linear]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pool": "median"}, "unknown pool 'median'"),
        ({"activation": "swiglu"}, "CNN does not support the gated activation 'swiglu'"),
        ({"channels": (4, 4, 4, 4)}, "too small"),
        ({"dropout": 1.0}, "dropout"),
        ({"norm": "nonexistent"}, "allowed"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        CNN(1, 10, image_size=8, **kwargs)


@pytest.mark.parametrize("norm", [n.name for n in NORMS if 2 in n.flags["dims"]])
@pytest.mark.parametrize("activation", [n for n in ACTIVATIONS.names() if not is_gated(n)])
def test_every_activation_and_norm_builds_and_trains(activation: str, norm: str) -> None:
    torch.manual_seed(0)
    model = CNN(1, 10, image_size=8, channels=(8, 16), activation=activation, norm=norm)
    out = model(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10)
    out.sum().backward()


@pytest.mark.parametrize("init", INITIALIZERS.names())
def test_every_init_builds(init: str) -> None:
    model = CNN(1, 10, image_size=8, channels=(8, 16), init=init)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_init_reaches_the_convolutions() -> None:
    model = CNN(1, 10, image_size=8, init="zero")
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())
