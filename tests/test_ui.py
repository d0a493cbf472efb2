"""`dlbench ui`: the MLflow UI on 127.0.0.1 shows a finished study's runs to compare.

Checked through the server's REST API (what the UI's pages fetch) and by loading the
experiment page in headless Chromium until the runs' names are rendered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import Browser
from conftest import uri_of
from dlbench.harness.tracking import SERVER_START_TIMEOUT, free_port, healthy


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def ui(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dlbench ui` on a free port against the tiny study's store; yields its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    command = [sys.executable, "-m", "dlbench.cli", "ui", "--port", str(port)]
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
        yield url
    finally:
        # Ctrl-C reaches a terminal's whole process group; signalling only `dlbench ui`
        # would leave MLflow's uvicorn workers running after the tests.
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_rest_api_has_the_study_runs_with_params_and_metrics(ui: str) -> None:
    experiment = _get(f"{ui}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tiny")
    found = _post(
        f"{ui}/api/2.0/mlflow/runs/search",
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


def test_experiment_page_renders_the_runs_in_chromium(ui: str, tmp_path: Path) -> None:
    experiment = _get(f"{ui}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tiny")
    experiment_id = experiment["experiment"]["experiment_id"]
    # Runs view of the "Model training" workflow (MLflow 3 opens on GenAI traces otherwise).
    page = f"{ui}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    text = "(document.body ? document.body.innerText : '')"
    with Browser(timeout=90) as browser:
        browser.open(page)
        # The study's parent run, with its 4 cell runs nested under it.
        browser.wait_for(f"{text}.includes('5 matching runs') && {text}.includes('tiny')")
        # Expand the parent run (the grid may draw its rows after the count appears).
        expand = "document.querySelector('.ag-cell[col-id=\"attributes.`Run Name`\"] button')"
        browser.wait_for(f"(b => b ? (b.click(), true) : false)({expand})")
        browser.wait_for(
            f"['adam s0', 'adam s1', 'sgd s0', 'sgd s1'].every(n => {text}.includes(n))"
        )
        shot = browser.screenshot(tmp_path / "mlflow-ui.png")
    assert shot.stat().st_size > 20_000
