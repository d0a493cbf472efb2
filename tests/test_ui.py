"""`dlbench ui`: the MLflow UI on 127.0.0.1 shows a finished study's runs to compare.

Checked through the server's REST API (what the UI's pages fetch) and by loading the
address `dlbench ui STUDY` prints in headless Chromium: the study's saved view
(harness.ui_view) must show the comparison without a click.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from statistics import mean
from typing import NamedTuple

import pytest
from mlflow.tracking import MlflowClient

from browser import Browser
from conftest import copy_store, uri_of
from dlbench.cli import main
from dlbench.harness.tracking import SERVER_START_TIMEOUT, free_port, healthy
from dlbench.harness.ui_view import VIEW_TAG, study_experiment, view_state


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


class UI(NamedTuple):
    url: str  # the server's
    address: str  # the one `dlbench ui STUDY` printed


@pytest.fixture(scope="module")
def ui(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    """`dlbench ui tiny` on a free port against the tiny study's store."""
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    command = [sys.executable, "-m", "dlbench.cli", "ui", "tiny", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, "--tracking-uri", uri_of(tiny_run)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # `mlflow ui` starts workers: stop the whole group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dlbench ui did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        printed = re.search(r" at (http://\S+) ", log.read_text())
        assert printed, log.read_text()[-2000:]
        yield UI(url, printed[1])
    finally:
        # Ctrl-C reaches a terminal's whole process group; signalling only `dlbench ui`
        # would leave MLflow's uvicorn workers running after the tests.
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_rest_api_has_the_study_runs_with_params_and_metrics(ui: UI) -> None:
    experiment = _get(f"{ui.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tiny")
    found = _post(
        f"{ui.url}/api/2.0/mlflow/runs/search",
        {
            "experiment_ids": [experiment["experiment"]["experiment_id"]],
            "filter": "tags.`dlbench.role` = 'cell'",
        },
    )
    runs = found["runs"]
    assert sorted(r["info"]["run_name"] for r in runs) == ["adam s0", "adam s1", "sgd s0", "sgd s1"]
    for run in runs:
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        metrics = {m["key"] for m in run["data"]["metrics"]}
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert params["optimizer"] in ("sgd", "adam") and "lr" in params and "seed" in params
        assert {"val/acc", "train/loss", "objective"} <= metrics
        assert tags["dlbench.outcome"] == "completed"


# The first chart on the page, if it is a bar chart: its bars' values and their groups' ids.
BARS_JS = (
    "(p => p && p.data && p.data[0] && p.data[0].type === 'bar'"
    " ? {x: p.data[0].x, y: p.data[0].y} : null)(document.querySelector('.js-plotly-plot'))"
)
# Whether some element's own text is exactly `objective`: the chart's title.
TITLE_JS = (
    "Array.from(document.querySelectorAll('body *'))"
    ".some(e => e.childElementCount === 0 && e.textContent.trim() === 'objective')"
)


def test_study_address_shows_the_cells_grouped_by_arm_with_the_objective(
    ui: UI, tmp_path: Path
) -> None:
    """The page at the address `dlbench ui tiny` prints, with no clicks: the 4 cell runs
    (the parent filtered out, so none is folded under it), grouped by optimizer, and a bar
    per arm of its mean objective, in chart mode."""
    experiment = _get(f"{ui.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tiny")
    experiment_id = experiment["experiment"]["experiment_id"]
    query = "viewStateShareKey=dlbench&compareRunsMode=CHART"
    assert ui.address == f"{ui.url}/#/experiments/{experiment_id}/runs?{query}"
    cells = _post(
        f"{ui.url}/api/2.0/mlflow/runs/search",
        {"experiment_ids": [experiment_id], "filter": "tags.`dlbench.role` = 'cell'"},
    )["runs"]
    objectives: dict[str, list[float]] = {}
    for run in cells:
        arm = next(t["value"] for t in run["data"]["tags"] if t["key"] == "dlbench.arm.optimizer")
        value = next(m["value"] for m in run["data"]["metrics"] if m["key"] == "objective")
        objectives.setdefault(arm, []).append(value)
    names = ["adam s0", "adam s1", "sgd s0", "sgd s1"]
    text = "(document.body ? document.body.innerText : '')"
    shown = [f"{len(cells)} matching runs", "Group: adam", "Group: sgd", *names]
    with Browser(timeout=90, width=1600, height=1000) as browser:
        browser.open(ui.address)
        browser.wait_for(f"{json.dumps(shown)}.every(s => {text}.includes(s))")
        bars = browser.wait_for(BARS_JS)
        assert browser.evaluate(TITLE_JS)
        shot = browser.screenshot(tmp_path / "study-view.png", full_page=False)
    assert shot.stat().st_size > 20_000
    groups = [group.removeprefix("tag.dlbench.arm.optimizer.") for group in bars["y"]]
    drawn = dict(zip(groups, bars["x"], strict=True))
    assert drawn == pytest.approx({arm: mean(v) for arm, v in objectives.items()})


def test_ui_without_a_study_opens_the_experiments_list(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda command, env: calls.append(command) or 0)
    assert main(["ui", "--port", "5001"]) == 0
    url = "http://127.0.0.1:5001/#/experiments?workflowType=machine_learning"
    assert url in capsys.readouterr().out
    assert calls[0][1:4] == ["-m", "mlflow", "ui"] and "sqlite:///mlflow.db" in calls[0]


def test_ui_of_a_study_without_a_store_fails_and_creates_none(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ui", "tiny"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no MLflow store at mlflow.db (sqlite:///mlflow.db)" in error
    assert not (workdir / "mlflow.db").exists()


def test_ui_of_an_unknown_study_is_a_one_line_error(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ui", "tinny", "--tracking-uri", uri_of(tiny_run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unknown study 'tinny' (did you mean tiny?)" in error


def test_a_study_run_before_views_gets_the_same_view(tiny_run: Path, tmp_path: Path) -> None:
    copy_store(tiny_run, tmp_path)
    client = MlflowClient(uri_of(tmp_path))
    experiment = client.get_experiment_by_name("tiny")
    written = json.loads(experiment.tags[VIEW_TAG])  # by the sweep's Tracker
    client.delete_experiment_tag(experiment.experiment_id, VIEW_TAG)
    assert study_experiment(client, "tiny", uri_of(tmp_path)) == experiment.experiment_id
    restored = json.loads(client.get_experiment(experiment.experiment_id).tags[VIEW_TAG])
    assert restored["name"] == written["name"] == "dlbench: objective (val/acc, last epoch) by arm"
    assert (
        json.loads(restored["state"]) == json.loads(written["state"]) == view_state(["optimizer"])
    )
