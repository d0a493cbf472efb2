"""MLflow -> pandas: the tidy frame of a study (one row per planned cell) and its curves.

``dlbench.results(study)`` and ``dlbench.curves(study)`` give users the same frames
the reports are drawn from, for their own notebooks.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from dlbench.claim import Claim
from dlbench.errors import ConfigError, unknown_message
from dlbench.records import (
    ARM,
    AXES,
    CELL,
    CLAIM,
    DIRECTION,
    ERROR,
    LABELS,
    OBJECTIVE,
    OBJECTIVE_METRIC,
    OPTIMIZER_STEP_SECONDS,
    OUTCOME,
    REFERENCES,
    REFUSED,
    ROLE,
    SEARCH_TRIAL,
    SECONDS,
    SEEDS,
    STEP_SECONDS,
    SUMMARY,
    missing_store,
    references_of,
    tracking_uri,
)

# A run's step timed alone (records.STEP_SECONDS, OPTIMIZER_STEP_SECONDS): trial_frame's too.
TIMED = [STEP_SECONDS, OPTIMIZER_STEP_SECONDS]
# Columns every frame has, first and in this order; params and final metrics follow.
ID_COLUMNS = ["cell", "arm", "seed", "outcome", "error", "attempts", "start_time", "seconds"]
CURVE_COLUMNS = ["cell", "arm", "seed", "metric", "epoch", "value"]


def _typed(text: str) -> object:
    """An MLflow param (always a string) back as the int/float/bool/str it was."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def _typed_column(values: pd.Series) -> pd.Series:
    """An object column as its values' type: ints (nullable Int64, since a missing cell has
    none), bools, floats, else strings."""
    present = values.dropna()
    if present.empty:  # e.g. the objective while no cell has completed
        return values.astype(float)
    if all(isinstance(v, bool) for v in present):
        return values.astype("boolean")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return values.astype("Int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return values.astype(float)
    return values.astype("str").where(values.notna())


def _number(text: str | None) -> float:
    """A numeric param as a float; NaN when absent or not a number."""
    value = _typed(text) if text is not None else math.nan
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    )


