"""A plain convolutional network: blocks of conv -> norm -> activation -> 2x2 pool."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from dlbench.components import INITIALIZERS, NORMS
from dlbench.components.initializers import initialize
from dlbench.errors import ConfigError, unknown_message
from dlbench.models.common import check_dropout, elementwise_activation
from dlbench.registry import Named


class MinPool2d(nn.Module):
    """Min pooling, which torch lacks: ``min_pool(x) = -max_pool(-x)``.

    Padding (if any) behaves as +inf, never the minimum, as max pooling pads with -inf.
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x: Tensor) -> Tensor:
        return -F.max_pool2d(-x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d, "min": MinPool2d}


def conv_block(
    fan_in: int, out: int, kernel_size: int, pool: str, activation: Named, norm: Named, model: str
) -> list[nn.Module]:
    """conv ("same" padding, stride 1) -> norm -> activation -> 2x2 pool: the unit both
    convolutional models stack. ``model`` names the caller in errors."""
    if pool not in POOLS:
        raise ConfigError(unknown_message("pool", pool, sorted(POOLS)))
    return [
        nn.Conv2d(fan_in, out, kernel_size, padding="same"),
        NORMS.create(norm, out, 2),
        elementwise_activation(activation, model),
        POOLS[pool](2),
    ]


class CNN(nn.Module):
    """``len(channels)`` blocks of conv -> norm -> activation -> 2x2 pool, then a linear head.

    Convolutions use stride 1 and "same" padding (bias included, as in the MLP), so
    only the pools shrink the map: each halves H and W (rounding down). The head is
    flatten [-> Dropout if ``dropout > 0``] -> Linear, whose input size depends on the
    map size, hence ``image_size`` (an int for square images, or (H, W)): 8 for the
    8x8 digits (two pools leave 2x2), 32 for CIFAR-sized images (two pools leave 8x8).
    ``pool`` is "max", "avg" or "min" (``MinPool2d``). Gated activations are refused
    (a ConfigError): they need a projection to own, and a conv block has none to spare.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        image_size: int | tuple[int, int],
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        pool: str = "max",
        activation: Named = "relu",
        norm: Named = "none",
        init: Named = "default",
        dropout: float = 0.0,
    ):
        super().__init__()
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        check_dropout(dropout)
        layers: list[nn.Module] = []
        fan_in = in_channels
        for out in channels:
            layers += conv_block(fan_in, out, kernel_size, pool, activation, norm, "CNN")
            fan_in, height, width = out, height // 2, width // 2
        if height < 1 or width < 1:
            raise ConfigError(
                f"CNN: image_size={image_size} is too small for {len(channels)} 2x2 pools"
            )
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(fan_in * height * width, num_classes))
        self.classifier = nn.Sequential(*head)
        initialize(self, INITIALIZERS.create(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
