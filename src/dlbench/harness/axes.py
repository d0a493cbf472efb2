"""A study file's grid axes and settings, checked against its problems: arms out.

An arm is one value of an axis: a plain value (``0.1``), a labelled one (``{value:
true, label: shuffled}``), or a component with its own settings (``{name: adam, lr:
0.001, label: adam_fast}``). A ``problem`` axis's value may carry that problem's own
settings (``{name: mnist1d_mlp, width: 100, label: mlp}``), checked against it alone.

Every other setting must be one that some problem of the study takes (its ``problem``,
or a value of its ``problem`` axis); a cell whose own problem does not take it is
refused, that cell only (``grid.refusal``), so a cell never trains with a setting its
problem would ignore.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dlbench.components import FAMILIES
from dlbench.errors import ConfigError
from dlbench.harness.settings import TRAINING_KEYS, check_hyperparameter, check_setting
from dlbench.problems import PROBLEMS
from dlbench.registry import Entry


@dataclass(frozen=True)
class Arm:
    """One value of a grid axis: the label reports show, and the settings it sets."""

    label: str
    settings: Mapping[str, Any]


def problems_of(raw: dict) -> list[Entry]:
    """The study's problems: its ``problem``, or the values of its ``problem`` axis."""
    axis = (raw.get("grid") or {}).get("problem")
    if axis is not None and "problem" in raw:
        raise ConfigError("is also a grid axis; keep one", key="problem")
    if axis is None and "problem" not in raw:
        raise ConfigError(f"is required; allowed: {', '.join(PROBLEMS.names())}", key="problem")
    return (
        [PROBLEMS.get(arm.settings["problem"]) for arm in problem_axis(axis)]
        if axis
        else [_problem(raw["problem"], "problem")]
    )


def _problem(name: Any, at: str) -> Entry:
    try:
        return PROBLEMS.get(name)
    except ConfigError as err:
        raise err.at(key=at) from None


def problem_axis(values: Any) -> tuple[Arm, ...]:
    """The problems compared: names, ``{value: name, label: ...}``, or ``{name: ...,
    label: ..., <settings of that problem>}`` (its defaults in this study)."""
    if not isinstance(values, list) or not values:
        raise ConfigError("must be a non-empty list of values", key="grid.problem")
    arms = []
    for i, value in enumerate(values):
        at = f"grid.problem[{i}]"
        if not isinstance(value, dict) or "name" not in value:
            arms.append(_plain_arm("problem", value, at, lambda v, at: _problem(v, at).name))
            continue
        entry = _problem(value["name"], f"{at}.name")
        label = value.get("label", entry.name)
        if not isinstance(label, str) or not label:
            raise ConfigError("must be a non-empty string", key=f"{at}.label")
        settings: dict[str, Any] = {"problem": entry.name}
        for key, setting in value.items():
            if key not in ("name", "label"):
                if isinstance(setting, dict):
                    raise ConfigError(
                        "a problem's own settings are plain values (components with "
                        "settings go under `fixed` or on their axis)",
                        key=f"{at}.{key}",
                    )
                settings[key] = checked([entry], key, setting, f"{at}.{key}")
        arms.append(Arm(label, MappingProxyType(settings)))
    return _unique(arms, "grid.problem")


def checked(problems: Sequence[Entry], key: str, value: Any, where: str) -> Any:
    """``value`` checked as setting ``key`` of the first of ``problems`` that takes it
    (a cell of a problem that does not is refused: ``grid.refusal``)."""
    first: ConfigError | None = None
    for problem in problems:
        try:
            return check_setting(problem, key, value)
        except ConfigError as err:
            first = first or err
    assert first is not None
    raise ConfigError(first.message, key=where) from None


def axis_arms(problems: Sequence[Entry], axis: str, values: Any) -> tuple[Arm, ...]:
    if axis in FAMILIES:
        where = f"grid.{axis}"
        if not isinstance(values, list) or not values:
            raise ConfigError("must be a non-empty list of values", key=where)
        return _unique(
            [
                _arm_from_mapping(problems, axis, value, f"{where}[{i}]")
                if isinstance(value, dict)
                else Arm(
                    str(value),
                    MappingProxyType({axis: checked(problems, axis, value, f"{where}[{i}]")}),
                )
                for i, value in enumerate(values)
            ],
            where,
        )
    return _labelled(values, f"grid.{axis}", lambda value, at: checked(problems, axis, value, at))


