"""Learning-rate schedules: the LR a real optimizer sees, checked against the formula.

Each test drives a real optimizer the way the training engine does (``StackOptimizer``:
each step at lr times the schedule's multiplier of that step) and records the LR each
step used.
"""

from __future__ import annotations

import math

import pytest
import torch

from dlbench.components.schedules import (
    LR_SCALING,
    SCHEDULES,
    lr_multiplier,
    scaled_lr,
)
from dlbench.errors import ConfigError
from dlbench.systems.optimizer import CellOptimizer, StackOptimizer

BASE = 0.4
SPE = 8  # steps per epoch
EPOCHS = 20
TOTAL = SPE * EPOCHS


def lrs_seen(schedule: str, steps: int, **kwargs) -> list[float]:
    """The LR each of ``steps`` optimizer steps used, read from the param group."""
    p = torch.nn.Parameter(torch.zeros(1, 1))  # one member's one weight
    opt = StackOptimizer([p], [CellOptimizer("sgd", BASE, {})])
    kwargs.setdefault("steps_per_epoch", SPE)
    kwargs.setdefault("epochs", EPOCHS)
    multiplier = lr_multiplier(schedule, **kwargs)
    seen = []
    for step in range(steps):
        p.grad = torch.ones_like(p)
        opt.step(multiplier(step))
        seen.append(opt.optimizers[0].param_groups[0]["lr"])
    return seen


def test_constant() -> None:
    assert lrs_seen("constant", TOTAL) == pytest.approx([BASE] * TOTAL, abs=1e-15)


def test_step_decays_at_epoch_boundaries() -> None:
    gamma, every = 0.5, 5
    seen = lrs_seen("step", TOTAL, gamma=gamma, step_epochs=every)
    for s in (0, every * SPE - 1):
        assert seen[s] == pytest.approx(BASE)
    for s in (every * SPE, 2 * every * SPE - 1):
        assert seen[s] == pytest.approx(BASE * gamma)
    assert seen[2 * every * SPE] == pytest.approx(BASE * gamma**2)
    assert seen[3 * every * SPE] == pytest.approx(BASE * gamma**3)


def test_step_defaults_are_gamma_0_1_every_10_epochs() -> None:
    assert SCHEDULES.get("step").hyperparameters == {"gamma": 0.1, "step_epochs": 10}
    seen = lrs_seen("step", TOTAL)
    assert seen[10 * SPE - 1] == pytest.approx(BASE)
    assert seen[10 * SPE] == pytest.approx(BASE * 0.1)


