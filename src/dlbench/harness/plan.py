"""Plan: a cell's settings become its problem and components, each distinct cell once.

``build`` is the one place a cell's settings become components; validation
(``checked_cells``) builds every distinct cell with it, before anything runs, and the
runner builds each cell it trains. Nothing here imports Lightning or MLflow, so
``dlbench validate`` stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from dlbench.components import AUGMENTATIONS, LOSSES, PRETEXTS, REGULARIZERS
from dlbench.components.augmentations import Augmentation, check_compatible
from dlbench.components.losses import Loss, check_pairing
from dlbench.components.regularizers import Regularizer
from dlbench.components.schedules import Multiplier, lr_multiplier, scaled_lr
from dlbench.errors import ConfigError
from dlbench.harness.grid import Cell, combinations, expand, refusal
from dlbench.harness.settings import FULL_BATCH
from dlbench.harness.spec import StudySpec
from dlbench.models.encoder import PretextNet
from dlbench.problems import PROBLEMS, Setup
from dlbench.systems.optimizer import CellOptimizer
from dlbench.systems.stack import Streams


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
    check_compatible(
        settings["augmentation"], entry.flags["input_shape"], sequence=entry.flags["sequence"]
    )
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
        per_sample = [e.name for e in AUGMENTATIONS if e.flags["kind"] in ("image", "signal")]
        raise ConfigError(
            f"pretext {pretext!r} needs an augmentation to make two different views of an "
            f"input; allowed: {', '.join(per_sample)}"
        )


def checked_cells(spec: StudySpec) -> list[Cell]:
    """The study's cells, each distinct one built once (seed aside), so that impossible
    combinations are refused before anything runs, naming the file and the cell.

    A study that compares problems may have refused cells (``grid.refused``: a setting
    their problem does not take), but not an arm that every problem refuses: that is a
    setting meant for no problem of the study."""
    by_rest: dict[str, list[str | None]] = {}
    for arms, labels in combinations(spec):
        rest = " ".join(label for axis, label in labels.items() if axis != "problem")
        by_rest.setdefault(rest, []).append(refusal(spec, arms))
    for rest, reasons in by_rest.items():
        if all(reasons):
            where = f"grid cell '{rest}'" if rest else "settings"
            raise ConfigError(f"{reasons[0]}, nor does any other", source=spec.source, key=where)
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
