"""A cell's grid axes and seed as Optuna params, so a plain Optuna client sees them.

``study.trials_dataframe()``, ``optuna.importance`` and optuna-dashboard (``make
dashboard``) plot a trial's value against its params; dlbench's trials are queued cells
(``storage.pending``), born WAITING with these params, so every trial has them.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from dlbench.harness.grid import Cell

SEED = "seed"  # the param of a cell's seed (the name MLflow records it under, too)
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
Fitted = tuple[BaseDistribution, dict[Any, Any]]  # a param's distribution; cell key -> value
Params = dict[str, tuple[Any, BaseDistribution]]  # a cell's params: name -> (value, distribution)


def space(study: optuna.Study, cells: list[Cell]) -> dict[str, Fitted]:
    """Each grid axis and the seed as an Optuna param: its distribution, and the value of
    each arm label (each seed) under it.

    An axis whose labels are all numbers is numeric (int or float, log-scaled when it spans
    a decade or more), so slice plots get an axis; any other axis is categorical over its
    labels in study order; the seed is an int. Optuna requires one param name to keep a
    compatible distribution (same kind and log; the same choices, if categorical) across a
    study, so one already recorded by earlier trials is kept when it holds every value,
    widened if numeric, and otherwise the param is left off the new trials: e.g. a label
    renamed or added since the study started.
    """
    keys: dict[str, dict[Any, None]] = {}  # param -> its cells' labels (seeds), in order
    for cell in cells:
        for axis, label in cell.arm.items():
            keys.setdefault(axis, {})[label] = None
        keys.setdefault(SEED, {})[cell.seed] = None
    recorded: dict[str, BaseDistribution] = {}  # the first one, which the journal checks
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            recorded.setdefault(name, distribution)
    space = {}
    for name, found in keys.items():
        fitted = _fit(recorded.get(name), list(found), log=False if name == SEED else None)
        if fitted is not None:
            space[name] = fitted
        else:  # e.g. a label renamed since the study started: Optuna would refuse it
            logging.getLogger(__name__).debug(
                "%s: param %r left off: %s do not fit %s",
                study.study_name,
                name,
                list(found),
                recorded[name],
            )
    return space


def _numbers(keys: list[Any]) -> list[int] | list[float] | None:
    """The keys as distinct finite numbers (ints if all are), or None."""
    if all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
        return list(keys)
    if not all(isinstance(k, str) and _NUMBER.fullmatch(k) for k in keys):
        return None
    if all(_INTEGER.fullmatch(k) for k in keys):
        values: list[int] | list[float] = [int(k) for k in keys]
    else:
        values = [float(k) for k in keys]
    if len(set(values)) < len(values) or not all(math.isfinite(v) for v in values):
        return None  # "1" and "1.0", or an overflow: keep the labels
    return values


def _natural(keys: list[Any], values: list[Any] | None, log: bool | None) -> Fitted | None:
    """The distribution over ``keys`` when nothing constrains it; ``log`` None: decide."""
    if values is None:
        return CategoricalDistribution(keys), {k: k for k in keys}
    low, high = min(values), max(values)
    if log is None:
        log = low > 0 and high >= 10 * low
    if log and low <= 0:
        return None
    if all(isinstance(v, int) for v in values):
        return IntDistribution(low, high, log=log), dict(zip(keys, values, strict=True))
    values = [float(v) for v in values]
    return FloatDistribution(min(values), max(values), log=log), dict(
        zip(keys, values, strict=True)
    )


def _fit(old: BaseDistribution | None, keys: list[Any], log: bool | None) -> Fitted | None:
    """A distribution over ``keys`` compatible with ``old`` (recorded by earlier trials),
    preferably ``old`` itself; None if there is none."""
    values = _numbers(keys)
    if old is None:
        return _natural(keys, values, log)
    if isinstance(old, CategoricalDistribution):
        for candidate in (keys, values):
            if candidate is not None and all(v in old.choices for v in candidate):
                return old, dict(zip(keys, candidate, strict=True))
        return None
    if values is None or not isinstance(old, (IntDistribution, FloatDistribution)):
        return None
    if isinstance(old, IntDistribution) and not all(isinstance(v, int) for v in values):
        return None
    if isinstance(old, FloatDistribution):
        values = [float(v) for v in values]
    step = old.step or 0
    if all(old.low <= v <= old.high and (not step or (v - old.low) % step == 0) for v in values):
        return old, dict(zip(keys, values, strict=True))
    if step not in (0, 1):
        return None
    widened = _natural(keys, values, old.log)
    return widened if widened is not None and type(widened[0]) is type(old) else None


def of(cell: Cell, space: dict[str, Fitted]) -> Params:
    """The cell's params (value, distribution) in ``space``."""
    found = {}
    for name, (distribution, values) in space.items():
        key = cell.seed if name == SEED else cell.arm.get(name)
        if key in values:
            found[name] = (values[key], distribution)
    return found
