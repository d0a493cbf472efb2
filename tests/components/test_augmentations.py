"""Augmentations: the batch contract, per-sample randomness, seeding, and each entry's effect
checked against torchvision or against what it must do by construction."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from dlbench.components.augmentations import AUGMENTATIONS, check_compatible
from dlbench.errors import ConfigError

NUM_CLASSES = 10
SHAPES = [(16, 1, 8, 8), (4, 3, 32, 32)]
# The entries for images and any input; the 1-D signal ones have their own tests.
NAMES = [e.name for e in AUGMENTATIONS if e.flags["kind"] != "signal"]
PER_SAMPLE = [e.name for e in AUGMENTATIONS if e.flags["kind"] == "image"]


def batch(shape: tuple[int, ...] = (16, 1, 8, 8), *, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A standardized-looking batch and integer labels."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randint(NUM_CLASSES, (shape[0],), generator=g)


def augment(name: str, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0, **hparams):
    torch.manual_seed(seed)
    return AUGMENTATIONS.create(name, NUM_CLASSES, **hparams)(x, y)


# --- contract -----------------------------------------------------------------------------


def test_every_entry_declares_its_flags() -> None:
    for entry in AUGMENTATIONS:
        assert entry.flags["kind"] in ("none", "image", "signal", "batch"), entry.name
        assert isinstance(entry.flags["needs_images"], bool), entry.name
        assert isinstance(entry.flags["soft_labels"], bool), entry.name
    assert "9" in AUGMENTATIONS.get("rotate").description  # a rotated 6 is a 9


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", NAMES)
def test_contract_shapes_dtypes_and_input_untouched(name: str, shape: tuple[int, ...]) -> None:
    x, y = batch(shape)
    x0, y0 = x.clone(), y.clone()
    out, labels = augment(name, x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    torch.testing.assert_close(x, x0, rtol=0, atol=0)  # never in place
    assert torch.equal(y, y0)
    if AUGMENTATIONS.get(name).flags["soft_labels"]:
        assert labels.shape == (shape[0], NUM_CLASSES) and labels.dtype == x.dtype
        torch.testing.assert_close(labels.sum(1), torch.ones(shape[0]))
    else:
        assert torch.equal(labels, y)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_batch_and_not_identity(name: str) -> None:
    x, y = batch()
    first, second = augment(name, x, y, seed=3), augment(name, x, y, seed=3)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    if name != "none":
        assert not torch.equal(first[0], x)
        assert not torch.equal(augment(name, x, y, seed=4)[0], first[0])


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_randomness_is_per_sample(name: str) -> None:
    """Sixteen copies of one image must not all come out alike (torchvision's batched
    transforms would draw one parameter set for the whole batch)."""
    x = batch((1, 1, 8, 8))[0].expand(16, -1, -1, -1).contiguous()
    out, _ = augment(name, x, torch.zeros(16, dtype=torch.long))
    distinct = {tuple(image.flatten().tolist()) for image in out}
    assert len(distinct) > 1


def test_none_is_identity() -> None:
    x, y = batch()
    out, labels = augment("none", x, y)
    assert out is x and labels is y


# --- geometric ----------------------------------------------------------------------------


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` moved down ``dy`` and right ``dx`` pixels, zero-filled: the crop of a padded image."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@pytest.mark.parametrize(("name", "hparams", "reach"), [
    ("crop", {"padding": 2}, 2),
    ("translate", {"max_fraction": 0.25}, 2),  # 0.25 * 8 = 2 pixels
])  # fmt: skip
def test_crop_and_translate_are_whole_pixel_shifts(name: str, hparams: dict, reach: int) -> None:
    x, y = batch((64, 1, 8, 8))
    out, _ = augment(name, x, y, **hparams)
    seen = set()
    for image, result in zip(x, out, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-reach, reach + 1)
            for dx in range(-reach, reach + 1)
            if torch.equal(result, shifted(image, dy, dx))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10  # many different shifts within one batch


def test_hflip() -> None:
    x, y = batch()
    assert torch.equal(augment("hflip", x, y, p=1.0)[0], x.flip(-1))
    assert torch.equal(augment("hflip", x, y, p=0.0)[0], x)


def test_rotate_by_90_degrees_is_rot90_counter_clockwise() -> None:
    x = torch.arange(64.0).reshape(1, 1, 8, 8).repeat(2, 3, 1, 1)  # asymmetric
    out, _ = augment("rotate", x, torch.zeros(2, dtype=torch.long), degrees=(90, 90))
    torch.testing.assert_close(out, torch.rot90(x, 1, dims=(-2, -1)), rtol=0, atol=1e-4)


def test_rotate_matches_torchvision() -> None:
    x, y = batch((4, 3, 7, 9))  # not square, so the pixel <-> grid scaling is exercised
    out, _ = augment("rotate", x, y, degrees=(30, 30))
    ref = TF.rotate(x, 30.0, interpolation=InterpolationMode.BILINEAR)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)


def test_rotate_nearest_copies_pixels() -> None:
    """Nearest picks input pixels (or the 0 fill); only exact ties may round otherwise
    than torchvision, whose grid arithmetic differs in the last bits."""
    x, y = batch((4, 3, 7, 9))
    out, _ = augment("rotate", x, y, degrees=(30, 30), interpolation="nearest")
    ref = TF.rotate(x, 30.0, interpolation=InterpolationMode.NEAREST)
    assert torch.isin(out, torch.cat([x.flatten(), torch.zeros(1)])).all()
    assert (out == ref).float().mean() > 0.95


def test_stretch_matches_torchvision_affine() -> None:
    x, y = batch((4, 3, 7, 9))
    out, _ = augment("stretch", x, y, scale=(1.2, 1.2), shear=(15, 15, -5, -5))
    ref = TF.affine(
        x, angle=0.0, translate=[0, 0], scale=1.2, shear=[15.0, -5.0],
        interpolation=InterpolationMode.BILINEAR,
    )  # fmt: skip
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)


# --- erasing ------------------------------------------------------------------------------


def zero_box(image: torch.Tensor) -> tuple[int, int, int]:
    """(zeroed pixels, height, width) of the zero region of a (C, H, W) image, checking that
    it is one rectangle across all channels."""
    zero = (image == 0).all(0)
    assert torch.equal(zero, (image == 0).any(0))
    rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
    if len(rows) == 0:
        return 0, 0, 0
    h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
    assert int(zero.sum()) == h * w  # a filled rectangle
    return h * w, h, w


def test_cutout_zeroes_one_square_clipped_at_the_border() -> None:
    size = 5
    x = torch.rand(200, 2, 16, 16) + 1  # no zeros of its own
    out, _ = augment("cutout", x, torch.zeros(200, dtype=torch.long), size=size)
    full = 0
    for image in out:
        area, h, w = zero_box(image)
        assert 0 < h <= size and 0 < w <= size
        rows = (image == 0).all(0).any(1).nonzero().flatten()
        cols = (image == 0).all(0).any(0).nonzero().flatten()
        if h < size:  # clipped, so it touches the top or bottom border
            assert rows[0] == 0 or rows[-1] == 15
        if w < size:
            assert cols[0] == 0 or cols[-1] == 15
        full += area == size * size
    assert full > 50  # centres well inside give the whole square


def test_random_erasing_zeroes_at_most_one_rectangle() -> None:
    x = torch.rand(64, 3, 16, 16) + 1
    out, _ = augment("random_erasing", x, torch.zeros(64, dtype=torch.long), p=1.0)
    areas = [zero_box(image)[0] for image in out]
    assert all(0.02 * 256 * 0.5 <= a <= 0.33 * 256 * 1.5 for a in areas)
    assert len(set(areas)) > 5
    kept, _ = augment("random_erasing", x, torch.zeros(64, dtype=torch.long), p=0.0)
    assert torch.equal(kept, x)


def test_augmix_stays_in_each_images_range() -> None:
    x, y = batch((16, 3, 8, 8))
    x = x * torch.linspace(0.5, 3.0, 16).view(16, 1, 1, 1)  # each image its own range
    x[0] = 0.7  # a constant image
    out, _ = augment("augmix", x, y, severity=10)  # solarize at 0 would flip a flat image
    lo, hi = x.amin((1, 2, 3)), x.amax((1, 2, 3))
    assert (out.amin((1, 2, 3)) >= lo - 1e-5).all() and (out.amax((1, 2, 3)) <= hi + 1e-5).all()
    torch.testing.assert_close(out[0], x[0])


# --- mixing -------------------------------------------------------------------------------


def partners(labels: torch.Tensor) -> list[tuple[int, float, int, float]]:
    """Each soft row as (class, weight, class, weight): at most two one-hot rows mixed."""
    pairs = []
    for row in labels:
        nonzero = row.nonzero().flatten().tolist()
        assert 1 <= len(nonzero) <= 2
        a, b = (nonzero * 2)[:2]
        pairs.append((a, float(row[a]), b, float(row[b]) if b != a else 0.0))
    return pairs


def distinct_batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample i has label i, so a soft label names the samples that were mixed."""
    return torch.randn(n, 3, 8, 8), torch.arange(n)


