"""A small ResNet (He et al. 2016): basic residual blocks in stages of growing width."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dlbench.components import INITIALIZERS, NORMS
from dlbench.components.initializers import initialize
from dlbench.errors import ConfigError
from dlbench.models.common import elementwise_activation
from dlbench.registry import Named


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


class BasicBlock(nn.Module):
    """``act(norm(conv(act(norm(conv(x))))) + shortcut(x))``, two 3x3 convolutions.

    The shortcut is the identity when shape is kept, else a 1x1 convolution with the
    block's stride followed by a norm (He et al.'s option B).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, *, activation: Named, norm: Named
    ):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.norm1 = NORMS.create(norm, out_channels, 2)
        self.act1 = elementwise_activation(activation, "ResNet")
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.norm2 = NORMS.create(norm, out_channels, 2)
        self.act2 = elementwise_activation(activation, "ResNet")
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride),
                NORMS.create(norm, out_channels, 2),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        return self.act2(self.norm2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv -> stages of ``blocks_per_stage`` BasicBlocks -> global average pool -> Linear.

    Stage ``i`` has ``widths[i]`` channels; every stage after the first starts with a
    stride-2 block, so (16, 32, 64) maps 8x8 digits to 2x2 and 32x32 images to 8x8
    before the pool. The global pool makes the head independent of the image size.
    Norm defaults to batchnorm, as in the paper; convolutions keep their bias (as in
    the other models here) although a following batchnorm makes it redundant. Gated
    activations are refused (a ConfigError).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        widths: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 2,
        activation: Named = "relu",
        norm: Named = "batchnorm",
        init: Named = "default",
    ):
        super().__init__()
        if not widths or blocks_per_stage < 1:
            raise ConfigError(
                f"ResNet needs at least one stage and one block per stage; "
                f"got widths={tuple(widths)}, blocks_per_stage={blocks_per_stage}"
            )
        self.stem = nn.Sequential(
            _conv3x3(in_channels, widths[0]),
            NORMS.create(norm, widths[0], 2),
            elementwise_activation(activation, "ResNet"),
        )
        blocks: list[nn.Module] = []
        fan_in = widths[0]
        for stage, width in enumerate(widths):
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(fan_in, width, stride, activation=activation, norm=norm))
                fan_in = width
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(fan_in, num_classes)
        )
        initialize(self, INITIALIZERS.create(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))
