"""Grid expansion: a study becomes cells (full factorial of the axes x seeds).

A cell's id is a hash of its fully resolved settings, so it is stable across runs,
machines and edits that do not change what the cell trains: renaming a label or
reordering axes keeps the id, changing an lr does not.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from dlbench.components import FAMILIES, OPTIMIZERS
from dlbench.errors import ConfigError
from dlbench.harness.settings import (
    TRAINING_DEFAULTS,
    allowed_keys,
    check_setting,
    optimizer_keys,
)
from dlbench.problems import PROBLEMS
from dlbench.registry import Choice, Entry

if TYPE_CHECKING:
    from dlbench.harness.spec import StudySpec

# Families whose hyperparameters are namespaced settings (optimizer's are flat keys).
NAMESPACED_FAMILIES = [f for f in FAMILIES if f != "optimizer"]


@dataclass(frozen=True)
class Cell:
    """One training run to do: settings, seed and the arm labels it belongs to.

    In a search study each grid cell becomes ``trials`` units (``trial`` = 0, 1, ...),
    each trained with sampled settings; ``grid_id`` names the grid cell they share and
    stays put when the search replaces the settings.
    """

    study: str
    problem: str
    seed: int
    settings: Mapping[str, Any]
    arm: Mapping[str, str]
    trial: int | None = None
    grid_id: str = ""

    def __post_init__(self) -> None:
        if not self.grid_id:
            blob = json.dumps(
                {"problem": self.problem, "seed": self.seed, "settings": dict(self.settings)},
                sort_keys=True,
            )
            object.__setattr__(self, "grid_id", hashlib.sha256(blob.encode()).hexdigest()[:12])

    @property
    def id(self) -> str:
        """The unit of work: the grid cell, or one search trial of it (``<grid_id>-t3``)."""
        return self.grid_id if self.trial is None else f"{self.grid_id}-t{self.trial}"

    @property
    def arm_label(self) -> str:
        """The cell's arm: its labels on every axis, e.g. ``adam he_normal`` ('' without axes)."""
        return " ".join(self.arm.values())

    @property
    def label(self) -> str:
        """Human-readable name: arm labels and seed, e.g. ``adam s0``."""
        trial = "" if self.trial is None else f" t{self.trial}"
        return f"{self.arm_label} s{self.seed}{trial}".lstrip()

    @property
    def optimizer_hparams(self) -> dict[str, Any]:
        """The settings that go to the optimizer (besides lr)."""
        taken = OPTIMIZERS.get(self.settings["optimizer"]).hyperparameters
        return {k: v for k, v in self.settings.items() if k in taken and k != "lr"}

    def component_kwargs(self, family: str) -> dict[str, Any]:
        """The hyperparameters of the cell's ``family`` component (``augmentation.alpha`` -> alpha)."""
        prefix = family + "."
        return {k.removeprefix(prefix): v for k, v in self.settings.items() if k.startswith(prefix)}

    @property
    def problem_kwargs(self) -> dict[str, Any]:
        """The settings that go to the problem factory (model and data keywords).

        A component the model builds itself (norm, init, ...) goes as a Choice, so its
        hyperparameters (``norm.groups``) reach the place where it is built.
        """
        taken = PROBLEMS.get(self.problem).hyperparameters
        return {
            k: Choice(v, self.component_kwargs(k)) if k in FAMILIES else v
            for k, v in self.settings.items()
            if k in taken
        }


def resolve(spec: StudySpec, arms: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The cell's problem (its ``problem`` arm's, else the study's) and its settings: the
    problem's budget, its ``problem`` arm's own settings (its defaults in this study),
    the fixed settings, each other arm's, then every default filled in (so MLflow
    records all)."""
    entry, given = _given(spec, arms)
    settings = {**TRAINING_DEFAULTS, **entry.flags["budget"], **given}
    settings = {**entry.hyperparameters, **settings}
    optimizer = OPTIMIZERS.get(settings["optimizer"]).hyperparameters
    # Hyperparameters of other optimizers do not apply to this cell and are dropped.
    for key in optimizer_keys() - set(optimizer):
        settings.pop(key, None)
    for key, default in optimizer.items():
        if key != "lr":
            settings.setdefault(key, default)
    # Namespaced hyperparameters (``augmentation.alpha``): the chosen component's, with
    # its defaults filled in; those of a component the cell does not use are dropped.
    for family in [f for f in NAMESPACED_FAMILIES if f in settings]:
        takes = FAMILIES[family].get(settings[family]).hyperparameters
        for key in [k for k in settings if k.startswith(family + ".")]:
            if key.removeprefix(family + ".") not in takes:
                del settings[key]
        for key, default in takes.items():
            settings.setdefault(f"{family}.{key}", default)
    return entry.name, dict(sorted(settings.items()))


def _given(spec: StudySpec, arms: Mapping[str, Mapping[str, Any]]) -> tuple[Entry, dict[str, Any]]:
    """The cell's problem and what the study file sets for it, in order of precedence."""
    own = dict(arms.get("problem", {}))
    entry = PROBLEMS.get(own.pop("problem", spec.problem))
    given = {**own, **spec.fixed}
    for axis, arm_settings in arms.items():
        if axis != "problem":
            given.update(arm_settings)
    return entry, given


def refusal(spec: StudySpec, arms: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why the cell of ``arms`` cannot train, or None: a setting of the study (fixed or an
    arm's) that the cell's own problem does not take, or a value it does not allow.

    Only a study that compares problems can refuse a cell: each of its settings is
    checked against some problem (``axes.checked``), not against every one."""
    entry, given = _given(spec, arms)
    for key, value in given.items():
        if "." in key:  # a component's own setting (``norm.groups``): checked with it
            continue
        try:
            check_setting(entry, key, value)
        except ConfigError:
            if key not in allowed_keys(entry):
                return f"problem {entry.name!r} takes no setting {key!r}"
            return f"problem {entry.name!r} does not take {key} {value!r}"
    return None


def combinations(spec: StudySpec) -> Iterator[tuple[dict[str, Mapping[str, Any]], dict[str, str]]]:
    """Each arm of the grid: every axis's settings and labels, in study order."""
    axes = list(spec.grid)
    for combo in itertools.product(*(spec.grid[axis] for axis in axes)):
        yield (
            {axis: arm.settings for axis, arm in zip(axes, combo, strict=True)},
            {axis: arm.label for axis, arm in zip(axes, combo, strict=True)},
        )


def refused(spec: StudySpec) -> dict[str, str]:
    """The arms (label -> why) whose cells are refused; ``expand`` leaves them out."""
    reasons = {
        " ".join(labels.values()): refusal(spec, arms) for arms, labels in combinations(spec)
    }
    return {arm: why for arm, why in reasons.items() if why is not None}


def expand(spec: StudySpec) -> list[Cell]:
    """All cells, seeds outermost: a partial run has every arm of the first seed first.

    A search study has ``search.trials`` units per cell, innermost. Refused arms
    (``refused``) have no cells."""
    arms = []
    for arm_settings, labels in combinations(spec):
        if refusal(spec, arm_settings) is not None:
            continue
        problem, settings = resolve(spec, arm_settings)
        arms.append((problem, MappingProxyType(settings), MappingProxyType(labels)))
    trials = range(spec.search.trials) if spec.search else [None]
    return [
        Cell(spec.name, problem, seed, settings, labels, trial)
        for seed in spec.seeds
        for problem, settings, labels in arms
        for trial in trials
    ]
