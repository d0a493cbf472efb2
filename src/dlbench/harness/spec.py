"""Study files: YAML in, a frozen, fully checked ``StudySpec`` out.

Everything is checked before anything runs: unknown keys, unknown names, wrong
types and impossible values raise ``ConfigError`` naming the file, the key and what
is allowed. The schema (README has the user-facing version):

    name: optimizers                 # study name: Optuna study, MLflow experiment, report folder
    description: one line            # optional
    problem: digits_mlp              # `dlbench list problems` (or a `problem` grid axis)
    fixed: {epochs: 20, lr: 0.1}     # settings shared by every cell
    grid:                            # full factorial of the axes (x seeds)
      optimizer:                     # a value, or {name: ..., label: ..., other settings}
        - sgd
        - {name: adam, lr: 0.001}
    seeds: [0, 1, 2]
    objective: {metric: val/acc, direction: maximize, summary: last}   # optional
    search: {trials: 8, params: {lr: {low: 1.0e-4, high: 1, log: true}}}   # optional: tune
    smoke: {epochs: 2, seeds: [0]}   # what --smoke changes (settings, seeds, grid axes, search)
    claim: {number: 5, text: ..., source: ..., expect: [...]}   # optional: see claim.py
    reference: [{arm: adam, value: 0.97, metric: test/acc, source: ...}]  # see references.py
    plugins: [my_optim.py]           # optional: files of your own components (plugins.py)

A plain axis value may carry a label, ``{value: true, label: shuffled}``. A ``problem``
axis compares problems (``grid: {problem: [mnist1d_linear, {name: mnist1d_cnn,
channels: 16}]}``, a value with that problem's own settings): each cell gets its own
problem's budget (the defaults under ``fixed`` and the arms), and a cell whose problem
does not take one of the study's settings is refused (``grid.refused``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from dlbench import claim, plugins
from dlbench.claim import Claim
from dlbench.components import FAMILIES
from dlbench.errors import ConfigError, unknown_message
from dlbench.harness import references, search
from dlbench.harness.axes import Arm, axis_arms, checked, component, problem_axis, problems_of
from dlbench.harness.search import Search
from dlbench.plugins import Plugin
from dlbench.records import Reference
from dlbench.registry import Entry

TOP_KEYS = (
    "name",
    "description",
    "problem",
    "fixed",
    "grid",
    "seeds",
    "objective",
    "search",
    "smoke",
    "claim",
    "reference",
    "plugins",
)
SMOKE_KEYS = ("grid", "seeds", "search")  # besides any settings key
OBJECTIVE_KEYS = ("metric", "direction", "summary")
DIRECTIONS = ("maximize", "minimize")
SUMMARIES = ("last", "best")  # the metric's value at the last epoch, or its best over epochs
STUDIES_DIR = Path("studies")
_STUDY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Objective:
    """What a cell's result is: one metric, its direction, and which epoch's value counts."""

    metric: str
    direction: str
    summary: str = "last"


@dataclass(frozen=True)
class StudySpec:
    name: str
    problem: str  # the study's problem; with a ``problem`` axis, the axis's first
    fixed: Mapping[str, Any]
    grid: Mapping[str, tuple[Arm, ...]]
    seeds: tuple[int, ...]
    objective: Objective
    description: str = ""
    source: str = ""
    source_sha: str = ""  # sha256 of the study file's text: provenance in MLflow and reports
    search: Search | None = None  # per-cell tuning (search.py); None: a plain grid
    claim: Claim | None = None  # what a claim study expects (claim.py); None: no claim
    references: tuple[Reference, ...] = ()  # published values per arm (references.py)
    plugins: tuple[Plugin, ...] = ()  # the study's plugin files, loaded (plugins.py)
    # How it was loaded, so a worker process can load the same spec from ``source``.
    smoke: bool = False
    overrides: tuple[str, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """Every problem the study's cells train: its problem, or its problem axis's."""
        if "problem" in self.grid:
            return tuple(arm.settings["problem"] for arm in self.grid["problem"])
        return (self.problem,)


def study_path(study: str | Path) -> Path:
    """A study argument as a file: a path as given, or a name in ``studies/``."""
    path = Path(study)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError("no such study file", source=str(path))
        return path
    path = STUDIES_DIR / f"{study}.yaml"
    if not path.is_file():
        known = sorted(str(p.relative_to(STUDIES_DIR))[:-5] for p in STUDIES_DIR.rglob("*.yaml"))
        raise ConfigError(
            unknown_message("study", str(study), known) + f" (looked in {STUDIES_DIR}/)"
        )
    return path


def load_study(
    study: str | Path, *, smoke: bool = False, overrides: Sequence[str] = ()
) -> StudySpec:
    """Read, merge (smoke tier, ``--set`` overrides) and check one study file."""
    path = study_path(study)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text: byte 0x{err.object[err.start]:02x} at line {line} "
            "(save the file as UTF-8)",
            source=str(path),
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "cannot be parsed"
        raise ConfigError(f"broken YAML{where}: {problem}", source=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError("a study file must be a mapping of keys to values", source=str(path))
    origins: dict[str, str] = {}  # merged key -> where it came from, for error messages
    try:
        _known_keys(raw, TOP_KEYS, "")
        sha = hashlib.sha256(text.encode()).hexdigest()
        loaded = plugins.load(raw.get("plugins"), path)  # before any name is looked up
        # A claim and references name arms of the file's grid, which a smoke tier or
        # --set may leave out: check them against the file as written and keep them
        # (absent arms: no data).
        names_arms = raw.get("claim") is not None or raw.get("reference") is not None
        written = _build(raw, str(path), sha) if names_arms and (smoke or overrides) else None
        if smoke:
            raw = _apply_smoke(raw, origins)
        for item in overrides:
            raw = _apply_override(raw, item, origins)
        if "plugins" in origins:  # --set plugins=[...] or plugins+=[...]
            loaded = plugins.load(raw.get("plugins"), path)
        spec = _build({**raw, "claim": None, "reference": None} if written else raw, str(path), sha)
        stated = written or spec
        return dataclasses.replace(
            spec,
            smoke=smoke,
            overrides=tuple(overrides),
            claim=stated.claim,
            references=stated.references,
            plugins=loaded,
        )
    except ConfigError as err:
        raise _locate(err, str(path), origins) from None


def _locate(err: ConfigError, source: str, origins: dict[str, str]) -> ConfigError:
    """Point an error at the file and key the user wrote (smoke block or ``--set``)."""
    key = err.key or ""
    for merged in sorted(origins, key=len, reverse=True):
        if key == merged or key.startswith((merged + ".", merged + "[")):
            origin = origins[merged]
            if origin == "--set":
                return ConfigError(err.message, source="--set", key=key.removeprefix("fixed."))
            return ConfigError(err.message, source=source, key=origin + key[len(merged) :])
    return err.at(source=source)


# -- merging --------------------------------------------------------------------------------
def _apply_smoke(raw: dict, origins: dict[str, str]) -> dict:
    smoke = raw.get("smoke") or {}
    if not isinstance(smoke, dict):
        raise ConfigError("must be a mapping of overrides", key="smoke")
    raw = {**raw, "name": f"{raw.get('name')}_smoke", "fixed": dict(raw.get("fixed") or {})}
    for key, value in smoke.items():
        if key in SMOKE_KEYS:
            if key in ("grid", "search"):  # merged: the smoke tier changes some axes / fields
                if not isinstance(value, dict):
                    raise ConfigError("must be a mapping", key=f"smoke.{key}")
                raw[key] = {**(raw.get(key) or {}), **value}
                origins.update({f"{key}.{field}": f"smoke.{key}.{field}" for field in value})
            else:
                raw[key] = value
                origins[key] = f"smoke.{key}"
        else:  # a settings key: it replaces the fixed value (checked like any setting)
            raw["fixed"][key] = value
            origins[f"fixed.{key}"] = f"smoke.{key}"
    return raw


def _apply_override(raw: dict, item: str, origins: dict[str, str]) -> dict:
    """``--set key=value``: a top-level field (dotted for nesting) or any settings key;
    ``key+=value`` adds to a list (``grid.optimizer+=my_optim``). Plugin files named here
    are relative to the current directory, not to the study file."""
    key, sep, text = item.partition("=")
    append = key.endswith("+")
    key = key.removesuffix("+")
    if not sep or not key:
        raise ConfigError(f"expected key=value or key+=value, got {item!r}", source="--set")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"cannot parse value {text!r}", source="--set", key=key) from None
    if key == "plugins" and isinstance(value, list | str):
        named = value if isinstance(value, list) else [value]
        value = [str(Path.cwd() / n) if isinstance(n, str) and n else n for n in named]
    raw = {**raw, "fixed": dict(raw.get("fixed") or {}), "grid": dict(raw.get("grid") or {})}
    parts = key.split(".")
    if parts[0] in TOP_KEYS and parts[0] not in ("fixed", "grid") or len(parts) > 1:
        node = raw
        for part in parts[:-1]:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        if append:
            if not isinstance(node.get(parts[-1]) or [], list):
                raise ConfigError("+= adds to a list, and this is not one", source="--set", key=key)
            value = (node.get(parts[-1]) or []) + (value if isinstance(value, list) else [value])
        node[parts[-1]] = value
        origins[key] = "--set"
    elif append:
        raise ConfigError(
            "+= adds to a list: a grid axis (grid.KEY+=...) or plugins", source="--set", key=key
        )
    else:  # a settings key: fixes it for every cell, replacing a grid axis of that name
        raw["fixed"][key] = value
        raw["grid"].pop(key, None)
        origins[f"fixed.{key}"] = "--set"
    return raw


# -- checking -------------------------------------------------------------------------------
def _known_keys(mapping: Mapping, allowed: Sequence[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(
                unknown_message("key", key, list(allowed)),
                key=f"{where}{key}" if where else str(key),
            )


def _mapping(raw: dict, key: str) -> dict:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"must be a mapping, got {type(value).__name__}", key=key)
    return value


def _build(raw: dict, source: str, sha: str) -> StudySpec:
    _known_keys(raw, TOP_KEYS, "")
    name = raw.get("name")
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise ConfigError(
            f"must be a lowercase name of letters, digits, '_' or '-', got {name!r}", key="name"
        )
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError("must be a string", key="description")
    problems = problems_of(raw)
    fixed: dict[str, Any] = {}
    for key, value in _mapping(raw, "fixed").items():
        if isinstance(value, dict) and key in FAMILIES:
            if "label" in value:
                raise ConfigError("labels belong to grid values", key=f"fixed.{key}.label")
            fixed.update(component(problems, key, value, f"fixed.{key}"))
        else:
            fixed[key] = checked(problems, key, value, f"fixed.{key}")
    grid = {
        axis: axis_arms(problems, axis, values)
        for axis, values in _mapping(raw, "grid").items()
        if axis != "problem"
    }
    if "problem" in raw.get("grid", {}):  # first, so its labels lead each arm's name
        grid = {"problem": problem_axis(raw["grid"]["problem"]), **grid}
    for axis in grid:
        if axis in fixed:
            raise ConfigError("is both fixed and a grid axis; keep one", key=f"fixed.{axis}")
    labels = {axis: [arm.label for arm in arms] for axis, arms in grid.items()}

    return StudySpec(
        name=name,
        problem=problems[0].name,
        fixed=MappingProxyType(fixed),
        grid=MappingProxyType(grid),
        seeds=_seeds(raw.get("seeds", [0])),
        objective=_objective(problems, _mapping(raw, "objective"), "search" in raw),
        search=search.parse(problems, raw.get("search"), list(grid)),
        claim=claim.parse(raw.get("claim"), labels),
        references=references.parse(raw.get("reference"), labels, metrics_of(problems)),
        description=description,
        source=source,
        source_sha=sha,
    )


def _seeds(value: Any) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value)
    ):
        raise ConfigError(f"must be a non-empty list of integers >= 0, got {value!r}", key="seeds")
    if len(set(value)) != len(value):
        raise ConfigError(f"must not repeat a seed, got {value!r}", key="seeds")
    return tuple(value)


def metrics_of(problems: Sequence[Entry]) -> list[str]:
    """The per-epoch metrics every one of ``problems``' runs logs: what an objective can be."""
    classify = all(problem.flags.get("task") == "classification" for problem in problems)
    return ["train/loss", "val/loss", *(["val/acc"] if classify else [])]


def _objective(problems: Sequence[Entry], raw: dict, searched: bool) -> Objective:
    """A grid study (no ``search:``) tunes nothing, so it may also be judged on the test
    split (the final ``test/*`` value; claim 10 does, as its early-stopping arm watches the
    validation split); a search would tune on it, so it may not."""
    _known_keys(raw, OBJECTIVE_KEYS, "objective.")
    merged = {**problems[0].flags.get("objective", {}), "summary": "last", **raw}
    metrics = metrics_of(problems)
    if not searched:
        metrics += ["test/" + m.removeprefix("val/") for m in metrics if m.startswith("val/")]
    allowed = {"metric": metrics, "direction": DIRECTIONS, "summary": SUMMARIES}
    for key, choices in allowed.items():
        if merged.get(key) not in choices:
            raise ConfigError(
                f"must be one of {', '.join(choices)}, got {merged.get(key)!r}",
                key=f"objective.{key}",
            )
    return Objective(**merged)