def test_mixup_image_is_the_same_mix_as_its_label() -> None:
    x, y = distinct_batch()
    for seed in range(5):
        out, labels = augment("mixup", x, y, seed=seed, alpha=0.4)
        torch.testing.assert_close(labels.sum(1), torch.ones(8))
        for i, (a, wa, b, wb) in enumerate(partners(labels)):
            expected = wa * x[a] + wb * x[b] if a != b else x[a]
            torch.testing.assert_close(out[i], expected)
            assert i in (a, b)


def test_mixup_works_on_tabular_input() -> None:
    x, y = torch.randn(8, 5), torch.arange(8)
    out, labels = augment("mixup", x, y)
    assert out.shape == (8, 5) and labels.shape == (8, NUM_CLASSES)
    (a, wa, b, wb) = partners(labels)[0]
    torch.testing.assert_close(out[0], wa * x[a] + wb * x[b])


def test_cutmix_pixels_come_from_the_two_labelled_images_in_label_proportion() -> None:
    x = torch.arange(1.0, 9.0).view(8, 1, 1, 1).expand(8, 3, 16, 16).contiguous()
    y = torch.arange(8)
    for seed in range(5):
        out, labels = augment("cutmix", x, y, seed=seed)
        for i, (a, wa, b, wb) in enumerate(partners(labels)):
            values = {round(v) - 1 for v in out[i].unique().tolist()}
            assert values <= {a, b} and i in (a, b)
            share_a = float((out[i] == a + 1).float().mean())
            assert share_a == pytest.approx(wa, abs=1e-6)
            assert wb == pytest.approx(1 - wa, abs=1e-6)


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_check_compatible(name: str) -> None:
    check_compatible(name, (1, 8, 8))
    check_compatible(name, (3, 32, 32))
    if AUGMENTATIONS.get(name).flags["needs_images"]:
        for shape in [(64,), (20, 4)]:
            with pytest.raises(ConfigError) as err:
                check_compatible(name, shape)
            message = str(err.value)
            assert name in message and str(shape) in message and "(C, H, W)" in message
            assert "\n" not in message
    else:
        check_compatible(name, (64,))
        check_compatible(name, (20, 4))


