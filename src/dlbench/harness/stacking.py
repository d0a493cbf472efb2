"""Which cells train together: one stack (``systems.training``) per stacking key.

Cells stack when they differ only in seed, initializer, learning rate or optimizer
(and those families' settings): same problem, architecture, data, batch size, epochs,
loss, regularizer, augmentation and schedule, which the members of a stack share. Any
model stacks (``systems.stack``). Each cell still gets its own MLflow run, metrics and
outcome, tagged ``dlbench.stacked`` with the number of cells trained together; a cell
trained alone says why in ``dlbench.stack_note``. A stacked cell's cost
(``dlbench.seconds``) is its share of the stack's wall time (building, fitting and
testing the stack), which is tagged ``dlbench.stack_seconds`` on every cell's run: its
MLflow run spans the whole stack, so its start and end times are not its cost.

Search trials train alone: each is suggested from the trials before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dlbench.harness.grid import Cell

# The most cells per stack when ``--stack auto``. On 2 CPU cores, one step of the
# optimizer study's stack (7 optimizer groups) costs 80 us per cell at K = 32, 71 at
# K = 70 and 62 at K = 128 (benchmarks/RESULTS.md): bigger stacks keep paying off,
# while a K x model copy of weights, gradients and optimizer state stays small for
# the MLPs that stack.
AUTO = 64
NOTE = "dlbench.stack_note"  # why a cell trained alone (``STACKED`` = 1)
VARYING = ("init", "lr", "optimizer")  # and their settings, e.g. init.gain, momentum
PREFIXES = tuple(f"{family}." for family in VARYING)


def limit(stack: int, pending: int, workers: int) -> int:
    """Cells to claim at once: ``stack``, or (0: auto) up to ``AUTO`` in stacks of equal
    size (70 cells: 35 + 35, not 64 + 6), leaving every worker a share."""
    share = max(1, math.ceil(pending / workers))
    if stack:
        return min(stack, share)
    return math.ceil(share / math.ceil(share / AUTO))


def key(cell: Cell) -> tuple[Any, ...]:
    """Cells with equal keys may train together."""
    own = set(cell.optimizer_hparams)  # momentum, beta1, ...: the optimizer's own settings
    fixed = {
        k: v
        for k, v in cell.settings.items()
        if k not in VARYING and k not in own and not k.startswith(PREFIXES)
    }
    return (
        cell.study,
        cell.problem,
        cell.trial,
        tuple(sorted((k, repr(v)) for k, v in fixed.items())),
    )


def groups(cells: Sequence[Cell]) -> list[list[Cell]]:
    """``cells`` split by ``key``, groups in order of their first member.

    Within a group, cells with one optimizer setting come next to each other (else in
    claim order): the stack steps each run of them with one torch optimizer, so an
    interleaved claim (sgd s0, adam s0, sgd s1, ...) would cost one optimizer per cell.
    """
    found: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in cells:
        found.setdefault(key(cell), []).append(cell)
    return [sorted(group, key=_optimizer) for group in found.values()]


def _optimizer(cell: Cell) -> tuple[str, str]:
    return cell.settings["optimizer"], repr(sorted(cell.optimizer_hparams.items()))
