"""The transferable encoder: any image size in, one feature vector out; freezing is real."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.errors import ConfigError
from dlbench.models import Conv1dEncoder, ConvEncoder, EncoderClassifier


def _classifier(norm: str = "batchnorm") -> EncoderClassifier:
    torch.manual_seed(0)
    return EncoderClassifier(ConvEncoder(1, channels=(4, 8), norm=norm), 10, input_shape=(1, 8, 8))


@pytest.mark.parametrize("size", [4, 6, 24, 31])
def test_any_image_size_gives_one_feature_vector(size: int) -> None:
    encoder = ConvEncoder(1, channels=(4, 8))
    assert encoder(torch.randn(3, 1, size, size)).shape == (3, 8)
    assert encoder.out_features == 8 and encoder.smallest_input == 4


def test_features_are_the_global_average_of_the_last_map() -> None:
    encoder = ConvEncoder(2, channels=(3,))
    x = torch.randn(2, 2, 8, 8)
    assert torch.allclose(encoder(x), encoder.blocks(x).mean(dim=(2, 3)))


@pytest.mark.parametrize(("trainable", "frozen_blocks"), [(0, 2), (1, 1), (2, 0), (None, 0)])
def test_freeze_leaves_exactly_the_last_blocks_and_the_head_trainable(
    trainable: int | None, frozen_blocks: int
) -> None:
    model = _classifier()
    model.freeze(trainable)
    blocks = list(model.encoder.blocks)
    for i, block in enumerate(blocks):
        assert all(p.requires_grad == (i >= frozen_blocks) for p in block.parameters())
    assert all(p.requires_grad for p in model.head.parameters())


def test_frozen_blocks_stay_in_eval_mode_so_batchnorm_statistics_do_not_move() -> None:
    model = _classifier()
    model.freeze(1)  # block 0 frozen, block 1 trains
    model.train()
    frozen_bn, live_bn = (block[1] for block in model.encoder.blocks)
    assert isinstance(frozen_bn, nn.BatchNorm2d) and not frozen_bn.training
    assert live_bn.training and model.head.training
    before = frozen_bn.running_mean.clone(), live_bn.running_mean.clone()
    model(torch.randn(16, 1, 8, 8) * 3 + 1)
    assert torch.equal(frozen_bn.running_mean, before[0])
    assert not torch.equal(live_bn.running_mean, before[1])
    model.freeze(None)  # unfreezing hands the block back to train()
    model.train()
    assert frozen_bn.training


def test_the_head_reads_the_whole_last_map() -> None:
    model = _classifier(norm="none")
    assert model.head[-1].in_features == 8 * 2 * 2  # 8 channels, 8x8 pooled twice
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(model(x), model.head[-1](model.encoder.blocks(x).flatten(1)))
    with pytest.raises(ConfigError, match=r"shape \(1, 3, 3\) are too small"):
        EncoderClassifier(ConvEncoder(1, channels=(4, 8)), 10, input_shape=(1, 3, 3))


def test_freeze_refuses_more_blocks_than_the_encoder_has() -> None:
    with pytest.raises(ConfigError, match="transfer_layers must be between 1 and the encoder's 2"):
        _classifier().freeze(3)


def test_the_classifier_takes_a_1d_encoder_and_building_it_moves_no_statistics() -> None:
    encoder = Conv1dEncoder(1, length=40, norm="batchnorm")
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    model = EncoderClassifier(encoder, 10, input_shape=(1, 40))
    running = [k for k in before if "running" in k]
    assert running and all(torch.equal(before[k], encoder.state_dict()[k]) for k in running)
    assert encoder.training  # the mode it was built in is put back
    assert encoder.out_features == 125 and model.head[-1].in_features == 125
    x = torch.randn(4, 1, 40)
    assert torch.allclose(encoder.eval()(x), encoder.blocks(x).flatten(1))
