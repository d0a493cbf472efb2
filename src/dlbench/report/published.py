"""Published references beside dlbench's results: does a 95% interval over seeds hold them?

A study file's ``reference:`` entries (records.REFERENCES on the study's run) each give a
published value for one arm and metric. The table puts dlbench's mean, its bootstrap 95%
interval and n beside it, the difference (dlbench - reference) and whether the interval
holds the reference: whether these runs reproduce the published number. An arm without
two completed seeds has no interval, and says so with a dash rather than a verdict.
"""

from __future__ import annotations

import math

import pandas as pd

from dlbench.records import Reference
from dlbench.report import stats
from dlbench.report.tables import DASH, Table, intervals, number


def frame(references: list[Reference], results: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """One row per reference: its value, dlbench's n, mean and interval, the difference and
    ``inside`` (True, False, or None without an interval)."""
    rows = []
    for ref in references:
        if ref.metric in results:
            found = stats.arm_summary(results, ref.metric, order).set_index("arm")
        else:  # the runs never logged that metric
            found = pd.DataFrame(columns=["n", "mean", "ci_low", "ci_high"])
        row = found.loc[ref.arm] if ref.arm in found.index else None
        n = int(row["n"]) if row is not None else 0
        mean, low, high = (
            (float(row["mean"]), float(row["ci_low"]), float(row["ci_high"]))
            if row is not None and n
            else (math.nan,) * 3
        )
        inside = None if math.isnan(low) else bool(low <= ref.value <= high)
        rows.append(
            {
                "arm": ref.arm,
                "metric": ref.metric,
                "reference": ref.value,
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "n": n,
                "difference": mean - ref.value,
                "inside": inside,
                "source": ref.source,
            }
        )
    columns = ["arm", "metric", "reference", "mean", "ci_low", "ci_high", "n", "difference"]
    return pd.DataFrame(rows, columns=[*columns, "inside", "source"])


def table(data: pd.DataFrame) -> Table:
    """The references table of a report (``frame``'s rows as shown)."""
    shown = pd.DataFrame(
        {
            "arm": data["arm"],
            "metric": data["metric"],
            "reference": data["reference"].map(number),
            "dlbench": data["mean"].map(number),
            "95% CI": intervals(data),
            "n": data["n"].astype(str),
            "difference": data["difference"].map(lambda d: DASH if math.isnan(d) else f"{d:+.4f}"),
            "inside CI": data["inside"].map(lambda v: DASH if v is None else "yes" if v else "no"),
            "source": data["source"],
        }
    )
    return Table(
        "references",
        "Published values beside dlbench's mean over seeds and its 95% bootstrap interval; "
        "difference = dlbench - reference; inside CI: whether the interval holds the "
        "reference (a dash: fewer than two completed seeds, no interval).",
        data.assign(inside=data["inside"].map({True: "yes", False: "no", None: ""})),
        shown,
        right=frozenset({"reference", "dlbench", "95% CI", "n", "difference"}),
    )


def summary(data: pd.DataFrame) -> str:
    """The headline's sentence: how many references dlbench's intervals hold."""
    judged = data["inside"].dropna()
    return (
        f"Published references: {int(judged.sum())} of {len(judged)} inside dlbench's 95% "
        f"interval ({len(data) - len(judged)} without an interval)."
        if len(judged) < len(data)
        else f"Published references: {int(judged.sum())} of {len(judged)} inside dlbench's "
        "95% interval."
    )
