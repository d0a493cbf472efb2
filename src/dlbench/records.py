"""Names of the MLflow records dlbench writes: the contract between harness and report.

The harness writes them, the report and users' notebooks read them; neither side
imports the other, both import this.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default: `mlflow ui` here shows it

ROLE = "dlbench.role"  # "study" on the parent run, "cell" on each child run
STUDY = "dlbench.study"
CELL = "dlbench.cell"  # stable cell id (hash of resolved settings)
ATTEMPT = "dlbench.attempt"
SEARCH_TRIAL = "dlbench.search_trial"  # search studies: the trial's index within its cell
OUTCOME = "dlbench.outcome"  # completed | diverged | failed | pruned
OUTCOMES = ("completed", "diverged", "failed", "pruned")
# What a report calls a cell besides those: still training, never run, or refused (its
# problem does not take one of its settings: ``REFUSED``).
CELL_STATES = (*OUTCOMES, "running", "missing", "refused")
ERROR = "dlbench.error"
AXES = "dlbench.axes"  # comma-separated grid axes, in study-file order
ARM = "dlbench.arm."  # + axis: the arm's label on that axis
# The plan (parent run), so a report can show cells that never ran as missing:
LABELS = "dlbench.labels."  # + axis: JSON list of that axis's labels, in study order
SEEDS = "dlbench.seeds"  # comma-separated seeds
TRIALS = "dlbench.search_trials"  # search studies: the tuning budget per cell
OBJECTIVE = "dlbench.objective"  # the objective metric's name (parent run)
DIRECTION = "dlbench.direction"
SUMMARY = "dlbench.objective_summary"  # last | best: which epoch's value is the objective
CLAIM = "dlbench.claim"  # claim studies: the study file's claim block as JSON ("" for none)
# The study file's published reference values as JSON: a list of {arm, metric, value, source}.
REFERENCES = "dlbench.references"
# A study comparing problems: JSON {arm label: why} of the arms whose cells it refused.
REFUSED = "dlbench.refused"
PLUGINS = "dlbench.plugins"  # JSON list of the study's plugin files: path, sha256
# A cell's cost in seconds: its own training time, or for a stacked cell its share of the
# stack's (the stack's wall time / its size), so a stack's cells add up to its wall time.
SECONDS = "dlbench.seconds"
STACKED = "dlbench.stacked"  # the number of cells trained together (1: alone)
STACK_SECONDS = "dlbench.stack_seconds"  # a stack's wall time, on each of its cells' runs
OBJECTIVE_METRIC = "objective"  # child-run metric: the objective's summarized value
# Child-run metrics: one step of the cell timed alone (not its share of a stack), seconds:
STEP_SECONDS = "time/step_s"  # forward, backward and optimizer update
OPTIMIZER_STEP_SECONDS = "time/optimizer_step_s"  # the optimizer's update alone
# How that step is timed: 3 steps to warm up (allocations, optimizer state), then the
# median of 10, which a stray slow step does not move.
WARMUP_STEPS, TIMED_STEPS = 3, 10
STEPS = "train/steps"  # per-epoch metric: optimizer steps so far
PARENT = "mlflow.parentRunId"


def tracking_uri(explicit: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def missing_store(uri: str) -> Path | None:
    """The file of a SQLite tracking store that does not exist (yet), else None.

    MLflow creates a SQLite store on first contact; commands that only read (report,
    ui STUDY) check this first, so asking about nothing leaves nothing behind.
    """
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    return None if path.is_file() else path


@dataclass(frozen=True)
class Reference:
    """A published value (``REFERENCES``): for ``arm``, ``metric`` was ``value`` in ``source``."""

    arm: str
    metric: str
    value: float
    source: str


def references_json(references: list[Reference] | tuple[Reference, ...]) -> str:
    """The ``REFERENCES`` tag's value: a JSON list of {arm, metric, value, source}."""
    return json.dumps([asdict(r) for r in references])


def references_of(tag: str | None) -> list[Reference]:
    """The references a ``REFERENCES`` tag holds; none for an absent or empty tag."""
    return [Reference(**entry) for entry in json.loads(tag or "[]")]