def test_check_compatible_augmix_channels_and_unknown_name() -> None:
    with pytest.raises(ConfigError, match="augmix"):
        check_compatible("augmix", (2, 8, 8))
    with pytest.raises(ConfigError, match="did you mean"):
        check_compatible("cut_out", (1, 8, 8))


@pytest.mark.parametrize(("name", "hparams"), [
    ("hflip", {"p": 1.5}),
    ("crop", {"padding": -1}),
    ("translate", {"max_fraction": 2.0}),
    ("rotate", {"degrees": [10, -10]}),
    ("rotate", {"interpolation": "bicubic"}),
    ("stretch", {"shear": [1, 2, 3]}),
    ("stretch", {"scale": [0.0, 1.0]}),
    ("random_erasing", {"scale": [0.1, 2.0]}),
    ("cutout", {"size": 0}),
    ("augmix", {"severity": 11}),
    ("mixup", {"alpha": 0.0}),
    ("cutmix", {"alpha": -1.0}),
    ("crop", {"size": 3}),
])  # fmt: skip
def test_bad_hyperparameters_are_config_errors(name: str, hparams: dict) -> None:
    with pytest.raises(ConfigError, match=name):
        AUGMENTATIONS.create(name, NUM_CLASSES, **hparams)


def test_mixing_needs_classes() -> None:
    with pytest.raises(ConfigError, match="classes"):
        AUGMENTATIONS.create("mixup", 1)


def test_yaml_lists_are_accepted_for_ranges() -> None:
    x, y = batch()
    for name, hparams in [
        ("rotate", {"degrees": [-20, 20]}),
        ("stretch", {"scale": [0.8, 1.2], "shear": [-5, 5]}),
        ("random_erasing", {"scale": [0.1, 0.2], "ratio": [0.5, 2.0]}),
    ]:
        assert augment(name, x, y, **hparams)[0].shape == x.shape
