"""The settings a cell can have, and the check of each value.

A cell's settings are one flat mapping: training keys (optimizer, lr, epochs,
batch_size), the problem's own keys (its factory's keyword arguments: width,
init, norm, ...) and optimizer hyperparameters (momentum, beta1, ...). Flat keys
keep study files short and make every setting an MLflow param under its own name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlbench.components import FAMILIES, OPTIMIZERS
from dlbench.errors import ConfigError, unknown_message
from dlbench.registry import Entry

FULL_BATCH = "full"
TRAINING_KEYS = ("optimizer", "lr", "epochs", "batch_size")

Check = Callable[[Any], Any]


def _number(
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> Check:
    lo = "(" if open_low else "["
    hi = ")" if open_high else "]"
    text = f"a number in {lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"

    def check(value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"must be {text}, got {value!r}")
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            raise ConfigError(f"must be {text}, got {value!r}")
        return float(value)

    return check


def _integer(low: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"must be an integer >= {low}, got {value!r}")
        return value

    return check


def _batch_size(value: Any) -> int | str:
    if value == FULL_BATCH:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"must be an integer >= 1 or '{FULL_BATCH}' (whole training set), got {value!r}"
        )
    return value


def _member(family: str) -> Check:
    registry = FAMILIES[family]

    def check(value: Any) -> str:
        if value not in registry:
            raise ConfigError(registry.unknown_message(value))
        return value

    return check


def _like(default: Any) -> Check:
    """A check for a problem keyword with no rule of its own: the default's type."""
    if isinstance(default, bool):

        def check_bool(value: Any) -> bool:
            if not isinstance(value, bool):
                raise ConfigError(f"must be true or false, got {value!r}")
            return value

        return check_bool
    if isinstance(default, int):
        return _integer(0)
    if isinstance(default, float):
        return _number()

    def check_str(value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, got {value!r}")
        return value

    return check_str


# Rules for keys whose meaning is the same wherever they appear.
RULES: dict[str, Check] = {
    "optimizer": _member("optimizer"),
    "init": _member("init"),
    "norm": _member("norm"),
    "activation": _member("activation"),
    "lr": _number(0.0, open_low=True),
    "epochs": _integer(1),
    "batch_size": _batch_size,
    "width": _integer(1),
    "depth": _integer(0),
    "momentum": _number(0.0, 1.0, open_high=True),
    "beta1": _number(0.0, 1.0, open_high=True),
    "beta2": _number(0.0, 1.0, open_high=True),
    "alpha": _number(0.0, 1.0),
    "eps": _number(0.0, open_low=True),
    "weight_decay": _number(0.0),
    "initial_accumulator_value": _number(0.0),
}


def optimizer_keys() -> set[str]:
    """Hyperparameter names some registered optimizer takes (besides lr)."""
    return {k for entry in OPTIMIZERS for k in entry.hyperparameters} - {"lr"}


def allowed_keys(problem: Entry) -> list[str]:
    """Every settings key a study of ``problem`` may set, sorted."""
    return sorted(set(TRAINING_KEYS) | set(problem.hyperparameters) | optimizer_keys())


def check_setting(problem: Entry, key: str, value: Any) -> Any:
    """The checked value of ``key``; ConfigError (without location) when it is not allowed."""
    allowed = allowed_keys(problem)
    if key not in allowed:
        raise ConfigError(unknown_message(f"setting of problem {problem.name!r}:", key, allowed))
    return check_hyperparameter(key, problem.hyperparameters.get(key), value)


def check_hyperparameter(name: str, default: Any, value: Any) -> Any:
    """A component or problem keyword: its rule if it has one, else the default's type."""
    return (RULES.get(name) or _like(default))(value)
