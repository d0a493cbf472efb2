"""Claim studies: a claim in words, where it comes from, and what the results must show.

A study's optional ``claim:`` block turns it into a test of one statement from the
lecture notes (``../shared/CONCEPTS.md`` numbers them)::

    claim:
      number: 5
      text: Zero initialization makes every unit identical, so the network does not learn.
      source: lecture notes 004 (weight initialization)
      paper: "He et al. 2015: ..."        # optional: a paper and its headline number
      caveat: "..."                        # optional: what this small setting cannot show
      expect:                              # every expectation must hold for "supported"
        - {better: {init: he_normal}, than: {init: zero}}
        - {arm: {init: zero}, below: 0.2}
        - {diverges: {lr: "10"}}
        - {equivalent: {depth: 4}, to: {depth: 1}, within: 0.02}

An arm selector maps grid axes to labels. A selector that leaves some axes out
stands for every arm with those labels, and a comparison pairs cells that agree on
the axes left out and on the seed. ``report.verdict`` turns the results into a
verdict; the parent MLflow run stores the block (``to_json``), so reports need
nothing but MLflow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dlbench.errors import ConfigError, unknown_message

CLAIM_KEYS = ("number", "text", "source", "paper", "caveat", "expect")
# kind -> (the key naming arm a, the key naming arm b or None, the number key or None)
KINDS: dict[str, tuple[str, str | None, str | None]] = {
    "better": ("better", "than", None),
    "equivalent": ("equivalent", "to", "within"),
    "diverges": ("diverges", None, None),
    "above": ("arm", None, "above"),
    "below": ("arm", None, "below"),
}

Selector = tuple[tuple[str, str], ...]  # ((axis, label), ...) in grid order


@dataclass(frozen=True)
class Expectation:
    """One machine-checkable statement about arms ``a`` (and ``b``) of the study."""

    kind: str
    a: Selector
    b: Selector = ()
    value: float | None = None  # the margin (equivalent) or threshold (above / below)

    def describe(self, objective: str) -> str:
        """The expectation in words, as reports print it."""
        a, b, v = show(self.a), show(self.b), f"{self.value:g}" if self.value is not None else ""
        return {
            "better": f"{a} beats {b} on {objective}",
            "equivalent": f"{a} is within ±{v} of {b} on {objective}",
            "diverges": f"{a} diverges in most seeds",
            "above": f"{a} has {objective} above {v}",
            "below": f"{a} has {objective} below {v}",
        }[self.kind]


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    source: str
    expect: tuple[Expectation, ...]
    paper: str = ""
    caveat: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Claim:
        raw = json.loads(text)
        expect = tuple(
            Expectation(
                e["kind"],
                tuple(map(tuple, e["a"])),
                tuple(map(tuple, e["b"])),
                e["value"],
            )
            for e in raw.pop("expect")
        )
        return cls(expect=expect, **raw)


def show(selector: Selector) -> str:
    """``init=he_normal, activation=relu``: a selector as text."""
    return ", ".join(f"{axis}={label}" for axis, label in selector)


def parse(raw: Any, grid: Mapping[str, list[str]]) -> Claim | None:
    """The ``claim:`` block checked against the grid's axes and labels (``grid``: axis -> labels)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"must be a mapping with {', '.join(CLAIM_KEYS)}", key="claim")
    for key in raw:
        if key not in CLAIM_KEYS:
            raise ConfigError(unknown_message("key", key, list(CLAIM_KEYS)), key=f"claim.{key}")
    number = raw.get("number")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ConfigError(f"must be an integer >= 1, got {number!r}", key="claim.number")
    texts = {}
    for key in ("text", "source", "paper", "caveat"):
        value = raw.get(key, "")
        required = key in ("text", "source")
        if not isinstance(value, str) or (required and not value.strip()):
            raise ConfigError("must be a non-empty string", key=f"claim.{key}")
        texts[key] = " ".join(value.split())
    expect = raw.get("expect")
    if not isinstance(expect, list) or not expect:
        raise ConfigError(
            f"must be a non-empty list of expectations; kinds: {', '.join(KINDS)}",
            key="claim.expect",
        )
    expectations = tuple(
        _expectation(item, grid, f"claim.expect[{i}]") for i, item in enumerate(expect)
    )
    return Claim(number=number, expect=expectations, **texts)


def _expectation(raw: Any, grid: Mapping[str, list[str]], at: str) -> Expectation:
    if not isinstance(raw, dict):
        raise ConfigError(f"must be a mapping; kinds: {', '.join(KINDS)}", key=at)
    named = [key for key in ("better", "equivalent", "diverges", "arm") if key in raw]
    if len(named) != 1:
        shapes = "better/than, equivalent/to/within, diverges, arm/above, arm/below"
        raise ConfigError(f"must be exactly one of: {shapes}; got keys {sorted(raw)}", key=at)
    kind = named[0]
    if kind == "arm":
        bounds = [key for key in ("above", "below") if key in raw]
        if len(bounds) != 1:
            raise ConfigError("`arm:` needs exactly one of `above:` or `below:`", key=at)
        kind = bounds[0]
    a_key, b_key, number_key = KINDS[kind]
    allowed = [k for k in (a_key, b_key, number_key) if k]
    for key in allowed:
        if key not in raw:
            raise ConfigError(f"{kind} needs `{key}:`", key=at)
    extra = sorted(set(raw) - set(allowed))
    if extra:
        raise ConfigError(f"{kind} takes {', '.join(allowed)}; got {extra[0]!r}", key=at)
    a = _selector(raw[a_key], grid, f"{at}.{a_key}")
    b: Selector = ()
    if b_key:
        b = _selector(raw[b_key], grid, f"{at}.{b_key}")
        if [axis for axis, _ in a] != [axis for axis, _ in b]:
            raise ConfigError(
                f"must name the same axes as `{a_key}:` ({', '.join(x for x, _ in a)}), "
                "so the comparison pairs like with like",
                key=f"{at}.{b_key}",
            )
        if a == b:
            raise ConfigError(f"compares an arm with itself: {show(a)}", key=f"{at}.{b_key}")
    value = None
    if number_key:
        value = raw.get(number_key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"must be a finite number, got {value!r}", key=f"{at}.{number_key}")
        if kind == "equivalent" and value <= 0:
            raise ConfigError(f"must be > 0, got {value!r}", key=f"{at}.{number_key}")
        value = float(value)
    return Expectation(kind, a, b, value)


def _selector(raw: Any, grid: Mapping[str, list[str]], at: str) -> Selector:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(
            f"must be a mapping of grid axes to labels; axes: {', '.join(grid) or 'none'}", key=at
        )
    picked = {}
    for axis, label in raw.items():
        if axis not in grid:
            raise ConfigError(unknown_message("grid axis", axis, list(grid)), key=f"{at}.{axis}")
        if str(label) not in grid[axis]:
            raise ConfigError(unknown_message("label", str(label), grid[axis]), key=f"{at}.{axis}")
        picked[axis] = str(label)
    return tuple((axis, picked[axis]) for axis in grid if axis in picked)
