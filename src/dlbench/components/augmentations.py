"""Data augmentations from the lecture notes: crop, translation, rotation, stretching,
flips, Cutout, Random Erasing, AugMix, Mixup and CutMix.

An augmentation is a callable ``(x, y) -> (x, y)`` that the training system applies to
each *training* batch only (never to validation or test batches), on whatever device the
batch already sits. Batches come from the in-memory loader: images are ``(N, C, H, W)``
floats, standardized, so 0 is the dataset mean; every hole, border and fill is 0.

Randomness is drawn per sample, which is what augmentation means: torchvision's v2
transforms, given a batched tensor, draw *one* parameter set for the whole batch. So the
geometric and erasing entries are vectorized here with per-sample parameters (integer
shifts by gather; rotation/scale/shear by ``affine_grid`` + ``grid_sample`` with the
matrices torchvision itself would build), and ``random_erasing``/``augmix`` call the
torchvision transform once per image. Mixup and CutMix (in ``mixing``) are batch-level
by design: one ``lam`` per batch, as in torchvision and the papers' code.

All random numbers come from torch's global RNGs (CPU, or the batch's CUDA device),
which the harness seeds per cell, so the same seed gives the same augmented batches.
Inputs are never modified in place: an unshuffled loader yields views of the dataset.

Flags: ``kind`` is ``"none"``, ``"image"`` or ``"signal"`` (per-sample transform of an image
or of a 1-D signal, ``signal_augmentations``) or ``"batch"`` (mixes samples);
``needs_images`` means the input must be ``(C, H, W)``, ``needs_signals`` ``(C, L)`` (see
``check_compatible``);
``soft_labels`` means ``y`` comes back as ``(N, num_classes)`` float probabilities, so the
loss must accept soft targets (``F.cross_entropy`` does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dlbench.components.mixing import (
    Augmentation,
    cutmix,
    mixup,
    on_first_call,
    torchvision_v2,
)
from dlbench.errors import ConfigError
from dlbench.registry import Registry

Range = float | Sequence[float]

AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def check_compatible(name: str, input_shape: tuple[int, ...], *, sequence: bool = False) -> None:
    """Raise ConfigError if augmentation ``name`` cannot run on samples of ``input_shape``
    (``sequence``: (steps, features) sequences, whose time axis comes first)."""
    flags = AUGMENTATIONS.get(name).flags
    shape = tuple(input_shape)
    if flags.get("needs_signals") and sequence:
        raise ConfigError(
            f"augmentation {name!r} needs 1-D signals (C, L), but the problem's inputs are "
            f"sequences (steps, features) of shape {shape}"
        )
    if flags["needs_images"] and len(shape) != 3:
        raise ConfigError(
            f"augmentation {name!r} needs images (C, H, W), but the problem's input shape is {shape}"
        )
    if flags.get("needs_signals") and len(shape) != 2:
        raise ConfigError(
            f"augmentation {name!r} needs 1-D signals (C, L), but the problem's input shape is {shape}"
        )
    channels = flags.get("channels")
    if channels and len(shape) == 3 and shape[0] not in channels:
        raise ConfigError(
            f"augmentation {name!r} needs images (C, H, W) with C in {channels}, "
            f"but the problem's input shape is {shape}"
        )


# --- helpers ------------------------------------------------------------------------------


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"augmentation {name!r}: {message}")


def _range(name: str, key: str, value: Range) -> tuple[float, float]:
    """A number ``v`` means ``(-v, v)``; a pair is ``(lo, hi)`` (YAML gives lists)."""
    if isinstance(value, int | float):
        _require(value >= 0, name, f"{key} must be >= 0, got {value}")
        return -float(value), float(value)
    _require(len(value) == 2, name, f"{key} takes a number or (lo, hi), got {value}")
    lo, hi = (float(v) for v in value)
    _require(lo <= hi, name, f"{key} must be (lo, hi) with lo <= hi, got {list(value)}")
    return lo, hi


def _uniform(n: int, lo: float, hi: float, like: Tensor) -> Tensor:
    """``n`` draws from U(lo, hi) on ``like``'s device, in at least float32."""
    dtype = torch.promote_types(like.dtype, torch.float32)
    return torch.rand(n, device=like.device, dtype=dtype) * (hi - lo) + lo


