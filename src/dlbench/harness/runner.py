"""One cell = one Lightning fit (and test) of its problem with its settings."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from mlflow.tracking import MlflowClient
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from dlbench.components import AUGMENTATIONS, LOSSES, PRETEXTS, REGULARIZERS
from dlbench.components.augmentations import check_compatible
from dlbench.components.losses import check_pairing
from dlbench.components.schedules import build_scheduler, lr_multiplier, scaled_lr
from dlbench.errors import ConfigError
from dlbench.harness import encoders
from dlbench.harness.failures import cell_training
from dlbench.harness.grid import Cell, expand
from dlbench.harness.mlflow_logger import BufferedMLFlowLogger
from dlbench.harness.search import Pruning
from dlbench.harness.settings import DEFAULT_PRECISION, FULL_BATCH
from dlbench.harness.spec import Objective, StudySpec
from dlbench.problems import PROBLEMS, Setup
from dlbench.systems import PretextSystem, SupervisedSystem

# Lightning announces devices and tips once per Trainer: noise inside a sweep.
for _name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# Lightning 2.6 trips over its own torch.utils._pytree deprecation on every fit.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# A transferred encoder's frozen blocks stay in eval mode on purpose (EncoderClassifier).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


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


def build(cell: Cell) -> tuple[Setup, SupervisedSystem]:
    """The cell's problem and system, every component built from its settings.

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
    schedule_kwargs = cell.component_kwargs("schedule")
    lr_multiplier(
        settings["schedule"],
        steps_per_epoch=1,
        epochs=settings["epochs"],
        warmup_epochs=settings["warmup_epochs"],
        **schedule_kwargs,
    )  # checks values
    common = dict(
        optimizer=settings["optimizer"],
        lr=effective_lr(cell, setup),
        optimizer_hparams=cell.optimizer_hparams,
        regularizer=regularizer,
        augmentation=None if settings["augmentation"] == "none" else augmentation,
        scheduler=partial(
            _scheduler, settings["schedule"], settings["warmup_epochs"], schedule_kwargs
        ),
    )
    loss = LOSSES.create(settings["loss"], **cell.component_kwargs("loss"))
    if setup.pretext is not None:
        _check_pretext(settings)
        return setup, PretextSystem(setup.model, setup.pretext, loss, seed=cell.seed, **common)
    system = SupervisedSystem(
        setup.model,
        loss,
        classification=task == "classification",
        reconstruct=setup.reconstruct,
        **common,
    )
    return setup, system


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


def _scheduler(
    schedule: str,
    warmup_epochs: float,
    kwargs: dict[str, Any],
    optimizer: Optimizer,
    steps_per_epoch: int,
    epochs: int,
) -> LRScheduler:
    return build_scheduler(
        optimizer,
        schedule,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        **kwargs,
    )


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


def compiled(model: nn.Module) -> nn.Module:
    """``model`` through ``torch.compile`` (its parameters stay the same tensors).

    For GPUs and models big enough that kernel fusion pays: the first forward of each
    input shape compiles (tens of seconds on a CPU), and the digits MLP trains about 3x
    slower per step compiled than eager on 2 CPU cores."""
    return torch.compile(model)  # type: ignore[return-value]


def make_trainer(
    settings: Mapping[str, Any],
    accelerator: str,
    devices: list[int] | None,
    logger: Logger | bool,
    callbacks: list[L.Callback],
) -> L.Trainer:
    """The Trainer every cell (and every stack of cells) is fitted by: the cell's epochs
    and precision."""
    return L.Trainer(
        max_epochs=settings["epochs"],
        precision=settings.get("precision", DEFAULT_PRECISION),
        accelerator=accelerator,
        devices=devices or 1,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,  # the sweep draws one bar for all cells
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # nothing is logged per step; this only silences a warning
    )


def run_cell(
    cell: Cell,
    objective: Objective,
    *,
    run_id: str,
    tracking_uri: str,
    accelerator: str = "auto",
    devices: list[int] | None = None,
    pruning: Pruning | None = None,
    compile_models: bool = False,
) -> Result:
    """Train ``cell`` on ``accelerator`` (GPU indices ``devices``); metrics go to MLflow run
    ``run_id``. An error in its training raises ``CellFailed``; any other propagates."""
    start = time.perf_counter()
    L.seed_everything(cell.seed, verbose=False)
    setup, system = build(cell)
    if compile_models:
        system.model = compiled(system.model)
    logger = BufferedMLFlowLogger(tracking_uri=tracking_uri, run_id=run_id)
    logger.log_hyperparams({"lr_effective": system.lr})  # lr after the batch-size rule
    try:
        if setup.encoder != "random":
            _transfer_encoder(setup, cell.seed, logger.experiment, run_id)
        callbacks = [*system.regularizer.callbacks(), *([pruning] if pruning else [])]
        trainer = make_trainer(cell.settings, accelerator, devices, logger, callbacks)
        with cell_training():
            trainer.fit(system, datamodule=setup.datamodule)
        # The batch size trained with ("full" resolved to the training set's size): reports
        # plot sensitivity against it.
        logger.log_hyperparams({"batch_size_effective": setup.datamodule.batch_size})
        if system.diverged_epoch is not None:
            return Result(
                "diverged",
                seconds=time.perf_counter() - start,
                error=f"non-finite training loss at step {system.diverged_step} "
                f"(epoch {system.diverged_epoch})",
            )
        if pruning is not None and pruning.pruned_epoch is not None:
            return Result(
                "pruned",
                final={key: values[-1] for key, values in system.history.items()},
                seconds=time.perf_counter() - start,
                error=f"pruned by the search after epoch {pruning.pruned_epoch}",
            )
        with cell_training():
            trainer.test(system, datamodule=setup.datamodule, verbose=False)
        final = {key: values[-1] for key, values in system.history.items()}
        value = summarize(system.history[objective.metric], objective)
        if not math.isfinite(value):
            return Result(
                "diverged",
                final=final,
                seconds=time.perf_counter() - start,
                error=f"non-finite {objective.metric}",
            )
        if setup.pretext is not None:  # what downstream runs of this pretext will load
            encoders.save(logger.experiment, run_id, setup.model.encoder)
        return Result("completed", value, final, time.perf_counter() - start)
    finally:
        logger.flush()  # what a diverged, pruned or crashed cell logged after its fit


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
