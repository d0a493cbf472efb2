"""A 1-D convolutional network for signals: strided conv -> norm -> activation blocks.

The MNIST-1D paper's CNN (Greydanus & Kobak) is the default: three Conv1d layers of
25 channels, kernels 5, 3, 3, stride 2 and padding 1, ReLU, then a linear head on the
flattened map. On length-40 signals the map shrinks 40 -> 19 -> 10 -> 5, so the head
reads 25 x 5 = 125 features (5,210 parameters in all). Strides, not pools, shrink the
map, as in the paper; ``pool`` ("max" or "avg", window 2) halves it after each block
instead, as in the repository's pooling benchmark. ``Conv1dEncoder`` is the same stack of
blocks without the head, for self-supervised pre-training.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dlbench.components import INITIALIZERS, NORMS
from dlbench.components.initializers import initialize
from dlbench.errors import ConfigError
from dlbench.models.common import check_dropout, elementwise_activation
from dlbench.registry import Named


class MapNorm(nn.Module):
    """A norm built for 2-D maps (``NORMS`` with dims 2) applied to (N, C, L) signals.

    The signal is seen as an (N, C, L, 1) map, so every norm means what it means on a
    CNN: BatchNorm over (N, L) per channel, LayerNorm over (C, L), InstanceNorm over L.
    """

    def __init__(self, norm: Named, channels: int):
        super().__init__()
        self.norm = NORMS.create(norm, channels, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.unsqueeze(-1)).squeeze(-1)


def conv_length(length: int, kernel: int, stride: int, padding: int) -> int:
    """The output length of a Conv1d: ``floor((L + 2p - k) / s) + 1``."""
    return (length + 2 * padding - kernel) // stride + 1


POOLS: dict[str, type[nn.Module]] = {"none": nn.Identity, "max": nn.MaxPool1d, "avg": nn.AvgPool1d}


def conv1d_blocks(
    in_channels: int,
    *,
    length: int,
    channels: Sequence[int],
    kernels: Sequence[int],
    stride: int,
    padding: int,
    activation: Named,
    norm: Named,
    pool: str,
    owner: str,
) -> tuple[list[nn.Sequential], int]:
    """One ``nn.Sequential`` per block (Conv1d -> norm -> activation [-> pool]) and the
    length of the last block's map."""
    if pool not in POOLS:
        raise ConfigError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if len(channels) != len(kernels):
        raise ConfigError(f"{owner}: {len(channels)} channel counts but {len(kernels)} kernels")
    blocks: list[nn.Sequential] = []
    fan_in, size = in_channels, length
    for out, kernel in zip(channels, kernels, strict=True):
        size = conv_length(size, kernel, stride, padding)
        if size < 1:
            raise ConfigError(f"{owner}: length {length} is too short for {len(channels)} convs")
        layers = [
            nn.Conv1d(fan_in, out, kernel, stride=stride, padding=padding),
            MapNorm(norm, out),
            elementwise_activation(activation, owner),
        ]
        if pool != "none":
            layers.append(POOLS[pool](2))
            size //= 2
        blocks.append(nn.Sequential(*layers))
        fan_in = out
    return blocks, size


class Conv1dNet(nn.Module):
    """``len(channels)`` blocks of Conv1d -> norm -> activation, then flatten -> Linear.

    Inputs are (N, in_channels, length). ``dropout`` > 0 puts a Dropout before the
    head. Gated activations are refused (a conv block has no projection to give them).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        length: int,
        channels: Sequence[int] = (25, 25, 25),
        kernels: Sequence[int] = (5, 3, 3),
        stride: int = 2,
        padding: int = 1,
        activation: Named = "relu",
        norm: Named = "none",
        init: Named = "default",
        dropout: float = 0.0,
        pool: str = "none",
    ):
        super().__init__()
        check_dropout(dropout)
        blocks, size = conv1d_blocks(
            in_channels, length=length, channels=channels, kernels=kernels, stride=stride,
            padding=padding, activation=activation, norm=norm, pool=pool, owner="Conv1dNet",
        )  # fmt: skip
        self.features = nn.Sequential(*(layer for block in blocks for layer in block))
        head: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(channels[-1] * size, num_classes))
        self.classifier = nn.Sequential(*head)
        initialize(self, INITIALIZERS.create(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class Conv1dEncoder(nn.Module):
    """The paper's CNN without its head, as an encoder for self-supervised pre-training:
    ``blocks`` (the unit fine-tuning counts in), and ``forward`` flattens the last map into
    ``out_features`` numbers (25 x 5 = 125 on length-40 signals, the backbone output the
    MNIST-1D SSL notebook probes)."""

    def __init__(
        self,
        in_channels: int,
        *,
        length: int,
        channels: Sequence[int] = (25, 25, 25),
        kernels: Sequence[int] = (5, 3, 3),
        activation: Named = "relu",
        norm: Named = "none",
    ):
        super().__init__()
        blocks, size = conv1d_blocks(
            in_channels, length=length, channels=channels, kernels=kernels, stride=2,
            padding=1, activation=activation, norm=norm, pool="none", owner="Conv1dEncoder",
        )  # fmt: skip
        self.blocks = nn.Sequential(*blocks)
        self.out_features = channels[-1] * size

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x).flatten(1)
