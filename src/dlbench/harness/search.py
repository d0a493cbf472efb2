"""Search mode: tune each grid cell with Optuna instead of fixing its settings.

A study's ``search:`` block gives continuous ranges for some settings and a number
of trials per cell::

    search:
      trials: 8                                  # per grid cell (and seed)
      params:
        lr: {low: 1.0e-4, high: 1.0, log: true}
        momentum: {low: 0.0, high: 0.99}
      pruner: median                             # none, median or hyperband

Each cell becomes ``trials`` units of work, claimed like cells (exactly once, resumed
after a kill). A unit asks the cell's own Optuna study (``<study>/<cell id>``, TPE,
seeded by the cell's seed) for settings, so later trials learn from earlier ones, and
reports the objective's metric each epoch to the pruner. A range is applied only to
cells that have the setting (``momentum`` to sgd variants, not to adam). Every trial
is an MLflow run tagged with its cell and trial number; the cell's result is its best
trial, and its runs say what budget (trials, epochs) the tuning used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import Trial, TrialState

from dlbench.errors import ConfigError
from dlbench.harness import storage
from dlbench.harness.settings import check_setting

if TYPE_CHECKING:
    from dlbench.harness.grid import Cell

SEARCH_KEYS = ("trials", "params", "pruner")
RANGE_KEYS = ("low", "high", "log")
# Pruners with Optuna's defaults: median stops a trial below the median of earlier
# ones at the same epoch (after 5 trials); Hyperband runs successive halving brackets.
PRUNERS = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}
UNIT = "dlbench.unit"  # sub-study trial attr: which unit of work asked for it


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Search:
    trials: int
    params: Mapping[str, Range]
    pruner: str = "none"


def parse(problems: Sequence[Any], raw: Any, axes: list[str]) -> Search | None:
    """The ``search:`` block, checked (ConfigError keys are relative to the file)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping with trials, params, pruner", key="search")
    unknown = sorted(set(raw) - set(SEARCH_KEYS))
    if unknown:
        raise ConfigError(f"allowed keys: {', '.join(SEARCH_KEYS)}", key=f"search.{unknown[0]}")
    trials = raw.get("trials")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"must be an integer >= 1, got {trials!r}", key="search.trials")
    pruner = raw.get("pruner", "none")
    if pruner not in PRUNERS:
        raise ConfigError(
            f"must be one of {', '.join(PRUNERS)}, got {pruner!r}", key="search.pruner"
        )
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError("must map settings to {low: ..., high: ...}", key="search.params")
    return Search(
        trials,
        MappingProxyType({k: _range(problems, k, v, axes) for k, v in params.items()}),
        pruner,
    )


def _range(problems: Sequence[Any], key: str, raw: Any, axes: list[str]) -> Range:
    at = f"search.params.{key}"
    if key in axes:
        raise ConfigError("is a grid axis; search it or grid it, not both", key=at)
    if not isinstance(raw, dict) or not {"low", "high"} <= set(raw) or set(raw) - set(RANGE_KEYS):
        raise ConfigError(f"must be {{low: ..., high: ..., log: true|false}}, got {raw!r}", key=at)
    try:
        low, high = [
            [check_setting(problem, key, raw[end]) for problem in problems][0]
            for end in ("low", "high")
        ]
    except ConfigError as err:
        raise ConfigError(err.message, key=at) from None
    if not isinstance(low, float) or not low < high:
        raise ConfigError(f"needs numbers low < high, got {low!r}, {high!r}", key=at)
    log = raw.get("log", False)
    if not isinstance(log, bool) or (log and low <= 0):
        raise ConfigError("log must be true or false, and a log range needs low > 0", key=at)
    return Range(low, high, log)


def cell_study(study: optuna.Study, search: Search, cell: Cell, direction: str) -> optuna.Study:
    """The Optuna study that tunes ``cell``, in the same storage as the sweep's.

    Every unit opens it anew, so the sampler's seed also has the unit's index and the
    trials so far: seeded by the cell's seed alone, each unit would draw the same first
    sample, and units that start at once (one per worker) see the same trial count.
    """
    tuning = optuna.create_study(
        study_name=f"{study.study_name}/{cell.grid_id}",
        storage=storage.store_of(study),
        direction=direction,
        pruner=PRUNERS[search.pruner](),
        load_if_exists=True,
    )
    trials = len(tuning.get_trials(deepcopy=False))
    seed = (cell.seed * 1_000_003 + (cell.trial or 0) * 1_009 + trials) % 2**32
    tuning.sampler = optuna.samplers.TPESampler(seed=seed)
    return tuning


def suggest(tuning: optuna.Study, search: Search, cell: Cell) -> tuple[Cell, Trial]:
    """``cell`` with sampled settings, and the Optuna trial that sampled them.

    A trial left RUNNING by an earlier attempt at this unit (its worker was killed) is
    failed first: units are claimed exactly once, so nobody else can be running it.
    """
    for stale in tuning.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if stale.user_attrs.get(UNIT) == cell.id:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                tuning.tell(stale.number, state=TrialState.FAIL, skip_if_finished=True)
    trial = tuning.ask()
    trial.set_user_attr(UNIT, cell.id)
    settings = dict(cell.settings)
    for key, bounds in search.params.items():
        if key in settings:
            settings[key] = trial.suggest_float(key, bounds.low, bounds.high, log=bounds.log)
    return dataclasses.replace(cell, settings=MappingProxyType(settings)), trial


def conclude(tuning: optuna.Study, trial: Trial, outcome: str, value: float | None) -> None:
    """Tell the cell's study how the trial went, so the sampler and pruner learn from it."""
    # A retry elsewhere fails this trial if this worker was presumed dead (suggest).
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        if outcome == "completed" and value is not None and math.isfinite(value):
            tuning.tell(trial, value, skip_if_finished=True)
        else:
            state = TrialState.PRUNED if outcome == "pruned" else TrialState.FAIL
            tuning.tell(trial, state=state, skip_if_finished=True)


class Pruning:
    """A trial's pruner, called after each epoch (``systems.training.Prune``): reports the
    objective's metric to Optuna and says whether to stop."""

    def __init__(self, trial: Trial, metric: str):
        self.trial, self.metric = trial, metric
        self.pruned_epoch: int | None = None

    def __call__(self, epoch: int, history: dict[str, list[float]]) -> bool:
        values = history.get(self.metric)
        if not values or not math.isfinite(values[-1]):
            return False
        self.trial.report(values[-1], step=epoch)
        if self.trial.should_prune():
            self.pruned_epoch = epoch
            return True
        return False
