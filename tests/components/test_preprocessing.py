"""Preprocessing: training statistics only, and each entry does what its name says."""

from __future__ import annotations

import pytest
import torch

from dlbench.components.preprocessing import PREPROCESSING
from dlbench.data import DigitsDataModule


def _splits() -> dict:
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([1.0, 5.0, 0.1])
    return {
        name: (torch.randn(n, 3, generator=g) * scale + 3.0, torch.zeros(n))
        for name, n in (("train", 500), ("val", 100), ("test", 100))
    }


def test_center_subtracts_the_training_mean_and_keeps_the_scale() -> None:
    raw = _splits()
    out = PREPROCESSING.create("center")(raw)
    x = out["train"][0]
    assert torch.allclose(x.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(0), raw["train"][0].std(0), rtol=1e-5)
    shift = raw["train"][0].mean(0)
    assert torch.allclose(out["val"][0], raw["val"][0] - shift, atol=1e-5)


def test_standardize_gives_unit_variance_with_training_statistics() -> None:
    raw = _splits()
    out = PREPROCESSING.create("standardize")(raw)
    x = out["train"][0]
    assert torch.allclose(x.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(3), atol=1e-5)
    mean, std = raw["train"][0].mean(0), raw["train"][0].std(0, unbiased=False)
    assert torch.allclose(out["test"][0], (raw["test"][0] - mean) / std, atol=1e-4)


def test_none_is_the_identity() -> None:
    raw = _splits()
    assert PREPROCESSING.create("none")(raw) is raw


@pytest.mark.parametrize("name", PREPROCESSING.names())
def test_contract(name: str) -> None:
    out = PREPROCESSING.create(name)(_splits())
    assert set(out) == {"train", "val", "test"}
    assert all(torch.isfinite(x).all() for x, _ in out.values())


def test_digits_take_the_preprocessing_by_name() -> None:
    centred = DigitsDataModule(preprocessing="center").tensors["train"][0]
    assert centred.mean(0).abs().max() < 1e-4 and centred.std(0).max() > 2.0  # raw scale 0..16
    raw = DigitsDataModule(preprocessing="none").tensors["train"][0]
    assert raw.min() == 0.0 and raw.max() == 16.0
