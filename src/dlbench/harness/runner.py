"""Train cells: build each from its settings, stack them (K >= 1), fit and test once.

``build`` is the one place a cell's settings become components (validation builds
every distinct cell with it); ``train`` runs a stack of cells that share a stacking
key (``harness.stacking``) on the one engine, ``systems.training``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
from mlflow.tracking import MlflowClient
from torch import Tensor, nn

from dlbench.components import AUGMENTATIONS, LOSSES, PRETEXTS, REGULARIZERS
from dlbench.components.augmentations import Augmentation, check_compatible
from dlbench.components.losses import Loss, check_pairing
from dlbench.components.regularizers import Regularizer
from dlbench.components.schedules import Multiplier, lr_multiplier, scaled_lr
from dlbench.errors import ConfigError
from dlbench.harness import encoders
from dlbench.harness.failures import cell_training
from dlbench.harness.grid import Cell, expand
from dlbench.harness.mlflow_logger import BufferedMLFlowLogger
from dlbench.harness.settings import DEFAULT_PRECISION, FULL_BATCH
from dlbench.harness.spec import Objective, StudySpec
from dlbench.problems import PROBLEMS, Setup
from dlbench.systems.optimizers import CellOptimizer
from dlbench.systems.stack import Streams
from dlbench.systems.training import (
    DIVERGED,
    PRUNED,
    STOPPED,
    TRAINING,
    Member,
    PretextNet,
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


@dataclass
class Built:
    """A cell's problem and training components, built from its settings."""

    cell: Cell
    setup: Setup
    loss: Loss
    regularizer: Regularizer
    augmentation: Augmentation | None
    optimizer: CellOptimizer
    classification: bool
    # The global RNG's state once the cell is built: where its random stream starts,
    # as a lone run's would (``systems.stack.Streams``).
    rng: Tensor = field(default_factory=Streams.current)

    def multiplier(self, steps_per_epoch: int, epochs: int) -> Multiplier:
        """The lr multiplier of each step: the schedule times the warmup."""
        settings = self.cell.settings
        return lr_multiplier(
            settings["schedule"],
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            warmup_epochs=settings["warmup_epochs"],
            **self.cell.component_kwargs("schedule"),
        )

    def net(self) -> nn.Module:
        """What trains: the model, or for a pretext cell the encoder with its task."""
        if self.setup.pretext is None:
            return self.setup.model
        return PretextNet(self.setup.model, self.setup.pretext)


def build(cell: Cell) -> Built:
    """The cell's problem and components, every one built from its settings.

    Cheap (no data is read for file-backed datasets), so validation builds every cell
    once: a combination that cannot work fails here, before anything runs.
    """
    settings = cell.settings
    entry = PROBLEMS.get(cell.problem)
    task = entry.flags["task"]
    batch_size = settings["batch_size"]
    regularizer = REGULARIZERS.create(
        settings["regularizer"], **cell.component_kwargs("regularizer")
    )
    setup = PROBLEMS.create(
        cell.problem,
        None if batch_size == FULL_BATCH else batch_size,
        cell.seed,
        regularizer.dropout,
        **cell.problem_kwargs,
    )
    check_pairing(settings["loss"], task)
    check_compatible(settings["augmentation"], entry.flags["input_shape"])
    num_classes = getattr(setup.datamodule, "num_classes", None) or 0
    augmentation = AUGMENTATIONS.create(
        settings["augmentation"], num_classes, **cell.component_kwargs("augmentation")
    )
    mixes = AUGMENTATIONS.get(settings["augmentation"]).flags.get("soft_labels")
    if mixes and not LOSSES.get(settings["loss"]).flags.get("soft_targets"):
        raise ConfigError(
            f"augmentation {settings['augmentation']!r} mixes labels; loss "
            f"{settings['loss']!r} needs hard ones (use cross_entropy or kl_div)"
        )
    if setup.pretext is not None:
        _check_pretext(settings)
    built = Built(
        cell,
        setup,
        LOSSES.create(settings["loss"], **cell.component_kwargs("loss")),
        regularizer,
        None if settings["augmentation"] == "none" else augmentation,
        CellOptimizer(settings["optimizer"], effective_lr(cell, setup), cell.optimizer_hparams),
        classification=task == "classification" or setup.pretext is not None,
    )
    built.multiplier(1, settings["epochs"])  # checks the schedule's values
    return built