class StudyRuns:
    """The MLflow records of one study, read once: its plan, its cells, their attempts."""

    def __init__(self, study: str, tracking: str | None = None):
        self.client = client(tracking)
        experiment = self.client.get_experiment_by_name(study)
        if experiment is None:
            known = sorted(e.name for e in self.client.search_experiments() if e.name != "Default")
            raise ConfigError(
                unknown_message("study", study, known)
                + f" (in MLflow at {tracking_uri(tracking)}; run `dlbench run {study}` first)"
            )
        self.study = study
        runs = self._all_runs(experiment.experiment_id)
        self.parent = next((r for r in runs if r.data.tags.get(ROLE) == "study"), None)
        self.tags: dict[str, str] = dict(self.parent.data.tags) if self.parent else {}
        cells = [r for r in runs if r.data.tags.get(ROLE) == "cell"]
        self.attempts = Counter(r.data.tags[CELL] for r in cells)
        # Start-time order: the last attempt at each unit (a cell, or one search trial) wins.
        self.latest = {(r.data.tags[CELL], r.data.tags.get(SEARCH_TRIAL)): r for r in cells}
        self.direction = self.tags.get(DIRECTION) or "maximize"
        self.metric = self.tags.get(OBJECTIVE) or "val/acc"
        self.summary = self.tags.get(SUMMARY) or "last"
        self.claim = Claim.from_json(self.tags[CLAIM]) if self.tags.get(CLAIM) else None
        self.references = references_of(self.tags.get(REFERENCES))
        best: dict[str, Run] = {}
        for run in self.latest.values():  # a search study's cell is its best completed trial
            cell = run.data.tags[CELL]
            if cell not in best or self._better(run, best[cell]):
                best[cell] = run
        self.runs = sorted(best.values(), key=lambda r: (r.info.start_time, r.info.run_id))
        self.trials = Counter(cell for cell, _ in self.latest)  # search budget per cell
        self.search_seconds = Counter()  # a search cell's cost is all of its trials
        for (cell, _), run in self.latest.items():
            self.search_seconds[cell] += self._seconds(run)
        self.is_search = any(trial is not None for _, trial in self.latest)

    def _all_runs(self, experiment_id: str) -> list[Run]:
        """Every run of the experiment, oldest first, page by page (no silent cap)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                max_results=10_000,
                order_by=["attributes.start_time ASC", "attributes.run_id ASC"],
                page_token=token,
            )
            runs += page
            if not (token := page.token):
                return runs

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

    # -- the plan ------------------------------------------------------------------------
    @property
    def axes(self) -> list[str]:
        return [a for a in self.tags.get(AXES, "").split(",") if a]

    def labels(self, axis: str) -> list[str]:
        """An axis's arm labels in study order (as planned; else as found in the runs)."""
        if LABELS + axis in self.tags:
            return json.loads(self.tags[LABELS + axis])
        return list(dict.fromkeys(r.data.tags.get(ARM + axis, "") for r in self.runs))

    @property
    def plan(self) -> dict[str, dict[str, str]]:
        """Every planned arm in study order (the product of the axes' labels) -> its labels."""
        if not self.axes:
            return {self.study: {}}
        combos = itertools.product(*(self.labels(a) for a in self.axes))
        return {" ".join(c): dict(zip(self.axes, c, strict=True)) for c in combos}

    @property
    def seeds(self) -> list[int]:
        if self.tags.get(SEEDS):
            return [int(s) for s in self.tags[SEEDS].split(",")]
        return sorted({int(r.data.params.get("seed", 0)) for r in self.runs})

    def _arm(self, tags: dict[str, str]) -> str:
        return " ".join(tags.get(ARM + a, "") for a in self.axes) or self.study

    @property
    def label(self) -> str:
        """The objective as tables and figures name it (``val/acc (best epoch)``)."""
        return self.metric if self.summary == "last" else f"{self.metric} ({self.summary} epoch)"

    def environment(self, tag: str) -> list[str]:
        """The distinct values of an environment tag over the cells (resumed runs may differ)."""
        values = {r.data.tags[tag] for r in self.runs if tag in r.data.tags}
        return sorted(values) or [self.tags.get(tag, "?")]

    # -- frames --------------------------------------------------------------------------
    @staticmethod
    def _seconds(run: Run) -> float:
        """The cell's own cost as recorded (a stacked cell's share of its stack); for runs
        recorded without it (an older dlbench, a killed worker), the run's span."""
        if SECONDS in run.data.tags:
            return float(run.data.tags[SECONDS])
        end = run.info.end_time
        return (end - run.info.start_time) / 1000 if end else math.nan

    @staticmethod
    def _outcome(run: Run) -> tuple[str, str]:
        """Outcome and reason; a run that ended without one (its worker died) is failed."""
        tags, status = run.data.tags, run.info.status
        if OUTCOME in tags:
            return tags[OUTCOME], tags.get(ERROR, "")
        if status == "RUNNING":
            return "running", ""
        return "failed", f"no outcome recorded (MLflow status {status})"

    def _row(self, run: Run) -> dict[str, object]:
        tags, info = run.data.tags, run.info
        outcome, error = self._outcome(run)
        cell = tags[CELL]
        return {
            "cell": cell,
            "arm": self._arm(tags),
            "seed": int(run.data.params.get("seed", 0)),
            "outcome": outcome,
            "error": error,
            "attempts": self.attempts[cell],
            "start_time": pd.Timestamp(info.start_time, unit="ms", tz="UTC"),
            "seconds": self.search_seconds[cell] if self.is_search else self._seconds(run),
            **{a: tags.get(ARM + a) for a in self.axes},
            **{k: _typed(v) for k, v in run.data.params.items() if k not in ("seed", *self.axes)},
            **run.data.metrics,
            "run_id": info.run_id,
        }

    def frame(self) -> pd.DataFrame:
        """One row per planned cell (arm x seed), study order; cells never run are ``missing``.

        Columns: cell, arm, seed, outcome, error, attempts, start_time, seconds (for a
        search cell: all its trials), one per axis (its label), every param (typed),
        every final metric (``objective`` always), run_id, and for search studies
        ``search_trials`` (the cell's tuning budget).
        """
        # Oldest first: after an edited study file, the newest run of an (arm, seed) wins.
        found = {(row["arm"], row["seed"]): row for row in map(self._row, self.runs)}
        rows = []
        refused = json.loads(self.tags.get(REFUSED) or "{}")
        for seed, (arm, labels) in itertools.product(self.seeds, self.plan.items()):
            never = {"outcome": "refused", "error": refused[arm]} if arm in refused else {}
            rows.append(
                found.pop((arm, seed), None)
                or {
                    "arm": arm,
                    "seed": seed,
                    "outcome": "missing",
                    **labels,
                    "attempts": 0,
                    **never,
                }
            )
        rows += found.values()  # runs of arms outside the plan (an edited study file) are kept
        # Object columns first, so an int param stays int where a missing cell has no value.
        frame = pd.DataFrame(rows, dtype=object)
        if self.is_search:
            frame["search_trials"] = frame["cell"].map(self.trials)
        columns = [c for c in frame if c not in ID_COLUMNS]
        frame = frame.reindex(
            columns=ID_COLUMNS + columns + [OBJECTIVE_METRIC] * (OBJECTIVE_METRIC not in columns)
        )
        frame["error"] = frame["error"].fillna("")
        for column in frame.columns.drop("start_time"):
            frame[column] = _typed_column(frame[column])
        frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True)
        return frame

    def trial_frame(self) -> pd.DataFrame:
        """Search studies: one row per trial (arm, seed, trial, outcome, objective), then
        the trial's label on each axis, its ``lr`` (the searched value, NaN where the
        trial has none), its ``seconds`` (as ``frame``'s for one run), its step timed alone
        (``TIMED``, NaN for older runs) and its ``run_id``: what the optimizer views plot
        against the learning rate and the tuning budget, and time every trial's step by."""
        rows = [
            {
                "arm": self._arm(run.data.tags),
                "seed": int(run.data.params.get("seed", 0)),
                "trial": int(trial),
                "outcome": run.data.tags.get(OUTCOME, "running"),
                OBJECTIVE_METRIC: run.data.metrics.get(OBJECTIVE_METRIC, math.nan),
                **{a: run.data.tags.get(ARM + a) for a in self.axes},
                "lr": _number(run.data.params.get("lr")),
                "seconds": self._seconds(run),
                **{m: run.data.metrics.get(m, math.nan) for m in TIMED},
                "run_id": run.info.run_id,
            }
            for (_, trial), run in self.latest.items()
            if trial is not None
        ]
        first = ["arm", "seed", "trial", "outcome", OBJECTIVE_METRIC]
        columns = (
            first
            + [a for a in self.axes if a not in (*first, "lr")]
            + ["lr", "seconds", *TIMED, "run_id"]
        )
        return pd.DataFrame(rows, columns=columns).sort_values(["arm", "seed", "trial"])

    def curves(self, metrics: list[str], cells: set[str] | None = None) -> pd.DataFrame:
        """Long frame of per-epoch values (cell, arm, seed, metric, epoch, value), of every
        cell or only of ``cells`` (one MLflow request per run and metric: fetch what is used)."""
        rows = []
        for run in self.runs:
            if cells is not None and run.data.tags[CELL] not in cells:
                continue
            tags, arm = run.data.tags, self._arm(run.data.tags)
            for metric in metrics:
                history = self.client.get_metric_history(run.info.run_id, metric)
                for point in sorted(history, key=lambda p: (p.step, p.timestamp)):
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
        return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def client(tracking: str | None = None) -> MlflowClient:
    """A client of the tracking store, which must exist: reading creates nothing."""
    uri = tracking_uri(tracking)
    if (path := missing_store(uri)) is not None:
        raise ConfigError(
            f"no MLflow store at {path} ({uri}): no study has run here; run one with "
            "`dlbench run STUDY`, or point --tracking-uri at the store"
        )
    return MlflowClient(uri)


def studies(tracking: str | None = None) -> list[str]:
    """The studies in the tracking store: experiments with a dlbench study run, sorted."""
    store = client(tracking)
    return sorted(
        e.name
        for e in store.search_experiments()
        if store.search_runs([e.experiment_id], f"tags.`{ROLE}` = 'study'", max_results=1)
    )


def results(study: str, tracking: str | None = None) -> pd.DataFrame:
    """A study's tidy frame from MLflow: one row per planned cell (see ``StudyRuns.frame``)."""
    return StudyRuns(study, tracking).frame()


def curves(
    study: str, metrics: list[str] | None = None, tracking: str | None = None
) -> pd.DataFrame:
    """A study's per-epoch curves (default: train/loss, val/loss and the objective's metric)."""
    runs = StudyRuns(study, tracking)
    return runs.curves(metrics or list(dict.fromkeys(["train/loss", "val/loss", runs.metric])))
