"""MLflow -> pandas: one row per cell (its latest attempt) and per-epoch curves."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from dlbench.errors import ConfigError, unknown_message
from dlbench.records import (
    ARM,
    AXES,
    CELL,
    DIRECTION,
    OBJECTIVE_METRIC,
    OUTCOME,
    ROLE,
    SEARCH_TRIAL,
    tracking_uri,
)


def _typed(text: str) -> object:
    """An MLflow param (always a string) back as the int/float/bool/str it was."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


class StudyRuns:
    """The MLflow records of one study, read once."""

    def __init__(self, study: str, tracking: str | None = None):
        self.client = MlflowClient(tracking_uri(tracking))
        experiment = self.client.get_experiment_by_name(study)
        if experiment is None:
            known = sorted(e.name for e in self.client.search_experiments() if e.name != "Default")
            raise ConfigError(
                unknown_message("study", study, known)
                + f" (in MLflow at {tracking_uri(tracking)}; run `dlbench run {study}` first)"
            )
        self.study = study
        runs = self.client.search_runs(
            [experiment.experiment_id], max_results=50_000, order_by=["attributes.start_time ASC"]
        )
        self.parent = next((r for r in runs if r.data.tags.get(ROLE) == "study"), None)
        cells = [r for r in runs if r.data.tags.get(ROLE) == "cell"]
        # Start-time order: the last attempt at each unit (a cell, or one search trial) wins.
        latest = {(r.data.tags[CELL], r.data.tags.get(SEARCH_TRIAL)): r for r in cells}
        self.direction = (self.parent.data.tags.get(DIRECTION) if self.parent else "") or "maximize"
        best: dict[str, Run] = {}
        for run in latest.values():  # a search study's cell is its best completed trial
            cell = run.data.tags[CELL]
            if cell not in best or self._better(run, best[cell]):
                best[cell] = run
        self.runs = sorted(best.values(), key=lambda r: r.data.tags[CELL])
        self.trials = Counter(cell for cell, _ in latest)  # search budget per cell
        self.axes = (self.parent.data.tags.get(AXES) if self.parent else "") or ""

    def _better(self, run: Run, than: Run) -> bool:
        """Whether ``run`` beats ``than`` as its cell's result: completed first, then objective."""

        def key(r: Run) -> tuple[bool, float]:
            value = r.data.metrics.get(OBJECTIVE_METRIC, math.nan)
            value = -value if self.direction == "minimize" else value
            return (
                r.data.tags.get(OUTCOME) == "completed",
                -math.inf if math.isnan(value) else value,
            )

        return key(run) > key(than)

    @property
    def axis_names(self) -> list[str]:
        return [a for a in self.axes.split(",") if a]

    def _arm(self, tags: dict[str, str]) -> str:
        """A run's arm: its labels on every axis, joined (the study name if it has no axis)."""
        return " ".join(tags.get(ARM + a, "") for a in self.axis_names) or self.study

    def frame(self) -> pd.DataFrame:
        """One row per cell: id, outcome, arm labels, typed params, final metric values."""
        rows = []
        for run in self.runs:
            tags = run.data.tags
            row = {
                "run_id": run.info.run_id,
                "cell": tags[CELL],
                "outcome": tags.get(OUTCOME, "running"),
                "arm": self._arm(tags),
                **{a: tags.get(ARM + a) for a in self.axis_names},
                **{k: _typed(v) for k, v in run.data.params.items() if k not in self.axis_names},
                **run.data.metrics,
                **({"search_trials": self.trials[tags[CELL]]} if SEARCH_TRIAL in tags else {}),
            }
            rows.append(row)
        return pd.DataFrame(rows)

    def curves(self, metrics: list[str]) -> pd.DataFrame:
        """Long frame of per-epoch values: cell, arm, seed, metric, epoch, value."""
        rows = []
        for run in self.runs:
            tags, arm = run.data.tags, self._arm(run.data.tags)
            for metric in metrics:
                for point in self.client.get_metric_history(run.info.run_id, metric):
                    rows.append(
                        {
                            "cell": tags[CELL],
                            "arm": arm,
                            "seed": int(run.data.params.get("seed", 0)),
                            "metric": metric,
                            "epoch": point.step,
                            "value": point.value,
                        }
                    )
        return pd.DataFrame(rows, columns=["cell", "arm", "seed", "metric", "epoch", "value"])
