"""Pretext tasks: the context-prediction patch sampler and SimCLR's NT-Xent loss."""

from __future__ import annotations

import math

import pytest
import torch

from dlbench.components.pretext import NEIGHBOURS, context_pairs, grid_span, nt_xent


def coordinates(n: int, size: int) -> torch.Tensor:
    """Images whose pixel (r, c) holds r * 1000 + c in both channels: a patch tells where it was."""
    r, c = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    grid = (r * 1000 + c).float()
    return grid.expand(n, 2, size, size).clone()


def corners(patches: torch.Tensor) -> torch.Tensor:
    """(row, column) of each patch's top-left pixel, read back from the coordinates."""
    top_left = patches[:, 0, 0, 0].long()
    return torch.stack([top_left // 1000, top_left % 1000], dim=1)


@pytest.mark.parametrize(("patch", "gap", "jitter"), [(3, 0, 0), (4, 2, 0), (4, 3, 1)])
def test_patches_sit_where_their_label_says(patch: int, gap: int, jitter: int) -> None:
    images = coordinates(2000, grid_span(patch, gap, jitter) + 3)
    g = torch.Generator().manual_seed(0)
    centre, neighbour, label = context_pairs(
        images, patch=patch, gap=gap, jitter=jitter, generator=g
    )
    assert centre.shape == neighbour.shape == (2000, 2, patch, patch) and label.shape == (2000,)
    # Whole patches: each is a contiguous block of the image.
    rows = torch.arange(patch)[:, None] * 1000 + torch.arange(patch)[None, :]
    relative = neighbour[:, 0] - neighbour[:, 0, :1, :1]  # each patch minus its top-left
    assert torch.equal(relative, rows.float().expand(2000, -1, -1))
    offset = corners(neighbour) - corners(centre)
    expected = (torch.tensor(NEIGHBOURS)[label] - 1) * (patch + gap)
    shake = offset - expected
    assert shake.abs().max() <= 2 * jitter  # gap respected up to the two patches' jitter
    if jitter:
        assert shake.abs().max() == 2 * jitter and len(shake.unique()) == 4 * jitter + 1
    assert torch.bincount(label, minlength=8).min() > 200  # all 8 positions, about evenly


def test_sampler_is_reproducible_from_its_generator() -> None:
    images = coordinates(16, 20)
    draws = [
        context_pairs(images, patch=4, gap=2, jitter=1, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    assert all(torch.equal(a, b) for a, b in zip(*draws, strict=True))


def test_images_too_small_for_the_grid_are_refused() -> None:
    with pytest.raises(ValueError, match="needs 21x21 images, got 8x8"):
        context_pairs(
            torch.zeros(1, 1, 8, 8), patch=5, gap=2, jitter=1, generator=torch.Generator()
        )


def test_nt_xent_against_a_hand_computed_value() -> None:
    # Two images, 2-D embeddings already unit length. Views: u0=(1,0), u1=(0,1) | u2=(1,0), u3=(-1,0)
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[2.0, 0.0], [-3.0, 0.0]])  # normalised inside: (1,0), (-1,0)
    t = 0.5
    # Similarities / t: s01 = 0, s02 = 2, s03 = -2, s12 = 0, s13 = 0, s23 = -2.
    e = math.exp
    losses = [
        -math.log(e(2) / (e(0) + e(2) + e(-2))),  # view 0, partner 2
        -math.log(e(0) / (e(0) + e(0) + e(0))),  # view 1, partner 3
        -math.log(e(2) / (e(2) + e(0) + e(-2))),  # view 2, partner 0
        -math.log(e(0) / (e(-2) + e(0) + e(-2))),  # view 3, partner 1
    ]
    assert nt_xent(z1, z2, temperature=t).item() == pytest.approx(sum(losses) / 4, rel=1e-6)


def test_nt_xent_rewards_matching_views_and_is_scale_free() -> None:
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    other = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    assert nt_xent(z, z) < nt_xent(z, other)
    assert nt_xent(z, 3 * z).item() == pytest.approx(nt_xent(z, z).item(), rel=1e-5)
    # Perfectly matched, mutually orthogonal views: the lowest loss the batch allows.
    eye = torch.eye(8)
    floor = -math.log(math.exp(2) / (math.exp(2) + 14))
    assert nt_xent(eye, eye, temperature=0.5).item() == pytest.approx(floor, rel=1e-6)
