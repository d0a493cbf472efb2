"""Augmentations that mix samples: Mixup and CutMix (registered in ``augmentations``).

Both draw ``lam ~ Beta(alpha, alpha)`` once per batch and pair sample ``i`` with
``i - 1`` (the batch rolled by one), as torchvision's ``v2.MixUp``/``v2.CutMix`` and the
papers' reference code do; the pairing is random because the training loader shuffles.
Labels come back as ``(N, num_classes)`` probabilities in the images' dtype, each row a
mix of two one-hot rows, so the loss must take soft targets (``F.cross_entropy`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from dlbench.errors import ConfigError

Augmentation = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _check(name: str, num_classes: int, alpha: float) -> None:
    if alpha <= 0:
        raise ConfigError(f"augmentation {name!r}: alpha must be > 0, got {alpha}")
    if num_classes < 2:
        raise ConfigError(
            f"augmentation {name!r} mixes class labels, but the problem has {num_classes} classes"
        )


def on_first_call(make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """``make()``'s torchvision transform, built when first called: torchvision takes
    about 0.9 s to import, which training pays once and validation (which builds every
    cell's augmentation) need not pay at all. Arguments are checked before, by us."""
    built: list[Callable[..., Any]] = []

    def transform(*args: Any) -> Any:
        if not built:
            built.append(make())
        return built[0](*args)

    return transform


def torchvision_v2() -> Any:
    """``torchvision.transforms.v2``, imported on first use (see ``on_first_call``)."""
    from torchvision.transforms import v2

    return v2


def _labels(y: Tensor) -> Tensor:
    """Class indices as int64 (what one-hot needs); probabilities pass through."""
    return y if y.is_floating_point() else y.long()


def mixup(num_classes: int, /, *, alpha: float = 1.0) -> Augmentation:
    """``v2.MixUp``: ``x_i <- lam*x_i + (1-lam)*x_{i-1}``, labels likewise.

    Mixing is elementwise, so any input shape works: non-images are viewed as
    ``(N, 1, 1, features)`` for torchvision and reshaped back.
    """
    _check("mixup", num_classes, alpha)
    mix = on_first_call(lambda: torchvision_v2().MixUp(alpha=alpha, num_classes=num_classes))

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        as_image = x if x.ndim == 4 else x.reshape(len(x), 1, 1, -1)
        out, soft = mix(as_image, _labels(y))
        return out.reshape(x.shape), soft.to(x.dtype)

    return apply


def cutmix(num_classes: int, /, *, alpha: float = 1.0) -> Augmentation:
    """``v2.CutMix``: one box per batch, of area about ``1 - lam``, pasted from ``x_{i-1}``.

    The label weight is the box's actual area share after clipping at the border.
    """
    _check("cutmix", num_classes, alpha)
    mix = on_first_call(lambda: torchvision_v2().CutMix(alpha=alpha, num_classes=num_classes))

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        out, soft = mix(x, _labels(y))
        return out, soft.to(x.dtype)

    return apply
