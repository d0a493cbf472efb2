"""The settings a cell can have, and the check of each value.

A cell's settings are one flat mapping: training keys (optimizer, lr, epochs,
batch_size), the problem's own keys (its factory's keyword arguments: width,
init, norm, ...) and optimizer hyperparameters (momentum, beta1, ...). Flat keys
keep study files short and make every setting an MLflow param under its own name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from dlbench.components import FAMILIES, OPTIMIZERS
from dlbench.errors import ConfigError, unknown_message
from dlbench.registry import Entry

FULL_BATCH = "full"
# How a downstream run treats a transferred encoder: frozen (a linear probe on its
# features), its last ``transfer_layers`` blocks trained, or all of it trained.
TRANSFER_MODES = ("probe", "finetune_last", "finetune_all")
RUN_ID = re.compile(r"[0-9a-f]{32}")
TRAINING_KEYS = (
    "optimizer",
    "lr",
    "epochs",
    "batch_size",
    "loss",
    "regularizer",
    "schedule",
    "warmup_epochs",
    "augmentation",
    "lr_scaling",
    "base_batch_size",
    "precision",
)
# Training settings a cell gets when neither the study nor the problem sets them.
TRAINING_DEFAULTS = {
    "regularizer": "none",
    "schedule": "constant",
    "warmup_epochs": 0.0,
    "augmentation": "none",
    "lr_scaling": "none",
}

# Lightning precisions a cell may train in. bf16-mixed autocasts forward passes to
# bfloat16 (for GPUs; on CPUs it is usually slower) and needs no loss scaling; 16-mixed
# would, and the systems' own backward passes do not scale. A cell that does not set
# ``precision`` trains in 32-bit and keeps the id it had before the setting existed.
PRECISIONS = ("32-true", "bf16-mixed")
DEFAULT_PRECISION = PRECISIONS[0]

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


def _encoder(value: Any) -> str:
    """random, a pretext's name (its run in ``encoder_study``) or an MLflow run id."""
    pretexts = [name for name in FAMILIES["pretext"].names() if name != "none"]
    if value == "random" or value in pretexts or RUN_ID.fullmatch(str(value)):
        return value
    raise ConfigError(
        f"must be random, a pretext ({', '.join(pretexts)}) or an MLflow run id "
        f"(32 hex digits), got {value!r}"
    )


def _choice(*allowed: str) -> Check:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ConfigError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


def _like(default: Any) -> Check:
    """A check for a keyword with no rule of its own: the default's type.

    The component itself checks the value's range when it is built (every cell is
    built once at validation), so this only keeps YAML types honest.
    """
    kinds: tuple[type, ...]
    if isinstance(default, bool):
        kinds, text = (bool,), "true or false"
    elif isinstance(default, int):
        return _integer(1)
    elif isinstance(default, float):
        return _number()
    elif isinstance(default, str):
        kinds, text = (str,), "a string"
    elif isinstance(default, tuple | list):
        kinds, text = (int, float, list), "a number or a list of numbers"
    else:
        return lambda value: value

    def check(value: Any) -> Any:
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise ConfigError(f"must be {text}, got {value!r}")
        return value

    return check


# Rules for keys whose meaning is the same wherever they appear.
RULES: dict[str, Check] = {
    **{family: _member(family) for family in FAMILIES},
    "lr": _number(0.0, open_low=True),
    "epochs": _integer(1),
    "batch_size": _batch_size,
    "train_size": _batch_size,  # also an integer or "full", the whole training split
    "labelled": _number(0.0, 1.0, open_low=True),  # a fraction of the training labels
    "base_batch_size": _integer(1),
    "warmup_epochs": _number(0.0),
    "pool": _choice("max", "avg", "min"),
    "encoder": _encoder,
    "transfer": _choice(*TRANSFER_MODES),
    "transfer_layers": _integer(1),
    "cell": _choice("rnn", "lstm", "gru"),
    "width": _integer(1),
    "depth": _integer(0),
    "momentum": _number(0.0, 1.0, open_high=True),
    "beta1": _number(0.0, 1.0, open_high=True),
    "beta2": _number(0.0, 1.0, open_high=True),
    "alpha": _number(0.0, 1.0),
    "eps": _number(0.0, open_low=True),
    "weight_decay": _number(0.0),
    "initial_accumulator_value": _number(0.0),
    "precision": _choice(*PRECISIONS),
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


def check_hyperparameter(name: str, default: Any, value: Any, *, rules: bool = True) -> Any:
    """A problem or optimizer keyword: its rule if it has one (``rules``), else the default's type."""
    return ((RULES.get(name) if rules else None) or _like(default))(value)
