"""An encoder with a linear head: the model self-supervised pre-training transfers.

The encoder is convolutional blocks (``conv_block``: conv -> norm -> activation -> 2x2
pool). Called, it pools its last map globally into one feature vector, for an image of
any size: that is what the pretext tasks read, from small patches (whose last map is
1x1 anyway) or whole images. The classifier's linear head reads the whole last map
instead (flattened, as the digits CNN's does), so where a stroke sits still counts.
Downstream, ``freeze`` decides how much of the encoder trains: none of it (a linear
probe on frozen features), its last k blocks, or all of it. The classifier takes any
encoder with ``blocks``: ``models.conv1d.Conv1dEncoder`` is the MNIST-1D one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from dlbench.components import INITIALIZERS
from dlbench.components.initializers import initialize
from dlbench.errors import ConfigError
from dlbench.models.cnn import conv_block
from dlbench.models.common import check_dropout
from dlbench.registry import Named


class ConvEncoder(nn.Module):
    """``len(channels)`` conv blocks, each its own ``nn.Sequential`` in ``blocks`` (the unit
    fine-tuning counts in); ``forward`` averages the last map to ``out_features`` numbers."""

    def __init__(
        self,
        in_channels: int,
        *,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        pool: str = "max",
        activation: Named = "relu",
        norm: Named = "none",
    ):
        super().__init__()
        fans = [in_channels, *channels]
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(*conv_block(a, b, kernel_size, pool, activation, norm, "encoder"))
                for a, b in pairwise(fans)
            )
        )
        self.out_features = fans[-1]
        self.smallest_input = 2 ** len(channels)  # each block's pool halves the map

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x).mean(dim=(2, 3))


class EncoderClassifier(nn.Module):
    """``encoder.blocks`` -> flatten -> [Dropout] -> Linear ``head`` for inputs of
    ``input_shape`` ((C, H, W) images for ``ConvEncoder``, (C, L) signals for
    ``models.conv1d.Conv1dEncoder``); ``freeze`` fixes part of the encoder.

    Frozen blocks stay in eval mode whatever ``train()`` is told, so a frozen encoder is
    a fixed feature extractor: its weights get no gradient and its BatchNorm running
    statistics do not move either.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        *,
        input_shape: tuple[int, ...],
        init: Named = "default",
        dropout: float = 0.0,
    ):
        super().__init__()
        check_dropout(dropout)
        smallest = getattr(encoder, "smallest_input", 1)
        if min(input_shape[1:]) < smallest:
            raise ConfigError(
                f"inputs of shape {tuple(input_shape)} are too small for the encoder's "
                f"{len(encoder.blocks)} 2x2 pools (at least {smallest} per side)"
            )
        training = encoder.training
        with torch.no_grad():  # the head reads the whole last map: its size, from one pass
            flat = encoder.eval().blocks(torch.zeros(1, *input_shape)).flatten(1).shape[1]
        encoder.train(training)  # (in eval mode, so BatchNorm's statistics do not move)
        self.encoder = encoder
        head: list[nn.Module] = [nn.Flatten()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
        self.head = nn.Sequential(*head, nn.Linear(flat, num_classes))
        self.frozen: list[nn.Module] = []
        initialize(self, INITIALIZERS.create(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder.blocks(x))

    def freeze(self, trainable_blocks: int | None) -> None:
        """Train only the encoder's last ``trainable_blocks`` blocks (0: a linear probe;
        None: everything). The head always trains."""
        blocks = list(self.encoder.blocks)
        if trainable_blocks is not None and not 0 <= trainable_blocks <= len(blocks):
            raise ConfigError(
                f"transfer_layers must be between 1 and the encoder's {len(blocks)} blocks, "
                f"got {trainable_blocks}"
            )
        keep = len(blocks) if trainable_blocks is None else trainable_blocks
        self.frozen = blocks[: len(blocks) - keep]
        for block in blocks:
            block.requires_grad_(block not in self.frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> EncoderClassifier:
        super().train(mode)
        for block in self.frozen:
            block.eval()
        return self


class PretextNet(nn.Module):
    """A pretext cell's trained parts as one module: ``model.encoder`` and the task
    (``components.pretext``), which turns a batch of images into (logits, targets)."""

    def __init__(self, model: EncoderClassifier, task: nn.Module):
        super().__init__()
        self.model, self.task = model, task

    def forward(
        self, images: Tensor, view: Callable[[Tensor], Tensor] | None, draws: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        return self.task(self.model.encoder, images, view, draws)
