"""1-D signal augmentations: the batch contract on (N, C, L) signals, per-sample draws,
and each entry's math checked by construction."""

from __future__ import annotations

import math

import pytest
import torch

from dlbench.components.augmentations import AUGMENTATIONS, check_compatible
from dlbench.components.signal_augmentations import resample, roll
from dlbench.errors import ConfigError

SIGNAL = [e.name for e in AUGMENTATIONS if e.flags["kind"] == "signal"]


def signals(n: int = 16, channels: int = 1, length: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, channels, length, generator=torch.Generator().manual_seed(seed))


def augment(name: str, x: torch.Tensor, *, seed: int = 0, **hparams) -> torch.Tensor:
    torch.manual_seed(seed)
    y = torch.zeros(len(x), dtype=torch.long)
    out, labels = AUGMENTATIONS.create(name, 10, **hparams)(x, y)
    assert torch.equal(labels, y)  # no entry touches the labels
    return out


def test_the_five_entries_are_registered_for_signals() -> None:
    assert SIGNAL == ["signal_negate", "signal_noise", "signal_shift", "signal_stretch",
                      "signal_trend"]  # fmt: skip
    for name in SIGNAL:
        flags = AUGMENTATIONS.get(name).flags
        assert flags["needs_signals"] and not flags["needs_images"] and not flags["soft_labels"]


@pytest.mark.parametrize("name", SIGNAL)
def test_contract_shape_seeded_per_sample_and_input_untouched(name: str) -> None:
    x = signals(channels=2)
    x0 = x.clone()
    out = augment(name, x, seed=3)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    assert torch.equal(x, x0)
    assert torch.equal(out, augment(name, x, seed=3))
    assert not torch.equal(out, augment(name, x, seed=4))
    same = signals(1).expand(16, -1, -1).contiguous()  # sixteen copies of one signal
    assert len({tuple(s.flatten().tolist()) for s in augment(name, same)}) > 1


@pytest.mark.parametrize("name", SIGNAL)
def test_signals_only(name: str) -> None:
    check_compatible(name, (1, 40))
    for shape in [(40,), (1, 8, 8)]:
        with pytest.raises(ConfigError, match=r"needs 1-D signals \(C, L\)"):
            check_compatible(name, shape)
    # A recurrent problem's (steps, features) sequence has two axes too, time first.
    with pytest.raises(ConfigError, match=r"inputs are sequences \(steps, features\) of shape"):
        check_compatible(name, (40, 1), sequence=True)


def test_roll_is_a_circular_shift_per_signal() -> None:
    x = torch.arange(10.0).repeat(2, 1, 1)  # (2, 1, 10)
    out = roll(x, torch.tensor([3, -1]))
    assert torch.equal(out[0, 0], torch.roll(x[0, 0], 3))
    assert torch.equal(out[1, 0], torch.roll(x[1, 0], -1))


def test_shift_stays_within_max_shift() -> None:
    x = signals(64)
    out = augment("signal_shift", x, max_shift=2)
    for signal, shifted in zip(x[:, 0], out[:, 0], strict=True):
        assert any(torch.equal(torch.roll(signal, k), shifted) for k in range(-2, 3))


def test_resample_by_one_is_identity_and_stretch_widens_about_the_centre() -> None:
    t = torch.arange(41.0)
    ramp = (t - 20)[None, None, :].repeat(2, 1, 1)  # a line through 0 at the centre
    assert torch.allclose(resample(ramp, torch.tensor([1.0, 1.0])), ramp)
    out = resample(ramp, torch.tensor([2.0, 0.5]))
    assert torch.allclose(out[0, 0], (t - 20) / 2)  # stretched x2: half the slope
    assert torch.allclose(out[1, 0], ((t - 20) * 2).clamp(-20, 20))  # squeezed: ends held


def test_noise_has_the_asked_standard_deviation() -> None:
    x = torch.zeros(256, 1, 40)
    out = augment("signal_noise", x, std=0.3)
    assert math.isclose(out.std().item(), 0.3, rel_tol=0.03) and abs(out.mean().item()) < 0.01


def test_trend_removes_offset_and_slope_then_draws_new_ones() -> None:
    t = torch.arange(40.0) - 19.5
    x = signals(512)
    out = augment("signal_trend", x, max_shift=1, offset_std=0.3, slope_std=0.04)  # no shift
    offsets = out.mean(-1)
    slopes = ((out - offsets[..., None]) * t).sum(-1) / (t**2).sum()
    centred = x - x.mean(-1, keepdim=True)
    residual = centred - ((centred * t).sum(-1, keepdim=True) / (t**2).sum()) * t
    assert torch.allclose(out - offsets[..., None] - slopes[..., None] * t, residual, atol=1e-5)
    assert math.isclose(offsets.std().item(), 0.3, rel_tol=0.1)
    assert math.isclose(slopes.std().item(), 0.04, rel_tol=0.1)


def test_negate_flips_whole_signals_with_probability_p() -> None:
    x = signals(2000)
    out = augment("signal_negate", x, p=0.25)
    flipped = torch.isclose(out, -x).all(-1).all(-1)
    assert torch.equal(flipped | torch.isclose(out, x).all(-1).all(-1), torch.ones(2000).bool())
    assert abs(flipped.float().mean().item() - 0.25) < 0.03
    assert torch.equal(augment("signal_negate", x, p=1.0), -x)


def test_negation_maps_mnist1d_templates_onto_other_classes() -> None:
    """Why sign flips are not label-safe: 0 and 6, 1 and 7, 3 and 8 are each other's negatives."""
    from mnist1d.data import get_templates

    templates = torch.tensor(get_templates()["x"], dtype=torch.float64)
    for a, b in [(0, 6), (1, 7), (3, 8)]:
        assert torch.corrcoef(torch.stack([-templates[a], templates[b]]))[0, 1] > 0.99


@pytest.mark.parametrize(("name", "hparams"), [
    ("signal_shift", {"max_shift": -1}),
    ("signal_stretch", {"scale": [0.0, 1.1]}),
    ("signal_noise", {"std": -0.1}),
    ("signal_trend", {"max_shift": 0}),
    ("signal_negate", {"p": 2.0}),
])  # fmt: skip
def test_bad_hyperparameters_are_config_errors(name: str, hparams: dict) -> None:
    with pytest.raises(ConfigError, match=name):
        AUGMENTATIONS.create(name, 10, **hparams)
