"""Execute: train a stack of cells (K >= 1) on the one engine, fit and test once.

``train`` builds each cell from its settings (``harness.plan.build``), stacks them
(cells that share a stacking key, ``harness.stacking``) on ``systems.training``, and
returns each cell's result; the worker records them.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import LightningEnvironment
from mlflow.tracking import MlflowClient
from torch import nn

from dlbench.data.lightning import LightningData
from dlbench.harness import encoders
from dlbench.harness.failures import cell_training
from dlbench.harness.grid import Cell
from dlbench.harness.mlflow_logger import BufferedMLFlowLogger
from dlbench.harness.plan import Built, build
from dlbench.harness.settings import DEFAULT_PRECISION
from dlbench.harness.spec import Objective
from dlbench.problems import Setup
from dlbench.records import OPTIMIZER_STEP_SECONDS, STEP_SECONDS
from dlbench.systems.training import (
    DIVERGED,
    PRUNED,
    STOPPED,
    TRAINING,
    Member,
    Prune,
    TrainingSystem,
)


@dataclass
class Result:
    """What one cell attempt produced; ``objective`` is None unless it completed."""

    outcome: str
    objective: float | None = None
    final: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # this cell's own cost (``records.SECONDS``)
    error: str | None = None
    stack_seconds: float | None = None  # the wall time of the stack it trained in, if any


def summarize(values: list[float], objective: Objective) -> float:
    """The objective's value: the last epoch's, or the best epoch's in its direction."""
    if objective.summary == "last":
        return values[-1]
    return max(values) if objective.direction == "maximize" else min(values)


COMPILED = "dlbench.compiled"  # tag of runs whose model went through torch.compile


def make_trainer(
    settings: Mapping[str, Any],
    accelerator: str,
    devices: list[int] | None,
) -> L.Trainer:
    """The Trainer every stack of cells (K >= 1) is fitted by: the cells' epochs and
    precision."""
    return L.Trainer(
        max_epochs=settings["epochs"],
        precision=settings.get("precision", DEFAULT_PRECISION),
        accelerator=accelerator,
        devices=devices or 1,
        logger=False,  # each member logs to its own MLflow run (TrainingSystem)
        enable_checkpointing=False,
        enable_progress_bar=False,  # the sweep draws one bar for all cells
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # nothing is logged per step; this only silences a warning
        # One process, one device: dlbench runs the processes itself, also inside a Slurm
        # job (dlbench submit), where Lightning would otherwise take over the job's ranks.
        plugins=[LightningEnvironment()],
    )


def train(
    cells: Sequence[Cell],
    objective: Objective,
    *,
    run_ids: Sequence[str],
    tracking_uri: str,
    accelerator: str = "auto",
    devices: list[int] | None = None,
    pruning: Prune | None = None,
    compile_models: bool = False,
) -> list[Result]:
    """Train ``cells`` (K >= 1, one stacking key: ``harness.stacking``) as one stack on
    ``accelerator`` (GPU indices ``devices``); member k logs to MLflow run ``run_ids[k]``.
    One result per cell, in order. An error in the training raises ``CellFailed`` (for
    every cell of the stack); any other error propagates."""
    if pruning is not None and len(cells) != 1:
        raise ValueError("a search trial is tuned and pruned alone")
    start = time.perf_counter()
    client = MlflowClient(tracking_uri)
    loggers = [BufferedMLFlowLogger(tracking_uri=tracking_uri, run_id=r) for r in run_ids]
    built: list[Built] = []
    members: list[Member] = []
    try:
        with cell_training():
            for cell, run_id in zip(cells, run_ids, strict=True):
                L.seed_everything(cell.seed, verbose=False)  # the model's init is its own
                built.append(build(cell))
                if built[-1].setup.encoder != "random":
                    _transfer_encoder(built[-1].setup, cell.seed, client, run_id)
            nets = [copy.deepcopy(b.net()) for b in built]  # untrained, to time alone
            system = system_of(built, pruning, loggers)
            members = system.members
            if compile_models:
                system.stack.compile()
            fit(system, built[0], accelerator, devices)
            fitted = time.perf_counter()  # the cells' cost; the timing below is not theirs
            for k, (net, logger) in enumerate(zip(nets, loggers, strict=True)):
                logger.log_metrics(_step_seconds(system, k, built[0], net), step=0)
    finally:
        for one, logger in zip(built, loggers, strict=False):
            size = one.setup.datamodule.batch_size if one.setup.datamodule.tensors else None
            # lr after the batch-size rule; the batch size trained with ("full" resolved)
            logger.log_hyperparams({"lr_effective": one.optimizer.lr})
            if size is not None:
                logger.log_hyperparams({"batch_size_effective": size})
            logger.flush()  # what a diverged, pruned or crashed cell logged
    wall = fitted - start
    return [
        _result(one, member, objective, client, run_id, wall, len(cells))
        for one, member, run_id in zip(built, members, run_ids, strict=True)
    ]


