"""The tables of the report's "Optimizers across problems" section (report/optimizer_metrics.py's
numbers, laid out by optimizer_views.py): time to target, AlgoPerf's score, per-step cost.

Each is a :class:`tables.Table`, written as Markdown, HTML, LaTeX and CSV like the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from dlbench.records import OPTIMIZER_STEP_SECONDS, STEP_SECONDS, TIMED_STEPS, WARMUP_STEPS
from dlbench.report.optimizer_metrics import R_MAX, TARGET_FRACTION
from dlbench.report.tables import DASH, Table, _best_row, number, seconds_shown

NOT_REACHED = "not reached"
TIMED_ALONE = (
    f"timed alone on the cell's first training batch, the median of {TIMED_STEPS} steps "
    f"after {WARMUP_STEPS} warm-up steps, so it does not depend on how many cells it was "
    "stacked with"
)


def _to_target(value: float, shown: Callable[[float], str]) -> str:
    """A time to target over seeds: NOT_REACHED for inf (fewer than half got there)."""
    return NOT_REACHED if value == math.inf else DASH if math.isnan(value) else shown(value)


def _fastest(data: pd.DataFrame, group: str, columns: list[str]) -> set[tuple[int, str]]:
    """(row, column) of the smallest finite value of each column within each group."""
    bold = set()
    for column in columns:
        values = data[column].astype(float)
        for _, rows in values[values < math.inf].groupby(data[group], sort=False):
            bold |= {(int(row), column) for row in rows.index[rows == rows.min()]}
    return bold


def time_to_target(summary: pd.DataFrame, targets: pd.Series, metric: str, direction: str) -> Table:
    """Per problem and optimizer: its target, the epochs, steps and seconds to it over
    seeds (``optimizer_metrics.time_summary``), and how many seeds reached it; the fastest per
    problem in bold. A measure no cell has (a study older than it) is left out."""
    data = summary.assign(target=summary["problem"].map(targets)).reset_index(drop=True)
    measures = [c for c in ("epochs", "steps", "seconds") if data[c].notna().any()]
    data = data[["problem", "optimizer", "target", *measures, "reached", "cells"]]
    formats = {
        "epochs": lambda v: f"{v:g}",
        "steps": lambda v: f"{v:.0f}",
        "seconds": seconds_shown,
    }
    shown = pd.DataFrame(
        {
            "problem": data["problem"],
            "optimizer": data["optimizer"],
            f"target {metric}": data["target"].map(number),
            **{c: data[c].map(lambda v, c=c: _to_target(v, formats[c])) for c in measures},
            "reached": [f"{r}/{n}" for r, n in zip(data["reached"], data["cells"], strict=True)],
        }
    )
    seconds = (
        f" Seconds: those steps times the cell's own step cost ({STEP_SECONDS}: one whole "
        f"training step, forward, backward and optimizer update, {TIMED_ALONE}); training "
        "steps only, no validation or data loading."
        if "seconds" in measures
        else ""
    )
    return Table(
        "time_to_target",
        f"Time to target: the epochs and optimizer steps until a cell's {metric} first "
        f"reaches its problem's target.{seconds} Per optimizer "
        "the median over seeds, for an even number of seeds the better middle one (what at "
        f"least half the seeds took), '{NOT_REACHED}' when fewer than half reached it. The "
        f"target: the best optimizer's median final {metric} (the same median), "
        f"{'times' if direction == 'maximize' else 'divided by'} {TARGET_FRACTION:g}. "
        "reached: seeds that did, of those run. Fastest per problem in bold.",
        data,
        shown,
        frozenset(_fastest(data, "problem", [c for c in ("steps", "seconds") if c in measures])),
        frozenset(set(shown.columns) - {"problem", "optimizer"}),
    )


def scores(scored: pd.DataFrame, scored_on: pd.Series, problems: int) -> Table:
    """Optimizers best first by AlgoPerf's integrated score (one column per measure,
    ranked by the first), its best per column in bold; ``scored_on``: per optimizer, how
    many of the study's ``problems`` it has a cell on (on the others it earns nothing)."""
    first = scored.columns[0]
    data = scored.sort_values(first, ascending=False, kind="stable").rename_axis("optimizer")
    data = data.reset_index()
    data.insert(1, "rank", range(1, len(data) + 1))
    data["problems"] = data["optimizer"].map(scored_on).astype(int)
    shown = pd.DataFrame(
        {
            "optimizer": data["optimizer"],
            "rank": data["rank"].astype(str),
            **{f"score ({m})": data[m].map(lambda v: number(v, 3)) for m in scored.columns},
            "problems": [f"{n}/{problems}" for n in data["problems"]],
        }
    )
    bold = {
        (row, f"score ({m})")
        for m in scored.columns
        if (row := _best_row(data[m], "maximize")) is not None
    }
    return Table(
        "scores",
        f"AlgoPerf benchmark score per optimizer, ranked by {first}: B = the integral of "
        f"rho(tau) over tau from 1 to {R_MAX:g}, divided by {R_MAX:g} - 1, where rho(tau) is "
        "the fraction of problems on which the optimizer's time to target (as in the "
        "time-to-target table) is within tau times the fastest optimizer's (never reached: "
        "no credit). 1: fastest on every problem. "
        "problems: those it has cells on; one that refused it earns nothing, as one it "
        "never reached the target on (AlgoPerf scores every submission on every workload).",
        data,
        shown,
        frozenset(bold),
        frozenset(set(shown.columns) - {"optimizer"}),
    )


def _milliseconds(value: float, sign: str = "") -> str:
    return DASH if math.isnan(value) else f"{value * 1e3:{sign}.3g}"


def step_cost(cost: pd.DataFrame, baseline: str | None) -> Table:
    """Per problem and optimizer (``optimizer_metrics.step_cost``): the median milliseconds of
    its optimizer update and of its whole step over runs, and the update's difference
    from SGD's on the same problem when the study has SGD."""
    data = cost.reset_index(drop=True)
    shown = pd.DataFrame(
        {
            "problem": data["problem"],
            "optimizer": data["optimizer"],
            "runs": data["runs"].astype(str),
            "step ms": data["step_s"].map(_milliseconds),
            "optimizer ms": data["optimizer_step_s"].map(_milliseconds),
        }
    )
    beyond = ""
    if "beyond_sgd" in data:
        shown[f"optimizer ms beyond {baseline}"] = data["beyond_sgd"].map(
            lambda v: _milliseconds(v, "+")
        )
        beyond = f" Beyond {baseline}: the optimizer update minus {baseline}'s on the same problem."
    return Table(
        "step_cost",
        f"Per-step cost, in milliseconds, of one training step {TIMED_ALONE}. step: the "
        f"whole step, forward, backward and optimizer update ({STEP_SECONDS}); optimizer: "
        f"its optimizer update alone ({OPTIMIZER_STEP_SECONDS}), a share of the step. Each "
        f"the median over the runs (every search trial is timed).{beyond}",
        data,
        shown,
        right=frozenset(set(shown.columns) - {"problem", "optimizer"}),
    )