@pytest.mark.parametrize("min_factor", [0.0, 0.1])
def test_cosine_start_midpoint_end(min_factor: float) -> None:
    seen = lrs_seen("cosine", TOTAL + 1, min_factor=min_factor)
    assert seen[0] == pytest.approx(BASE)
    assert seen[TOTAL // 2] == pytest.approx((1 + min_factor) / 2 * BASE)
    assert seen[TOTAL] == pytest.approx(min_factor * BASE, abs=1e-12)  # after the last step
    s = TOTAL // 4
    expected = BASE * (min_factor + (1 - min_factor) * (1 + math.cos(math.pi * s / TOTAL)) / 2)
    assert seen[s] == pytest.approx(expected)
    assert all(a >= b for a, b in zip(seen, seen[1:], strict=False))  # never rises


def test_cosine_default_min_factor_is_zero() -> None:
    assert SCHEDULES.get("cosine").hyperparameters == {"min_factor": 0.0}


def test_linear_decay() -> None:
    seen = lrs_seen("linear_decay", TOTAL + 1, min_factor=0.2)
    for s in (0, TOTAL // 4, TOTAL // 2, TOTAL):
        assert seen[s] == pytest.approx(BASE * (1 - 0.8 * s / TOTAL))


def test_warmup_rises_linearly_to_base_then_constant() -> None:
    warmup = 2 * SPE
    seen = lrs_seen("constant", 3 * SPE, warmup_epochs=2)
    for s in range(warmup):
        assert seen[s] == pytest.approx(BASE * (s + 1) / warmup)
    assert seen[0] > 0  # the first step is not wasted
    assert seen[warmup - 1] == pytest.approx(BASE)  # full LR on the last warmup step
    assert seen[warmup:] == pytest.approx([BASE] * SPE)


def test_warmup_then_cosine() -> None:
    def cos(s: int) -> float:
        return (1 + math.cos(math.pi * s / TOTAL)) / 2

    seen = lrs_seen("cosine", TOTAL, warmup_epochs=1)
    for s in range(SPE):  # warmup times the cosine at the same step
        assert seen[s] == pytest.approx(BASE * (s + 1) / SPE * cos(s))
    assert seen[SPE - 1] == pytest.approx(BASE, rel=1e-2)  # cos(7/160 pi) ~ 0.995 of the peak
    for s in (SPE, TOTAL // 2, TOTAL - 1):  # then exactly the cosine
        assert seen[s] == pytest.approx(BASE * cos(s))
    rising, falling = seen[:SPE], seen[SPE - 1 :]
    assert rising == sorted(rising)
    assert falling == sorted(falling, reverse=True)


def test_warmup_then_step_decay() -> None:
    seen = lrs_seen("step", 4 * SPE, warmup_epochs=1, gamma=0.5, step_epochs=2)
    assert seen[SPE // 2 - 1] == pytest.approx(BASE / 2)
    assert seen[SPE - 1] == pytest.approx(BASE)
    assert seen[2 * SPE - 1] == pytest.approx(BASE)
    assert seen[2 * SPE] == pytest.approx(BASE / 2)


def test_warmup_steps_are_rounded() -> None:
    f = lr_multiplier("constant", steps_per_epoch=10, epochs=2, warmup_epochs=0.25)  # 2.5 -> 2
    assert [f(s) for s in range(3)] == pytest.approx([0.5, 1.0, 1.0])


# --- batch-size scaling rule --------------------------------------------------------------


def test_scaling_rules() -> None:
    assert scaled_lr(0.1, 256, 64, "linear") == pytest.approx(0.4)  # x4
    assert scaled_lr(0.1, 256, 64, "sqrt") == pytest.approx(0.2)  # x2
    assert scaled_lr(0.1, 256, 64, "none") == 0.1
    assert scaled_lr(0.1, 32, 64, "linear") == pytest.approx(0.05)  # halving works too
    assert set(LR_SCALING.names()) == {"none", "linear", "sqrt"}


@pytest.mark.parametrize("batch, base", [(0, 64), (64, 0), (-1, 64)])
def test_scaling_refuses_non_positive_batch(batch: int, base: int) -> None:
    with pytest.raises(ConfigError, match="positive"):
        scaled_lr(0.1, batch, base, "linear")


def test_unknown_rule_or_schedule_is_config_error() -> None:
    with pytest.raises(ConfigError, match="lr_scaling"):
        scaled_lr(0.1, 64, 64, "quadratic")
    with pytest.raises(ConfigError, match="did you mean cosine"):
        lr_multiplier("cosin", steps_per_epoch=SPE, epochs=EPOCHS)
    with pytest.raises(ConfigError, match="takes no gamma"):
        lr_multiplier("cosine", steps_per_epoch=SPE, epochs=EPOCHS, gamma=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps_per_epoch": 0, "epochs": 1},
        {"steps_per_epoch": 1, "epochs": 0},
        {"steps_per_epoch": 4, "epochs": 2, "warmup_epochs": 3},
        {"steps_per_epoch": 4, "epochs": 2, "warmup_epochs": -1},
    ],
)
def test_bad_lengths_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        lr_multiplier("constant", **kwargs)


# --- contract over the whole registry -----------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_starts_at_one_and_stays_finite_and_non_negative(name: str) -> None:
    entry = SCHEDULES.get(name)
    assert entry.description.strip()
    f = SCHEDULES.create(name, SPE, EPOCHS)
    assert f(0) == 1.0  # lr is the peak
    values = [f(s) for s in range(TOTAL + 5)]  # a little past the end is harmless
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert all(v > 0 for v in values[:TOTAL])  # every step of the run moves the weights
    assert max(values) == 1.0


def test_registry_is_what_the_tests_cover() -> None:
    assert set(SCHEDULES.names()) == {"constant", "step", "cosine", "linear_decay"}