def _labelled(values: Any, where: str, check: Callable[[Any, str], Any]) -> tuple[Arm, ...]:
    """A plain axis: each value as is, or ``{value: ..., label: ...}`` to name it."""
    axis = where.removeprefix("grid.")
    if not isinstance(values, list) or not values:
        raise ConfigError("must be a non-empty list of values", key=where)
    arms = [_plain_arm(axis, value, f"{where}[{i}]", check) for i, value in enumerate(values)]
    return _unique(arms, where)


def _plain_arm(axis: str, value: Any, at: str, check: Callable[[Any, str], Any]) -> Arm:
    if not isinstance(value, dict):
        return Arm(str(value), MappingProxyType({axis: check(value, at)}))
    if set(value) != {"value", "label"} or not isinstance(value["label"], str):
        raise ConfigError(
            f"a mapping value of {axis!r} is {{value: ..., label: ...}} (a label string)"
            + (
                "; or {name: PROBLEM, label: ..., <that problem's settings>}"
                if axis == "problem"
                else f"; components with settings go on axes {', '.join(FAMILIES)}"
                if axis not in FAMILIES
                else ""
            ),
            key=at,
        )
    return Arm(value["label"], MappingProxyType({axis: check(value["value"], at)}))


def _unique(arms: list[Arm], where: str) -> tuple[Arm, ...]:
    labels = [arm.label for arm in arms]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(
            f"labels must differ, {', '.join(duplicates)} repeats (give each a `label:`)", key=where
        )
    return tuple(arms)


def _arm_from_mapping(problems: Sequence[Entry], axis: str, value: dict, at: str) -> Arm:
    """``{name: adam, lr: 0.001, label: adam_fast}``: a component with its own settings."""
    label = value.get("label", value.get("name"))
    if not isinstance(label, str) or not label:
        raise ConfigError("must be a non-empty string", key=f"{at}.label")
    settings = component(problems, axis, {k: v for k, v in value.items() if k != "label"}, at)
    return Arm(label, MappingProxyType(settings))


def component(problems: Sequence[Entry], family: str, value: dict, at: str) -> dict[str, Any]:
    """``{name: X, ...}`` as settings: the name under ``family``, then X's own settings.

    Optimizer hyperparameters are flat settings (``momentum``, ``beta1``); every other
    family's are namespaced (``augmentation.alpha``), since names like ``alpha`` or ``p``
    recur. Any arm may also set training keys (an optimizer arm its ``lr``, an
    ``lr_scaling`` arm its ``warmup_epochs``) and the problem's settings (claim 10's "more
    data" arm, regularizer none with ``train_size: full``): an arm is a setup, not only a
    name. The component's own settings come first where a name is both.
    """
    if "name" not in value:
        raise ConfigError(f"needs `name:`, one of {', '.join(FAMILIES[family].names())}", key=at)
    settings = {family: checked(problems, family, value["name"], f"{at}.name")}
    component = FAMILIES[family].get(value["name"])
    takes = component.hyperparameters
    problem_keys = set().union(*(problem.hyperparameters for problem in problems))
    for key, setting in value.items():
        if key == "name":
            continue
        training = key in TRAINING_KEYS  # e.g. an optimizer arm's own lr
        if key != family and (training or (key in problem_keys and key not in takes)):
            settings[key] = checked(problems, key, setting, f"{at}.{key}")
        elif key not in takes or key == "lr":
            raise ConfigError(
                f"{family} {component.name!r} takes no {key!r}; allowed: "
                f"{', '.join(k for k in takes if k != 'lr') or 'none'}",
                key=f"{at}.{key}",
            )
        elif family == "optimizer":
            settings[key] = checked(problems, key, setting, f"{at}.{key}")
        else:
            try:
                settings[f"{family}.{key}"] = check_hyperparameter(
                    key, takes[key], setting, rules=False
                )
            except ConfigError as err:
                raise ConfigError(err.message, key=f"{at}.{key}") from None
    return settings
