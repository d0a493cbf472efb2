"""The supervised system: components wired in where the math says they belong."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch import nn

from dlbench.components import AUGMENTATIONS, LOSSES, REGULARIZERS
from dlbench.components.schedules import build_scheduler
from dlbench.data import InMemoryDataModule
from dlbench.systems import SupervisedSystem


class Blobs(InMemoryDataModule):
    """Two well-separated Gaussian blobs as 1x4x4 images: learnable in a few steps."""

    num_classes = 2

    def __init__(self, batch_size: int = 16):
        super().__init__(batch_size=batch_size, seed=0)
        g = torch.Generator().manual_seed(0)
        y = torch.arange(64) % 2
        x = torch.randn(64, 1, 4, 4, generator=g) + (2 * y - 1).view(-1, 1, 1, 1).float()
        self.tensors = {s: (x, y) for s in ("train", "val", "test")}


def _fit(system: SupervisedSystem, epochs: int = 2, **trainer: object) -> L.Trainer:
    run = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        **trainer,
    )
    run.fit(system, datamodule=Blobs())
    return run


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def test_trains_and_records_per_epoch_history() -> None:
    system = SupervisedSystem(_model(), LOSSES.create("cross_entropy"), optimizer="sgd", lr=0.5)
    _fit(system, epochs=3)
    assert len(system.history["train/loss"]) == 3 and len(system.history["val/acc"]) == 3
    assert system.history["val/acc"][-1] > 0.9
    assert system.history["train/loss"][-1] < system.history["train/loss"][0]


def test_l2_penalty_is_part_of_the_training_loss() -> None:
    model = _model()
    reference = copy.deepcopy(model)
    reg = REGULARIZERS.create("l2", strength=0.1)
    system = SupervisedSystem(
        model, LOSSES.create("cross_entropy"), optimizer="sgd", lr=0.1, regularizer=reg
    )
    batch = next(iter(Blobs(batch_size=64).loader("train")))
    system._train_step(batch, torch.optim.SGD(model.parameters(), lr=0.1))
    # By hand: the gradient of cross-entropy + 0.1/2 * ||W||^2 (weights only, not biases).
    loss = nn.functional.cross_entropy(reference(batch[0]), batch[1])
    (loss + 0.05 * reference[1].weight.pow(2).sum()).backward()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q - 0.1 * q.grad)


def test_augmentation_touches_training_batches_only() -> None:
    seen: dict[str, int] = {"calls": 0}

    def counting(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen["calls"] += 1
        return AUGMENTATIONS.create("hflip", 2, p=1.0)(x, y)

    system = SupervisedSystem(
        _model(), LOSSES.create("cross_entropy"), optimizer="sgd", lr=0.1, augmentation=counting
    )
    _fit(system, epochs=1)
    assert seen["calls"] == 4  # 64 samples / 16 per batch, training only


def test_mixup_soft_labels_train_and_count_accuracy_by_argmax() -> None:
    system = SupervisedSystem(
        _model(),
        LOSSES.create("cross_entropy"),
        optimizer="sgd",
        lr=0.5,
        augmentation=AUGMENTATIONS.create("mixup", 2, alpha=0.2),
    )
    _fit(system, epochs=3)
    assert system.history["val/acc"][-1] > 0.9


def test_schedule_sets_the_lr_every_step() -> None:
    def cosine(opt, steps_per_epoch, epochs):
        return build_scheduler(opt, "cosine", steps_per_epoch=steps_per_epoch, epochs=epochs)

    system = SupervisedSystem(
        _model(), LOSSES.create("cross_entropy"), optimizer="sgd", lr=0.4, scheduler=cosine
    )
    run = _fit(system, epochs=2)
    # 2 epochs x 4 steps: after the last step the cosine has reached 0.
    assert run.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_early_stopping_ends_training_before_max_epochs() -> None:
    reg = REGULARIZERS.create("early_stopping", patience=1, metric="val/acc")
    system = SupervisedSystem(
        _model(), LOSSES.create("cross_entropy"), optimizer="sgd", lr=0.5, regularizer=reg
    )
    run = _fit(system, epochs=50, callbacks=reg.callbacks())
    assert run.current_epoch < 50  # val/acc saturates at 1.0 and stops improving


def test_non_finite_loss_stops_training_as_diverged() -> None:
    # Gradient descent on a quadratic with lr far above 2/curvature grows geometrically.
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.Unflatten(1, (1, 4, 4)))
    system = SupervisedSystem(
        model,
        LOSSES.create("mse"),
        optimizer="sgd",
        lr=100.0,
        classification=False,
        reconstruct=True,
    )
    trainer = _fit(system, epochs=20)
    assert system.diverged_epoch is not None and system.diverged_epoch < 19
    assert len(system.history["train/loss"]) == system.diverged_epoch + 1
    # The exact first bad step, which lies inside the epoch where training stopped.
    steps_per_epoch = len(trainer.datamodule.loader("train"))
    assert system.diverged_step // steps_per_epoch == system.diverged_epoch


def test_reconstruction_targets_the_input() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.Unflatten(1, (1, 4, 4)))
    system = SupervisedSystem(
        model,
        LOSSES.create("mse"),
        optimizer="adam",
        lr=0.01,
        classification=False,
        reconstruct=True,
    )
    _fit(system, epochs=5)
    assert system.history["val/loss"][-1] < system.history["val/loss"][0]
    assert "val/acc" not in system.history
