"""Which cells train together (``systems.stacked``), and training them as one fit.

Cells stack when they differ only in seed, initializer, learning rate or optimizer
(and those families' settings): same problem, architecture, batch size, epochs,
loss and schedule. Each still gets its own MLflow run, metrics and outcome, tagged
``dlbench.stacked`` with the number of cells trained together; a cell trained alone
says why in ``dlbench.stack_note``. A stacked cell's cost (``dlbench.seconds``) is its
share of the stack's wall time (building, fitting and testing the stack), which is
tagged ``dlbench.stack_seconds`` on every cell's run: its MLflow run spans the whole
stack, so its start and end times are not its cost.

Stacking applies to MLPs without BatchNorm or gated activations, with no regularizer
hooks (penalty, decay, noise, early stopping; dropout stacks), no augmentation, no
pretext task or transferred encoder, and not to search studies (each trial is tuned
and pruned on its own). Everything else trains one model at a time, as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L

from dlbench.components.regularizers import Regularizer
from dlbench.components.schedules import lr_multiplier
from dlbench.harness.failures import cell_training
from dlbench.harness.grid import Cell
from dlbench.harness.mlflow_logger import BufferedMLFlowLogger
from dlbench.harness.runner import Result, build, compiled, make_trainer, summarize
from dlbench.harness.spec import Objective
from dlbench.models.stacked import refusal
from dlbench.problems import Setup
from dlbench.systems import SupervisedSystem
from dlbench.systems.stacked import CellOptimizer, StackedSystem

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


def _refusal(cell: Cell, setup: Setup, system: SupervisedSystem) -> str | None:
    """Why ``cell`` cannot be stacked with others like it (its model aside)."""
    if cell.trial is not None:
        return "search trials are tuned and pruned one at a time"
    reg = system.regularizer
    hooks = ("penalty", "after_step", "perturb", "callbacks")
    if any(getattr(type(reg), h) is not getattr(Regularizer, h) for h in hooks):
        return f"regularizer {cell.settings['regularizer']!r} acts on each training step"
    if system.augmentation is not None:
        return f"augmentation {cell.settings['augmentation']!r} draws per batch"
    if setup.pretext is not None or setup.encoder != "random":
        return "pretext tasks and transferred encoders train one at a time"
    return None


@dataclass
class Stack:
    """Cells built and checked to train together."""

    cells: Sequence[Cell]
    built: list[tuple[Setup, SupervisedSystem]]
    seconds: float  # spent building them, part of the stack's cost


def prepare(cells: Sequence[Cell]) -> Stack | str:
    """``cells`` (one ``key``) built for one stack, or why they cannot be stacked."""
    start = time.perf_counter()
    built = []
    for cell in cells:
        L.seed_everything(cell.seed, verbose=False)  # each model's init, as run_cell's
        setup, system = build(cell)
        if (reason := _refusal(cell, setup, system)) is not None:
            return reason
        built.append((setup, system))
    if (reason := refusal([system.model for _, system in built])) is not None:
        return reason
    return Stack(cells, built, time.perf_counter() - start)


def run_stack(
    stack: Stack,
    objective: Objective,
    *,
    run_ids: Sequence[str],
    tracking_uri: str,
    accelerator: str = "auto",
    devices: list[int] | None = None,
    compile_models: bool = False,
) -> list[Result]:
    """Train a prepared stack; one result per cell, in order. An error in its training
    raises ``CellFailed`` (every cell of the stack fails); any other propagates."""
    start = time.perf_counter()
    cells, built = stack.cells, stack.built
    first = cells[0].settings
    stacked = StackedSystem(
        [system.model for _, system in built],
        built[0][1].loss,
        [CellOptimizer(s.optimizer_name, s.lr, s.optimizer_hparams) for _, s in built],
        [setup.datamodule.loader("train") for setup, _ in built],
        multiplier=lambda steps, epochs: lr_multiplier(
            first["schedule"],
            steps_per_epoch=steps,
            epochs=epochs,
            warmup_epochs=first["warmup_epochs"],
            **cells[0].component_kwargs("schedule"),
        ),
        classification=built[0][1].classification,
    )
    if compile_models:
        stacked.model = compiled(stacked.model)
    data = built[0][0].datamodule
    stacked.loggers_per_cell = [
        BufferedMLFlowLogger(tracking_uri=tracking_uri, run_id=run_id) for run_id in run_ids
    ]
    fit = make_trainer(cells[0].settings, accelerator, devices, logger=False, callbacks=[])
    try:
        with cell_training():
            fit.fit(stacked, datamodule=data)
            fit.test(stacked, datamodule=data, verbose=False)
    finally:
        for (_, system), logger in zip(built, stacked.loggers_per_cell, strict=True):
            logger.log_hyperparams(
                {"lr_effective": system.lr, "batch_size_effective": data.batch_size}
            )
            logger.flush()
    wall = stack.seconds + time.perf_counter() - start
    seconds = wall / len(cells)  # each cell's share: the members train the same steps
    results = []
    for k in range(len(cells)):
        history = stacked.history[k]
        final = {name: values[-1] for name, values in history.items()}
        if stacked.diverged[k] is not None:
            epoch, step = stacked.diverged[k]
            error = f"non-finite training loss at step {step} (epoch {epoch})"
            results.append(
                Result("diverged", final=final, seconds=seconds, error=error, stack_seconds=wall)
            )
            continue
        value = summarize(history[objective.metric], objective)
        if not math.isfinite(value):
            results.append(
                Result(
                    "diverged",
                    final=final,
                    seconds=seconds,
                    error=f"non-finite {objective.metric}",
                    stack_seconds=wall,
                )
            )
            continue
        results.append(Result("completed", value, final, seconds, stack_seconds=wall))
    return results