def _step_seconds(system: TrainingSystem, k: int, first: Built, net: nn.Module) -> dict[str, float]:
    """Member ``k``'s step timed alone on the first training batch (``first``: the stack's
    first cell, whose data the stack trained on, the same as every member's):
    ``time/step_s`` (forward, backward, optimizer) and ``time/optimizer_step_s`` (the
    optimizer's update alone)."""
    data = first.setup.datamodule
    x, y = data.tensors["train"]
    size = len(x) if data.batch_size is None else data.batch_size
    bf16 = first.cell.settings.get("precision") == "bf16-mixed"
    step, update = system.lone_step_seconds(k, net, x[:size], y[:size], bf16=bf16)
    return {STEP_SECONDS: step, OPTIMIZER_STEP_SECONDS: update}


def fit(
    system: TrainingSystem,
    first: Built,
    accelerator: str = "auto",
    devices: list[int] | None = None,
) -> None:
    """Fit ``system`` on the first cell's data, then test the members still standing."""
    trainer = make_trainer(first.cell.settings, accelerator, devices)
    data = LightningData(first.setup.datamodule)
    trainer.fit(system, datamodule=data)
    if any(m.status in (TRAINING, STOPPED) for m in system.members):
        trainer.test(system, datamodule=data, verbose=False)


def system_of(
    built: Sequence[Built], pruning: Prune | None = None, loggers: Sequence[Any] = ()
) -> TrainingSystem:
    """The one engine for ``built`` cells (one stacking key): what they share comes from
    the first."""
    first = built[0]
    members = [Member(b.net(), b.optimizer, b.cell.seed, b.rng, prune=pruning) for b in built]
    return TrainingSystem(
        members,
        first.loss,
        multiplier=first.multiplier,
        regularizer=first.regularizer,
        augmentation=first.augmentation,
        classification=first.classification,
        reconstruct=first.setup.reconstruct,
        pretext=first.setup.pretext is not None,
        loggers=loggers,
    )


def _result(
    one: Built,
    member: Member,
    objective: Objective,
    client: MlflowClient,
    run_id: str,
    wall: float,
    k: int,
) -> Result:
    """One member's outcome. Its cost is its share of the stack's wall time (building,
    fitting, testing): the members train the same steps."""
    cost = {"seconds": wall / k, "stack_seconds": wall if k > 1 else None}
    final = {key: values[-1] for key, values in member.history.items()}
    if member.status == DIVERGED:
        epoch, step = member.ended or (0, 0)
        error = f"non-finite training loss at step {step} (epoch {epoch})"
        return Result("diverged", final=final, error=error, **cost)
    if member.status == PRUNED:
        epoch = (member.ended or (0, 0))[0]
        error = f"pruned by the search after epoch {epoch}"
        return Result("pruned", final=final, error=error, **cost)
    value = summarize(member.history[objective.metric], objective)
    if not math.isfinite(value):
        return Result("diverged", final=final, error=f"non-finite {objective.metric}", **cost)
    if one.setup.pretext is not None:  # what downstream runs of this pretext will load
        encoders.save(client, run_id, one.setup.model.encoder)
    return Result("completed", value, final, **cost)


def _transfer_encoder(setup: Setup, seed: int, client: MlflowClient, run_id: str) -> None:
    """Load the pre-trained encoder weights the cell names into ``setup.model.encoder``."""
    source = encoders.find(client, setup.encoder, setup.encoder_study, seed)
    if source is None:
        raise LookupError(
            f"no completed {setup.encoder!r} pretext run with seed {seed} in study "
            f"{setup.encoder_study!r}"
        )
    setup.model.encoder.load_state_dict(encoders.load(client, source))
    client.set_tag(run_id, encoders.ENCODER_RUN, source)
