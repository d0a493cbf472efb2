"""Self-supervised pretext tasks: the labels come from the data itself.

Two tasks the lecture notes name:

* **Context prediction** (Doersch et al. 2015): cut a 3x3 grid of patches out of an
  image, show the model the centre patch and one of its 8 neighbours, and ask which of
  the 8 positions the neighbour came from. A ``gap`` between patches and a random
  ``jitter`` of each patch keep the task from being solved by continuing lines across
  patch edges; the model has to recognise parts of the object instead.
* **Contrastive learning** (SimCLR, Chen et al. 2020): two augmented views of each image
  should map close together and away from the views of every other image in the batch;
  ``nt_xent`` is the loss.

Each task is a registry entry (``pretext:`` in a study file) that builds a small
``nn.Module`` owning the task's head. Given the encoder and a batch of images it returns
``(logits, targets)`` for a cross-entropy: context prediction classifies the neighbour's
position (8 classes); SimCLR's NT-Xent *is* a cross-entropy whose classes are the other
views in the batch. So one training system, one loss and one accuracy serve both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlbench.errors import ConfigError
from dlbench.registry import Registry

# An augmentation reduced to images -> images (the labels play no part in a pretext task).
View = Callable[[Tensor], Tensor]

# The 8 neighbour positions (row, column) in the 3x3 grid, in reading order: label i is
# NEIGHBOURS[i]. The centre (1, 1) is never a label.
NEIGHBOURS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))


def grid_span(patch: int, gap: int, jitter: int) -> int:
    """Side of the square a 3x3 grid of jittered patches needs: images must be this large."""
    return 3 * patch + 2 * gap + 2 * jitter


def context_pairs(
    images: Tensor, *, patch: int, gap: int, jitter: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """(centre, neighbour, label) for each image of ``images`` (N, C, H, W).

    The grid sits at a random place in the image; patch (r, c) starts at
    ``origin + (r, c) * (patch + gap) + jitter + U{-jitter..jitter}`` on each axis, so
    neighbouring patches are ``gap - 2*jitter`` to ``gap + 2*jitter`` pixels apart. The
    neighbour is one of the 8 around the centre, uniformly; its index in ``NEIGHBOURS`` is
    the label. All draws come from ``generator``.
    """
    n, _, height, width = images.shape
    span = grid_span(patch, gap, jitter)
    if patch < 1 or gap < 0 or jitter < 0:
        raise ValueError(f"need patch >= 1, gap >= 0, jitter >= 0; got {patch}, {gap}, {jitter}")
    if min(height, width) < span:
        raise ValueError(
            f"a 3x3 grid of {patch}px patches with gap {gap} and jitter {jitter} needs "
            f"{span}x{span} images, got {height}x{width} (upsample them first)"
        )

    def draw(high: int, size: tuple[int, ...]) -> Tensor:
        return torch.randint(0, high, size, generator=generator)

    origin = torch.stack([draw(height - span + 1, (n,)), draw(width - span + 1, (n,))], dim=1)
    label = draw(len(NEIGHBOURS), (n,))
    where = torch.tensor(NEIGHBOURS)[label]  # (n, 2): the neighbour's (row, column)
    centre = torch.ones_like(where)

    def corner(cell: Tensor) -> Tensor:
        shake = draw(2 * jitter + 1, (n, 2)) - jitter
        return origin + cell * (patch + gap) + jitter + shake

    return (
        _crop(images, corner(centre), patch),
        _crop(images, corner(where), patch),
        label.to(images.device),
    )


def _crop(images: Tensor, corners: Tensor, size: int) -> Tensor:
    """The ``size`` x ``size`` patch at ``corners[i]`` (top, left) of each image, in one gather."""
    corners = corners.to(images.device)
    steps = torch.arange(size, device=images.device)
    rows = (corners[:, 0, None] + steps)[:, :, None]  # (n, size, 1)
    cols = (corners[:, 1, None] + steps)[:, None, :]  # (n, 1, size)
    batch = torch.arange(len(images), device=images.device)[:, None, None]
    return images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def nt_xent_logits(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> tuple[Tensor, Tensor]:
    """SimCLR's similarity logits over a batch of view pairs, and each view's partner.

    Row i of ``z1`` and row i of ``z2`` are two views of one image. With u the 2N
    L2-normalized embeddings, ``logits[i, k] = u_i . u_k / temperature`` and the diagonal
    is -inf (a view is not its own partner); ``partner[i]`` is the other view of i.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"need two (N, d) batches of the same shape, got {z1.shape}, {z2.shape}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = u @ u.T / temperature
    logits = logits.masked_fill(torch.eye(len(u), dtype=torch.bool, device=u.device), -torch.inf)
    n = len(z1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z1.device)
    return logits, partner


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's normalized-temperature cross-entropy: each of the 2N views classifies its
    partner among the other 2N - 1, ``mean_i -log(exp(s_i,p(i)) / sum_{k != i} exp(s_ik))``."""
    return F.cross_entropy(*nt_xent_logits(z1, z2, temperature))


# --- the tasks -------------------------------------------------------------------------


class ContextPrediction(nn.Module):
    """Encode centre and neighbour patches (one pass), concatenate, classify the position
    with a one-hidden-layer head (Doersch et al. fuse the two towers with fc layers too)."""

    def __init__(self, features: int, *, patch: int, gap: int, jitter: int, hidden: int):
        super().__init__()
        if patch < 1 or gap < 0 or jitter < 0:
            raise ConfigError(
                f"pretext 'context': need patch >= 1, gap >= 0, jitter >= 0; "
                f"got {patch}, {gap}, {jitter}"
            )
        self.patch, self.gap, self.jitter = patch, gap, jitter
        self.span = grid_span(patch, gap, jitter)
        self.head = nn.Sequential(
            nn.Linear(2 * features, hidden), nn.ReLU(), nn.Linear(hidden, len(NEIGHBOURS))
        )

    def forward(
        self, encoder: nn.Module, images: Tensor, view: View | None, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        if view is not None:  # e.g. noise against low-level shortcuts, before cutting
            images = view(images)
        centre, neighbour, label = context_pairs(
            images, patch=self.patch, gap=self.gap, jitter=self.jitter, generator=generator
        )
        both = encoder(torch.cat([centre, neighbour]))
        return self.head(torch.cat(both.chunk(2), dim=1)), label


class SimCLR(nn.Module):
    """Two views of each image through the encoder (one pass) and a projection head
    (Linear-ReLU-Linear, as in SimCLR), scored by NT-Xent."""

    def __init__(self, features: int, *, temperature: float, projection: int):
        super().__init__()
        if not temperature > 0:
            raise ConfigError(f"pretext 'simclr': temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.head = nn.Sequential(
            nn.Linear(features, features), nn.ReLU(), nn.Linear(features, projection)
        )

    def forward(
        self, encoder: nn.Module, images: Tensor, view: View | None, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        if view is None:
            raise ConfigError("pretext 'simclr' needs an augmentation to make two views")
        z = self.head(encoder(torch.cat([view(images), view(images)])))
        return nt_xent_logits(*z.chunk(2), self.temperature)


PRETEXTS: Registry[nn.Module | None] = Registry("pretext")


@PRETEXTS.register(
    "none", description="no pretext task: supervised training on the labels", views=False
)
def none(features: int, /) -> None:
    return None


@PRETEXTS.register(
    "context",
    description="context prediction (Doersch 2015): which of 8 neighbours of the centre patch",
    views=False,
)
def context(
    features: int, /, *, patch: int = 6, gap: int = 2, jitter: int = 1, hidden: int = 64
) -> ContextPrediction:
    return ContextPrediction(features, patch=patch, gap=gap, jitter=jitter, hidden=hidden)


@PRETEXTS.register(
    "simclr",
    description="contrastive (SimCLR 2020): two augmented views attract, other images repel",
    views=True,  # needs an augmentation: identical views make the task trivial
)
def simclr(features: int, /, *, temperature: float = 0.5, projection: int = 64) -> SimCLR:
    return SimCLR(features, temperature=temperature, projection=projection)
