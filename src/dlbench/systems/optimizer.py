"""Each member's optimizer, stepped for a whole stack at once.

Members with the same optimizer and hyperparameters (the lr aside) share one torch
optimizer over their slices of the stacked weights; adjacent members form a group
(the harness orders them so). A group whose members share an lr steps at it, as each
would alone. A group whose lrs differ steps at lr 1 and each member's update is then
scaled by its own lr: every registry optimizer's step is lr times a direction that
does not depend on lr (tests/systems/test_optimizers.py checks each entry), so one
step of the stack matches K separate steps to float rounding. Optimizer state lives
per slice, so no member's moments ever mix with another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from dlbench.components import OPTIMIZERS


@dataclass(frozen=True)
class CellOptimizer:
    """One member's optimizer: registry name, lr (after any batch-size rule), the rest."""

    name: str
    lr: float
    hparams: dict[str, Any]


@dataclass(frozen=True)
class _Group:
    where: slice
    optimizer: Optimizer
    views: list[nn.Parameter]  # slices of the stacked tensors, or those tensors
    lr: float | None  # the members' lr when they share it, else None (step at 1, rescale)


class StackOptimizer:
    """The optimizers of K members over (K, ...) parameters ``stacked``."""

    def __init__(self, stacked: Sequence[nn.Parameter], members: Sequence[CellOptimizer]):
        # Frozen parameters (a transferred encoder's) get no optimizer state at all.
        self.stacked = [p for p in stacked if p.requires_grad]
        self.members = list(members)
        self.groups: list[_Group] = []
        start = 0
        key = lambda c: (c.name, sorted(c.hparams.items()))  # noqa: E731
        runs = [(k, len(list(run))) for k, run in groupby(self.members, key=key)]
        for (name, hparams), size in runs:
            where = slice(start, start + size)
            lrs = {c.lr for c in self.members[where]}
            lr = lrs.pop() if len(lrs) == 1 else None
            # One group with one lr: its optimizer steps the stacked tensors themselves
            # (also what a stack of one, whose tensors have no member dimension, needs).
            whole = len(runs) == 1 and lr is not None
            views = self.stacked if whole else [nn.Parameter(p.data[where]) for p in self.stacked]
            optimizer = OPTIMIZERS.create(
                name, views, lr=1.0 if lr is None else lr, **dict(hparams)
            )
            self.groups.append(_Group(where, optimizer, views, lr))
            start = where.stop
        device = self.stacked[0].device if self.stacked else torch.device("cpu")
        weight = [c.lr if g.lr is None else 1.0 for g in self.groups for c in self.members[g.where]]
        self._weight = torch.tensor(weight, device=device, dtype=torch.float64)  # exact lrs
        self._rescale = any(g.lr is None for g in self.groups)

    @property
    def optimizers(self) -> list[Optimizer]:
        return [g.optimizer for g in self.groups]

    def lrs(self, multiplier: float) -> list[float]:
        """Each member's lr for the next step (its schedule's ``multiplier`` applied)."""
        return [c.lr * multiplier for c in self.members]

    def step(self, multiplier: float) -> None:
        """Every group's step at its lr x ``multiplier``; then one rescale of all members
        when some group's lrs differ."""
        before = [p.detach().clone() for p in self.stacked] if self._rescale else []
        for group in self.groups:
            for view, p in zip(group.views, self.stacked, strict=True):
                if view is not p:
                    view.grad = None if p.grad is None else p.grad[group.where]
            for options in group.optimizer.param_groups:
                options["lr"] = (1.0 if group.lr is None else group.lr) * multiplier
            group.optimizer.step()
        if self._rescale:
            for p, old in zip(self.stacked, before, strict=True):
                w = self._weight.to(p.dtype).view(-1, *[1] * (p.dim() - 1))
                p.data.copy_(old.lerp_(p.data, w))  # old + lr * (step at lr 1)

    def zero_grad(self) -> None:
        for p in self.stacked:
            p.grad = None
