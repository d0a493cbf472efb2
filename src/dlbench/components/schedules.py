"""Learning-rate schedules, warmup, and the batch-size scaling rule.

A schedule is a *multiplier* of the optimizer's learning rate as a function of the
optimizer step, so the study's ``lr`` is the peak and every schedule starts at 1.
The training engine applies it at every optimizer step, not per epoch
(``systems.optimizer.StackOptimizer.step``): warmup and cosine are then smooth curves
rather than staircases, and a run of N epochs has the same shape in epochs whatever the batch
size (a bigger batch only means fewer, larger steps along the same curve).

Step index ``s`` counts optimizer steps from 0; step ``s`` runs at ``lr * f(s)``, and
the run has ``steps_per_epoch * epochs`` steps.

Warmup is orthogonal to the schedule: ``lr_multiplier`` multiplies any schedule by
``(s + 1) / W`` for ``s < W`` (``W = round(warmup_epochs * steps_per_epoch)``), so the
first step uses ``lr / W`` rather than exactly 0 (which would waste the step) and the
last warmup step uses the full factor 1. The warmup factor multiplies the schedule at
the same absolute step, so the curve stays continuous; for a schedule that is flat at
the start (``constant``, ``step``) the peak is exactly ``lr``, for ``cosine`` it is
``lr * f(W - 1)``, a hair below.

The lecture notes' rule for large batches, "double the batch, double the LR" (linear
scaling, Goyal et al. 2017), is ``LR_SCALING['linear']``; it goes with warmup, since a
large LR straight away can diverge before the network settles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlbench.errors import ConfigError
from dlbench.registry import Registry

Multiplier = Callable[[int], float]
ScalingRule = Callable[[float, int, int], float]

SCHEDULES: Registry[Multiplier] = Registry("schedule")
LR_SCALING: Registry[ScalingRule] = Registry("lr_scaling")


def _total_steps(steps_per_epoch: int, epochs: int) -> int:
    if steps_per_epoch < 1 or epochs < 1:
        raise ConfigError(
            f"a schedule needs steps_per_epoch >= 1 and epochs >= 1, "
            f"got {steps_per_epoch} and {epochs}"
        )
    return steps_per_epoch * epochs


def _check_min_factor(min_factor: float) -> None:
    if not 0.0 <= min_factor <= 1.0:
        raise ConfigError(f"min_factor must be in [0, 1], got {min_factor}")


@SCHEDULES.register("constant", description="Constant learning rate: lr at every step")
def constant(steps_per_epoch: int, epochs: int, /) -> Multiplier:
    _total_steps(steps_per_epoch, epochs)
    return lambda step: 1.0


@SCHEDULES.register(
    "step",
    description="Step decay: lr *= gamma every step_epochs epochs (the classic staircase)",
)
def step(
    steps_per_epoch: int, epochs: int, /, *, gamma: float = 0.1, step_epochs: float = 10
) -> Multiplier:
    _total_steps(steps_per_epoch, epochs)
    if not 0.0 < gamma <= 1.0 or step_epochs <= 0:
        raise ConfigError(
            f"step needs 0 < gamma <= 1 and step_epochs > 0, got {gamma}, {step_epochs}"
        )
    if step_epochs >= epochs:  # its first decay would come after the last step
        raise ConfigError(
            f"schedule 'step' would not act: its first decay comes after step_epochs="
            f"{step_epochs} epochs, and the run has {epochs}; allowed here: step_epochs < "
            f"{epochs}, or another schedule"
        )
    every = max(1, round(step_epochs * steps_per_epoch))
    return lambda s: gamma ** (s // every)


@SCHEDULES.register(
    "cosine",
    description="Cosine annealing from lr down to min_factor*lr over the whole run",
)
def cosine(steps_per_epoch: int, epochs: int, /, *, min_factor: float = 0.0) -> Multiplier:
    total = _total_steps(steps_per_epoch, epochs)
    _check_min_factor(min_factor)

    def f(s: int) -> float:
        progress = min(s, total) / total
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


@SCHEDULES.register(
    "linear_decay",
    description="Linear decay from lr down to min_factor*lr over the whole run",
)
def linear_decay(steps_per_epoch: int, epochs: int, /, *, min_factor: float = 0.0) -> Multiplier:
    total = _total_steps(steps_per_epoch, epochs)
    _check_min_factor(min_factor)
    return lambda s: 1.0 - (1.0 - min_factor) * min(s, total) / total


def lr_multiplier(
    schedule: str,
    *,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float = 0.0,
    **hparams: Any,
) -> Multiplier:
    """The schedule ``schedule`` times the linear warmup factor, as a function of the step."""
    f = SCHEDULES.create(schedule, steps_per_epoch, epochs, **hparams)
    if not 0.0 <= warmup_epochs <= epochs:
        raise ConfigError(f"warmup_epochs must be in [0, epochs={epochs}], got {warmup_epochs}")
    warmup = round(warmup_epochs * steps_per_epoch)
    if warmup <= 1:  # a 1-step warmup has factor (0+1)/1 = 1: no warmup at all
        return f
    return lambda s: f(s) * min(1.0, (s + 1) / warmup)


# --- batch-size scaling rule ------------------------------------------------------------


@LR_SCALING.register("none", description="Same lr whatever the batch size")
def no_scaling() -> ScalingRule:
    return lambda base_lr, batch_size, base_batch_size: base_lr


@LR_SCALING.register(
    "linear",
    description="Linear scaling (Goyal et al. 2017): lr = base_lr * batch / base_batch",
)
def linear_scaling() -> ScalingRule:
    return lambda base_lr, batch_size, base_batch_size: base_lr * batch_size / base_batch_size


@LR_SCALING.register(
    "sqrt",
    description="Square-root scaling: lr = base_lr * sqrt(batch / base_batch), keeps noise variance",
)
def sqrt_scaling() -> ScalingRule:
    return lambda base_lr, batch_size, base_batch_size: (
        base_lr * math.sqrt(batch_size / base_batch_size)
    )


def scaled_lr(base_lr: float, batch_size: int, base_batch_size: int, rule: str) -> float:
    """``base_lr`` (tuned at ``base_batch_size``) carried over to ``batch_size`` by ``rule``."""
    if batch_size < 1 or base_batch_size < 1:
        raise ConfigError(
            f"batch sizes must be positive, got batch_size={batch_size}, "
            f"base_batch_size={base_batch_size}"
        )
    return LR_SCALING.create(rule)(base_lr, batch_size, base_batch_size)
