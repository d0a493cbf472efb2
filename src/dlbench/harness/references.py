"""Published reference values: what a paper reports for an arm, shown beside dlbench's result.

A study file may list them under ``reference:``, one entry per (arm, metric, source)::

    reference:
      - {arm: cnn original, value: 0.923, metric: test/acc, source: "Greydanus & Kobak 2020"}

An arm may have several references (the paper's table, the authors' notebook), one
per source. ``arm`` is the arm's name as the report writes it (its labels on every axis, in axis
order, joined by spaces); ``value`` is in the metric's own units (an accuracy is a
fraction); ``metric`` is a logged metric (``val/...``) or its test-split counterpart
(``test/...``, what papers usually report). The harness records them on the study's
MLflow run (``records.REFERENCES``); the report puts each beside dlbench's mean and
95% interval and says whether the interval holds it: whether the runs reproduce it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from dlbench.errors import ConfigError, unknown_message
from dlbench.records import Reference

KEYS = ("arm", "value", "metric", "source")


def parse(
    raw: Any, labels: Mapping[str, Sequence[str]], metrics: Sequence[str]
) -> tuple[Reference, ...]:
    """The ``reference:`` list, checked against the study's arms and metrics."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            "must be a non-empty list of {arm, value, metric, source}", key="reference"
        )
    arms = [" ".join(combo) for combo in itertools.product(*labels.values())]
    allowed = [
        *metrics,
        *("test/" + m.removeprefix("val/") for m in metrics if m.startswith("val/")),
    ]
    found: list[Reference] = []
    for i, entry in enumerate(raw):
        at = f"reference[{i}]"
        if not isinstance(entry, dict) or set(entry) != set(KEYS):
            raise ConfigError(f"must be a mapping with exactly {', '.join(KEYS)}", key=at)
        if entry["arm"] not in arms:
            raise ConfigError(unknown_message("arm", str(entry["arm"]), arms), key=f"{at}.arm")
        if entry["metric"] not in allowed:
            raise ConfigError(
                unknown_message("metric", str(entry["metric"]), allowed), key=f"{at}.metric"
            )
        value = entry["value"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"must be a number, got {value!r}", key=f"{at}.value")
        if not isinstance(entry["source"], str) or not entry["source"].strip():
            raise ConfigError("must name where the value is published", key=f"{at}.source")
        reference = Reference(entry["arm"], entry["metric"], float(value), entry["source"])
        if reference in found or any(
            (r.arm, r.metric, r.source) == (reference.arm, reference.metric, reference.source)
            for r in found
        ):
            raise ConfigError(
                f"repeats arm {reference.arm!r}, metric {reference.metric!r} and source "
                f"{reference.source!r}",
                key=at,
            )
        found.append(reference)
    return tuple(found)
