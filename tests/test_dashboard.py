"""`make dashboard`: optuna-dashboard, started as the Makefile does, serves a study's
trials with their params (the axes and seed dlbench records, harness.params)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dlbench.harness import storage
from dlbench.harness.tracking import free_port

BIN = Path(sys.executable).parent  # the venv the tests run in


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_optuna_dashboard_serves_the_studys_trials_with_their_params(tiny_run: Path) -> None:
    port = free_port()
    journal = tiny_run / storage.journal_path("tiny")
    command = [str(BIN / "optuna-dashboard"), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*command, str(journal)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None:
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.2)
        (study,) = [s for s in studies if s["study_name"] == "tiny"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}?after=0")
        assert len(detail["trials"]) == 4
        names = {p["name"] for p in detail["union_search_space"]}
        assert names == {"optimizer", "seed"}
        for trial in detail["trials"]:
            assert {p["name"] for p in trial["params"]} == {"optimizer", "seed"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
