"""A saved view of each study's experiment, so the MLflow UI opens on the comparison.

Unconfigured, MLflow's experiment page shows the study's parent run with its cell runs
folded under it, and its charts ("Model metrics (0)") chart nothing. The page's own
"Save view" button stores its state as an experiment tag ``mlflow.sharedViewState.<key>``
and opens it from ``#/experiments/<id>/runs?viewStateShareKey=<key>``; dlbench writes
one such view per study: the cell runs only (the parent filtered out, so they are not
nested), grouped by their arm tags, with a bar chart of the ``objective`` metric
(averaged over each arm's seeds) first, in chart mode.

Format (MLflow 3.17's frontend, ``savedViewEnvelope.ts`` and ``ExperimentGetShareLinkModal``):
the tag's value is a JSON envelope ``{name, createdAt, updatedAt, state}`` whose ``state``
is the JSON of the page's search facets and UI state (or a ``deflate;``-prefixed
compressed form, which is optional). Releases before saved views read the tag's value as
the state itself; they find none of its keys in the envelope and show the plain page.
"""

from __future__ import annotations

import json
import time

from mlflow.tracking import MlflowClient

from dlbench.errors import ConfigError, unknown_message
from dlbench.records import ARM, AXES, OBJECTIVE, OBJECTIVE_METRIC, ROLE, SUMMARY

VIEW_KEY = "dlbench"  # the share key: one view per study, rewritten when the study reruns
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
SECTION = "Model metrics"  # MLflow's section for metrics without a "prefix/"


def view_state(axes: list[str]) -> dict[str, object]:
    """The page state: cell runs only, grouped by arm, the objective charted first."""
    section = {"uuid": "dlbench-objective", "name": SECTION, "display": True, "columns": 1}
    section |= {"isReordered": False, "deleted": False, "isGenerated": False}
    chart = {"uuid": "dlbench-objective-bar", "type": "BAR", "metricKey": OBJECTIVE_METRIC}
    chart |= {"metricSectionId": section["uuid"], "runsCountToCompare": 100}
    chart |= {"deleted": False, "isGenerated": False}
    group_keys = [{"mode": "tag", "groupByData": ARM + axis} for axis in axes]
    return {
        # Search facets: the parent run filtered out; sorted by anything but start time, the
        # page neither fetches the parent back nor nests the cells under it.
        "searchFilter": f"tags.`{ROLE}` = 'cell'",
        "orderByKey": "tags.`mlflow.runName`",
        "orderByAsc": True,
        # UI state: MLflow fills in the fields left out with its defaults.
        "groupBy": {"aggregateFunction": "average", "groupByKeys": group_keys} if axes else None,
        "useGroupedValuesInCharts": True,
        "runsHiddenMode": "SHOW_ALL",  # the default charts only the first 10 rows
        "compareRunCharts": [chart],
        "compareRunSections": [section],
        "isAccordionReordered": True,  # keep the objective's section above the others
        "selectedColumns": [f"metrics.`{OBJECTIVE_METRIC}`"],
    }


def write_view(
    client: MlflowClient, experiment_id: str, axes: list[str], metric: str, summary: str
) -> None:
    """Store the study's view as the experiment tag MLflow's UI reads; its name (in the
    page's list of views) says which metric the objective is (``val/acc``, ``last`` epoch)."""
    now = int(time.time() * 1000)
    name = f"dlbench: objective ({metric}, {summary} epoch) by arm" if metric else "dlbench"
    state = json.dumps(view_state(axes), separators=(",", ":"))
    envelope = {"name": name, "createdAt": now, "updatedAt": now, "state": state}
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(envelope))


def view_url(base: str, experiment_id: str) -> str:
    """The address that opens the study's view in chart mode."""
    query = f"viewStateShareKey={VIEW_KEY}&compareRunsMode=CHART"
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


def study_experiment(client: MlflowClient, study: str, uri: str) -> str:
    """The experiment id of ``study`` in ``client``'s store (at ``uri``), with its view
    written if it has none (a study run before dlbench wrote views). Raises ConfigError
    for an unknown study. The caller opens the client without creating a store
    (``report.collect.client``)."""
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        names = [e.name for e in client.search_experiments() if e.name != "Default"]
        raise ConfigError(unknown_message("study", study, names) + f" (in {uri})")
    if VIEW_TAG not in experiment.tags:
        parents = client.search_runs(
            [experiment.experiment_id], f"tags.`{ROLE}` = 'study'", max_results=1
        )
        tags = parents[0].data.tags if parents else {}
        axes = [a for a in tags.get(AXES, "").split(",") if a]
        write_view(
            client, experiment.experiment_id, axes, tags.get(OBJECTIVE, ""), tags.get(SUMMARY, "")
        )
    return experiment.experiment_id