def _check_pretext(settings: dict[str, Any]) -> None:
    """A pretext task is a classification of its own targets: cross-entropy, hard labels."""
    pretext, augmentation = settings["pretext"], settings["augmentation"]
    if settings["loss"] != "cross_entropy":
        raise ConfigError(
            f"pretext {pretext!r} trains with cross_entropy over its own targets, "
            f"not loss {settings['loss']!r}"
        )
    if AUGMENTATIONS.get(augmentation).flags["kind"] == "batch":
        raise ConfigError(
            f"pretext {pretext!r} cannot use augmentation {augmentation!r}: it mixes labels"
        )
    if PRETEXTS.get(pretext).flags["views"] and augmentation == "none":
        image_ones = [e.name for e in AUGMENTATIONS if e.flags["kind"] == "image"]
        raise ConfigError(
            f"pretext {pretext!r} needs an augmentation to make two different views of an "
            f"image; allowed: {', '.join(image_ones)}"
        )


def checked_cells(spec: StudySpec) -> list[Cell]:
    """The study's cells, each distinct one built once (seed aside), so that impossible
    combinations are refused before anything runs, naming the file and the cell."""
    cells = expand(spec)
    seen: set[str] = set()
    for cell in cells:
        key = cell.arm_label
        if key in seen:
            continue
        seen.add(key)
        try:
            build(cell)
        except ConfigError as err:
            where = f"grid cell '{key}'" if key else "settings"
            raise ConfigError(err.message, source=spec.source, key=where) from None
    return cells


def effective_lr(cell: Cell, setup: Setup) -> float:
    """The cell's lr after the batch-size scaling rule (``lr_scaling``), if any."""
    rule = cell.settings["lr_scaling"]
    if rule == "none":
        return cell.settings["lr"]
    if "base_batch_size" not in cell.settings:
        raise ConfigError(f"lr_scaling {rule!r} needs base_batch_size (the batch size lr is for)")
    batch_size = cell.settings["batch_size"]
    if batch_size == FULL_BATCH:
        if not setup.datamodule.tensors:
            setup.datamodule.setup("fit")
        batch_size = len(setup.datamodule.tensors["train"][0])
    return scaled_lr(cell.settings["lr"], batch_size, cell.settings["base_batch_size"], rule)


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
            system = system_of(built, pruning, loggers)
            members = system.members
            if compile_models:
                system.stack.compile()
            fit(system, built[0], accelerator, devices)
    finally:
        for one, logger in zip(built, loggers, strict=False):
            size = one.setup.datamodule.batch_size if one.setup.datamodule.tensors else None
            # lr after the batch-size rule; the batch size trained with ("full" resolved)
            logger.log_hyperparams({"lr_effective": one.optimizer.lr})
            if size is not None:
                logger.log_hyperparams({"batch_size_effective": size})
            logger.flush()  # what a diverged, pruned or crashed cell logged
    wall = time.perf_counter() - start
    return [
        _result(one, member, objective, client, run_id, wall, len(cells))
        for one, member, run_id in zip(built, members, run_ids, strict=True)
    ]


def fit(
    system: TrainingSystem,
    first: Built,
    accelerator: str = "auto",
    devices: list[int] | None = None,
) -> None:
    """Fit ``system`` on the first cell's data, then test the members still standing."""
    trainer = make_trainer(first.cell.settings, accelerator, devices)
    trainer.fit(system, datamodule=first.setup.datamodule)
    if any(m.status in (TRAINING, STOPPED) for m in system.members):
        trainer.test(system, datamodule=first.setup.datamodule, verbose=False)


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
