"""Augmentations of 1-D signals (MNIST-1D): shift, stretch, noise, the SSL notebook's
offset-and-slope views, and sign flips, which do not keep the label.

MNIST-1D's generator makes each signal by padding, scaling, translating, shearing and
adding noise to one of ten templates, so a further small shift, stretch or dose of noise
gives a signal the generator could have made: the label is invariant to them. A sign
flip is not one of its moves, and three pairs of templates are each other's negatives,
so training on flipped signals teaches contradicting pairs (a 0 labelled as what is a 6).

Signals are ``(N, C, L)`` batches (the problems' ``channels`` layout); randomness is drawn
per sample from torch's global RNGs, like the image entries in ``augmentations``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlbench.components.augmentations import AUGMENTATIONS, Range, _range, _require, _uniform
from dlbench.components.mixing import Augmentation


def roll(x: Tensor, shifts: Tensor) -> Tensor:
    """``out[n, :, t] = x[n, :, (t - shifts[n]) mod L]``: each signal circularly shifted."""
    length = x.shape[-1]
    index = (torch.arange(length, device=x.device) - shifts[:, None]) % length  # (N, L)
    return x.gather(-1, index[:, None, :].expand_as(x))


def resample(x: Tensor, factor: Tensor) -> Tensor:
    """Each signal stretched in time by ``factor[n]`` about its centre (> 1 widens it),
    linearly interpolated; points read from outside the signal take the nearest end value."""
    length = x.shape[-1]
    centre = (length - 1) / 2
    t = torch.arange(length, device=x.device, dtype=factor.dtype)
    source = ((t - centre) / factor[:, None] + centre).clamp(0, length - 1)  # (N, L)
    left = source.floor().long().clamp(max=length - 2)
    weight = (source - left).to(x.dtype)[:, None, :]
    ahead = left + 1
    below = x.gather(-1, left[:, None, :].expand_as(x))
    above = x.gather(-1, ahead[:, None, :].expand_as(x))
    return below + weight * (above - below)


def _signal(name: str, description: str) -> object:
    """Register a signal entry with the flags every one of them shares."""
    return AUGMENTATIONS.register(
        name,
        description=description,
        kind="signal",
        needs_images=False,
        needs_signals=True,
        soft_labels=False,
    )


@_signal("signal_shift", "Circular shift of a 1-D signal by U{-max_shift..max_shift} positions")
def signal_shift(num_classes: int, /, *, max_shift: int = 4) -> Augmentation:
    """The default 4 positions is a tenth of MNIST-1D's 40, about the share the image
    entries' one pixel is of 8x8 digits; the SSL notebook's views shift by up to 10."""
    _require(max_shift >= 0, "signal_shift", f"max_shift must be >= 0, got {max_shift}")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        shifts = torch.randint(-max_shift, max_shift + 1, (len(x),), device=x.device)
        return roll(x, shifts), y

    return apply


@_signal("signal_stretch", "Stretch a 1-D signal in time by a factor in U(scale) about its centre")
def signal_stretch(num_classes: int, /, *, scale: Range = (0.9, 1.1)) -> Augmentation:
    """MNIST-1D's generator scales each template by up to +-40% (``scale_coeff``), so +-10%
    stays well inside what the classes already contain."""
    lo, hi = _range("signal_stretch", "scale", scale)
    _require(lo > 0, "signal_stretch", f"scale must be positive, got {scale}")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return resample(x, _uniform(len(x), lo, hi, x)), y

    return apply


@_signal("signal_noise", "Add Gaussian noise of standard deviation std to every point")
def signal_noise(num_classes: int, /, *, std: float = 0.3) -> Augmentation:
    """Signals are scaled to std 1; 0.3 is about the generator's correlated noise (0.25).
    A tenth of the signal's scale barely helps: the paper's CNN on 1,000 signals gains 2.5
    points of accuracy at std 0.1 and 8.5 at 0.3 (5 seeds each)."""
    _require(std >= 0, "signal_noise", f"std must be >= 0, got {std}")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return x + std * torch.randn_like(x), y

    return apply


@_signal(
    "signal_trend",
    "The MNIST-1D SSL notebook's views: remove offset and slope, shift circularly by "
    "U{0..max_shift-1}, add an offset ~ N(0, offset_std) and a slope ~ N(0, slope_std)",
)
def signal_trend(
    num_classes: int, /, *, max_shift: int = 10, offset_std: float = 0.3, slope_std: float = 0.04
) -> Augmentation:
    """The notebook's ``augment`` (its defaults: the spread of offsets and slopes measured
    on the training signals, shifts below 10), per signal and channel."""
    _require(max_shift >= 1, "signal_trend", f"max_shift must be >= 1, got {max_shift}")
    _require(offset_std >= 0 and slope_std >= 0, "signal_trend", "the stds must be >= 0")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        n, length = len(x), x.shape[-1]
        t = torch.arange(length, device=x.device, dtype=x.dtype) - (length - 1) / 2
        centred = x - x.mean(dim=-1, keepdim=True)
        slopes = (centred * t).sum(dim=-1, keepdim=True) / (t**2).sum()
        flat = roll(centred - slopes * t, torch.randint(0, max_shift, (n,), device=x.device))
        offset = offset_std * torch.randn(n, 1, 1, device=x.device, dtype=x.dtype)
        slope = slope_std * torch.randn(n, 1, 1, device=x.device, dtype=x.dtype)
        return flat + slope * t + offset, y

    return apply


@_signal("signal_negate", "Flip a 1-D signal's sign with probability p; not label-safe")
def signal_negate(num_classes: int, /, *, p: float = 0.5) -> Augmentation:
    """Not label-safe on MNIST-1D: three pairs of its templates are each other's negatives
    (0 and 6, 1 and 7, 3 and 8), so a negated 0 is a 6, as a rotated 6 is a 9."""
    _require(0 <= p <= 1, "signal_negate", f"p must be in [0, 1], got {p}")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        flip = torch.rand(len(x), device=x.device) < p
        return torch.where(flip[:, None, None], -x, x), y

    return apply