def _shift(x: Tensor, dy: Tensor, dx: Tensor, pad: int) -> Tensor:
    """``out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]]``, 0 outside; ``|dy|, |dx| <= pad``."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    rows = torch.arange(h, device=x.device) - dy[:, None] + pad  # (N, H)
    cols = torch.arange(w, device=x.device) - dx[:, None] + pad  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return xp[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def _affine(
    x: Tensor, angle: Tensor, scale: Tensor, shear_x: Tensor, shear_y: Tensor, mode: str
) -> Tensor:
    """Per-sample ``torchvision.transforms.v2.functional.affine`` about the image centre.

    The inverse matrix is torchvision's ``_get_inverse_affine_matrix`` (degrees; positive
    ``angle`` turns clockwise on screen), rescaled from pixels to ``affine_grid``'s [-1, 1].
    """
    n, _, h, w = x.shape
    rot, sx, sy = (torch.deg2rad(t) for t in (angle, shear_x, shear_y))
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -(a * torch.tan(sx) + torch.sin(rot))
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = torch.cos(rot) - c * torch.tan(sx)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=a.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = d / scale, -b / scale * (h / w)
    theta[:, 1, 0], theta[:, 1, 1] = -c / scale * (w / h), a / scale
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _mode(name: str, interpolation: str) -> str:
    _require(
        interpolation in ("bilinear", "nearest"),
        name,
        f"interpolation must be bilinear or nearest, got {interpolation!r}",
    )
    return interpolation


# --- entries ------------------------------------------------------------------------------


@AUGMENTATIONS.register(
    "none",
    description="No augmentation: the batch as it comes",
    kind="none",
    needs_images=False,
    soft_labels=False,
)
def none(num_classes: int, /) -> Augmentation:
    return lambda x, y: (x, y)


@AUGMENTATIONS.register(
    "crop",
    description="Random crop with zero padding: shift by whole pixels in [-padding, padding] per axis",
    kind="image",
    needs_images=True,
    soft_labels=False,
)
def crop(num_classes: int, /, *, padding: int = 1) -> Augmentation:
    """``v2.RandomCrop(size=(H, W), padding=padding)`` per sample.

    Scale: the default of 1 pixel on 8x8 digits is an eighth of the side, the same share
    as CIFAR's customary 4 pixels on 32x32.
    """
    _require(padding >= 0, "crop", f"padding must be >= 0, got {padding}")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        dy, dx = torch.randint(-padding, padding + 1, (2, len(x)), device=x.device)
        return _shift(x, dy, dx, padding), y

    return apply


@AUGMENTATIONS.register(
    "translate",
    description="Random translation by up to max_fraction of the side, rounded to whole pixels",
    kind="image",
    needs_images=True,
    soft_labels=False,
)
def translate(num_classes: int, /, *, max_fraction: float = 0.125) -> Augmentation:
    """``v2.RandomAffine(degrees=0, translate=(f, f))`` per sample: each shift is
    ``round(U(-f*side, f*side))`` pixels, as torchvision draws it, so images stay sharp.
    """
    _require(
        0 <= max_fraction <= 1, "translate", f"max_fraction must be in [0, 1], got {max_fraction}"
    )

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h, w = x.shape[-2:]
        pad = math.ceil(max_fraction * max(h, w))
        dy, dx = (
            torch.round(_uniform(len(x), -max_fraction * s, max_fraction * s, x)) for s in (h, w)
        )
        return _shift(x, dy.long(), dx.long(), pad), y

    return apply


@AUGMENTATIONS.register(
    "rotate",
    description="Random rotation by U(degrees) about the centre; not label-safe: a rotated 6 is a 9",
    kind="image",
    needs_images=True,
    soft_labels=False,
)
def rotate(
    num_classes: int, /, *, degrees: Range = 15.0, interpolation: str = "bilinear"
) -> Augmentation:
    """``v2.RandomRotation(degrees)`` per sample; positive angles turn counter-clockwise.

    Keep the range small for digits: the label is not rotation-invariant (6 <-> 9).
    torchvision defaults to nearest interpolation; bilinear is kinder to 8x8 images.
    """
    lo, hi = _range("rotate", "degrees", degrees)
    mode = _mode("rotate", interpolation)

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        angle = -_uniform(len(x), lo, hi, x)  # rotate == affine with the angle negated
        zero = torch.zeros_like(angle)
        return _affine(x, angle, zero + 1, zero, zero, mode), y

    return apply


@AUGMENTATIONS.register(
    "stretch",
    description="Random scaling (zoom in scale) and shear (degrees), v2.RandomAffine per sample",
    kind="image",
    needs_images=True,
    soft_labels=False,
)
def stretch(
    num_classes: int,
    /,
    *,
    scale: Sequence[float] = (0.9, 1.1),
    shear: Range = 10.0,
    interpolation: str = "bilinear",
) -> Augmentation:
    """``v2.RandomAffine(degrees=0, scale=scale, shear=shear)`` per sample.

    ``shear`` as in torchvision: ``s`` means an x-shear in U(-s, s) degrees, a pair an
    x-shear range, four numbers x- and y-shear ranges.
    """
    s_lo, s_hi = _range("stretch", "scale", scale)
    _require(s_lo > 0, "stretch", f"scale must be positive, got {list(scale)}")
    shears = [shear] if isinstance(shear, int | float) else list(shear)
    _require(len(shears) in (1, 2, 4), "stretch", f"shear takes 1, 2 or 4 numbers, got {shear}")
    x_range = _range("stretch", "shear", shears[0] if len(shears) == 1 else shears[:2])
    y_range = _range("stretch", "shear", shears[2:]) if len(shears) == 4 else (0.0, 0.0)
    mode = _mode("stretch", interpolation)

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        n = len(x)
        zoom, sx, sy = (_uniform(n, *r, x) for r in ((s_lo, s_hi), x_range, y_range))
        return _affine(x, torch.zeros_like(zoom), zoom, sx, sy, mode), y

    return apply


@AUGMENTATIONS.register(
    "hflip",
    description="Horizontal flip with probability p; not label-safe for digits or text",
    kind="image",
    needs_images=True,
    soft_labels=False,
)
def hflip(num_classes: int, /, *, p: float = 0.5) -> Augmentation:
    _require(0 <= p <= 1, "hflip", f"p must be in [0, 1], got {p}")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        flip = torch.rand(len(x), device=x.device) < p
        return torch.where(flip[:, None, None, None], x.flip(-1), x), y

    return apply


@AUGMENTATIONS.register(
    "cutout",
    description="Cutout: zero one size x size square (the mean) at a random centre, clipped at the border",
    kind="image",
    needs_images=True,
    soft_labels=False,
)
def cutout(num_classes: int, /, *, size: int = 4) -> Augmentation:
    """DeVries & Taylor (2017), as in their code: the centre is uniform over all pixels,
    so the square may stick out of the image and is clipped; only a square fully inside
    zeroes ``size**2`` pixels. The default 4 is half the side of 8x8 digits,
    as the paper's 16 on 32x32 CIFAR-10.
    """
    _require(size >= 1, "cutout", f"size must be >= 1, got {size}")

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        n, _, h, w = x.shape
        top = torch.randint(h, (n, 1), device=x.device) - size // 2
        left = torch.randint(w, (n, 1), device=x.device) - size // 2
        rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        in_rows = (rows >= top) & (rows < top + size)  # (N, H)
        in_cols = (cols >= left) & (cols < left + size)  # (N, W)
        hole = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        return x.masked_fill(hole, 0.0), y

    return apply


@AUGMENTATIONS.register(
    "random_erasing",
    description="Random Erasing: with probability p, zero a rectangle of scale (area share) and ratio",
    kind="image",
    needs_images=True,
    soft_labels=False,
)
def random_erasing(
    num_classes: int,
    /,
    *,
    p: float = 0.5,
    scale: Sequence[float] = (0.02, 0.33),
    ratio: Sequence[float] = (0.3, 3.3),
) -> Augmentation:
    """``v2.RandomErasing(p, scale, ratio, value=0)`` called once per image."""
    _require(0 <= p <= 1, "random_erasing", f"p must be in [0, 1], got {p}")
    lo, hi = _range("random_erasing", "scale", scale)
    _require(lo >= 0 and hi <= 1, "random_erasing", f"scale must lie in [0, 1], got {list(scale)}")
    ratios = _range("random_erasing", "ratio", ratio)
    erase = on_first_call(lambda: torchvision_v2().RandomErasing(p=p, scale=(lo, hi), ratio=ratios))

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return torch.stack([erase(image) for image in x]), y

    return apply


@AUGMENTATIONS.register(
    "augmix",
    description="AugMix: blend chains of random ops with the original, v2.AugMix per image",
    kind="image",
    needs_images=True,
    soft_labels=False,
    channels=(1, 3),
)
def augmix(
    num_classes: int,
    /,
    *,
    severity: int = 3,
    mixture_width: int = 3,
    chain_depth: int = -1,
    alpha: float = 1.0,
) -> Augmentation:
    """``v2.AugMix`` per image, on images mapped to [0, 1] and back.

    AugMix's ops (autocontrast, equalize, posterize, solarize, ...) need intensities in
    [0, 1], but our images are standardized. Each image is min-max scaled to [0, 1] by its
    own range, augmented, and mapped back to that range, so no dataset statistics are
    needed; a constant image stays constant. Areas uncovered by AugMix's shifts and
    rotations are filled with the image's minimum (its background, for digits).
    One call per image: the ops come from Python, so this is the slowest entry.
    """
    _require(1 <= severity <= 10, "augmix", f"severity must be in [1, 10], got {severity}")
    _require(mixture_width >= 1, "augmix", f"mixture_width must be >= 1, got {mixture_width}")
    _require(alpha > 0, "augmix", f"alpha must be > 0, got {alpha}")
    mix = on_first_call(
        lambda: torchvision_v2().AugMix(
            severity=severity, mixture_width=mixture_width, chain_depth=chain_depth, alpha=alpha
        )
    )

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        span = x.amax(dim=(1, 2, 3), keepdim=True) - lo  # 0 for a constant image: stays constant
        unit = ((x - lo) / span.clamp_min(1e-12)).clamp(0, 1)
        out = torch.stack([mix(image) for image in unit])
        return out * span + lo, y

    return apply


AUGMENTATIONS.register(
    "mixup",
    description="Mixup: x = lam*x_i + (1-lam)*x_j, same mix of one-hot labels, lam ~ Beta(alpha, alpha)",
    kind="batch",
    needs_images=False,
    soft_labels=True,
)(mixup)

AUGMENTATIONS.register(
    "cutmix",
    description="CutMix: paste a box from another image, labels mixed by its area, lam ~ Beta(alpha, alpha)",
    kind="batch",
    needs_images=True,
    soft_labels=True,
)(cutmix)
