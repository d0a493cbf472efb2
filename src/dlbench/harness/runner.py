"""One cell = one Lightning fit (and test) of its problem with its settings."""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field

import lightning as L
from lightning.pytorch.loggers import MLFlowLogger

from dlbench.harness.grid import Cell
from dlbench.harness.settings import FULL_BATCH
from dlbench.harness.spec import Objective
from dlbench.problems import PROBLEMS
from dlbench.systems import SupervisedSystem

# Lightning announces devices and tips once per Trainer: noise inside a sweep.
for _name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# Lightning 2.6 trips over its own torch.utils._pytree deprecation on every fit.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


@dataclass
class Result:
    """What one cell attempt produced; ``objective`` is None unless it completed."""

    outcome: str
    objective: float | None = None
    final: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def summarize(values: list[float], objective: Objective) -> float:
    """The objective's value: the last epoch's, or the best epoch's in its direction."""
    if objective.summary == "last":
        return values[-1]
    return max(values) if objective.direction == "maximize" else min(values)


def run_cell(
    cell: Cell, objective: Objective, *, run_id: str, tracking_uri: str, accelerator: str = "auto"
) -> Result:
    """Train ``cell``; metrics go to the MLflow run ``run_id``. Exceptions propagate."""
    start = time.perf_counter()
    L.seed_everything(cell.seed, verbose=False)
    batch_size = cell.settings["batch_size"]
    setup = PROBLEMS.create(
        cell.problem,
        None if batch_size == FULL_BATCH else batch_size,
        cell.seed,
        **cell.problem_kwargs,
    )
    system = SupervisedSystem(
        setup.model,
        setup.loss,
        optimizer=cell.settings["optimizer"],
        lr=cell.settings["lr"],
        optimizer_hparams=cell.optimizer_hparams,
        classification=setup.classification,
    )
    trainer = L.Trainer(
        max_epochs=cell.settings["epochs"],
        accelerator=accelerator,
        devices=1,
        logger=MLFlowLogger(tracking_uri=tracking_uri, run_id=run_id),
        enable_checkpointing=False,
        enable_progress_bar=False,  # the sweep draws one bar for all cells
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # nothing is logged per step; this only silences a warning
    )
    trainer.fit(system, datamodule=setup.datamodule)
    if system.diverged_epoch is not None:
        return Result(
            "diverged",
            seconds=time.perf_counter() - start,
            error=f"non-finite training loss in epoch {system.diverged_epoch}",
        )
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
    return Result("completed", value, final, time.perf_counter() - start)
