"""The report's "Optimizers across problems" section, rendered from a small MLflow store
written by hand (optimizer_metrics.py's numbers: test_optimizer_metrics.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from conftest import uri_of
from dlbench.records import (
    ARM,
    AXES,
    CELL,
    DIRECTION,
    LABELS,
    OBJECTIVE,
    OPTIMIZER_STEP_SECONDS,
    OUTCOME,
    ROLE,
    SEARCH_TRIAL,
    SECONDS,
    SEEDS,
    STEP_SECONDS,
    STEPS,
)
from dlbench.report.collect import StudyRuns
from dlbench.report.render import render

INF = math.inf

# -- the report section, from a hand-written MLflow store ---------------------------------------

# Best trials' val/acc per epoch (3 epochs, 10 steps each): on p1 both end at 0.9 (target
# 0.891), sgd gets there at epoch 2 (30 steps, 2 ms a step: 0.06 s), adam at epoch 0 (10
# steps, 3 ms a step: 0.03 s); on p2 sgd ends at 0.8 (target 0.792), reached at epoch 1 (20
# steps: 0.04 s), adam never.
BEST = {
    ("p1", "sgd"): [0.5, 0.8, 0.9],
    ("p1", "adam"): [0.9, 0.9, 0.9],
    ("p2", "sgd"): [0.6, 0.8, 0.8],
    ("p2", "adam"): [0.4, 0.6, 0.7],
}
# The best trials' step timed alone: the whole step, and of it the optimizer's update. The
# first trials log 3 times as much: seconds to target are the best trial's; the step cost
# is the median over every trial, (1 + 3) / 2 = 2 times these.
STEP_S = {"sgd": 0.002, "adam": 0.003}
UPDATE_S = {"sgd": 0.0005, "adam": 0.0015}  # adam's update 1 ms beyond sgd's, 2 ms over trials
# Each cell's share of its stack's epoch (sgd stacked with fewer cells than adam): not used.
EPOCH_S = {"sgd": 5.0, "adam": 0.5}


def write_study(folder: Path, problems: list[str], steps: bool = True, timed: bool = True) -> str:
    """A search study's records as dlbench writes them: a parent run with the plan, and a
    run per trial (2 per cell, the second the best) with its per-epoch metrics and, once
    per run (step 0), its step timed alone. ``steps``/``timed``: whether it logged
    train/steps, and time/step_s and time/optimizer_step_s (older studies did not)."""
    client = MlflowClient(uri_of(folder))
    experiment = client.create_experiment("across")
    parent = client.create_run(experiment).info.run_id
    plan = {
        ROLE: "study",
        AXES: "problem,optimizer",
        LABELS + "problem": json.dumps(problems),
        LABELS + "optimizer": json.dumps(["sgd", "adam"]),
        SEEDS: "0,1",
        OBJECTIVE: "val/acc",
        DIRECTION: "maximize",
    }
    client.log_batch(parent, tags=[RunTag(k, v) for k, v in plan.items()])
    for seed in (0, 1):
        for (problem, optimizer), best in BEST.items():
            if problem not in problems:
                continue
            for trial, (lr, values) in enumerate([(0.01, [0.1, 0.2, 0.3]), (0.1, best)]):
                run = client.create_run(experiment).info.run_id
                tags = {
                    ROLE: "cell",
                    CELL: f"{problem}-{optimizer}-{seed}",
                    SEARCH_TRIAL: str(trial),
                    ARM + "problem": problem,
                    ARM + "optimizer": optimizer,
                    OUTCOME: "completed",
                    SECONDS: "3.0",
                }
                params = {"seed": seed, "optimizer": optimizer, "lr": lr, "epochs": 3}
                series = {"val/acc": values, "time/epoch_s": [EPOCH_S[optimizer]] * 3}
                final = {"objective": values[-1]}
                if steps:
                    series[STEPS] = [10, 20, 30]
                if timed:
                    final[STEP_SECONDS] = STEP_S[optimizer] * (1 if trial else 3)
                    final[OPTIMIZER_STEP_SECONDS] = UPDATE_S[optimizer] * (1 if trial else 3)
                metrics = [
                    Metric(name, value, 0, epoch)
                    for name, values in series.items()
                    for epoch, value in enumerate(values)
                ] + [Metric(name, value, 0, 0) for name, value in final.items()]
                client.log_batch(
                    run,
                    metrics=metrics,
                    params=[Param(k, str(v)) for k, v in params.items()],
                    tags=[RunTag(k, v) for k, v in tags.items()],
                )
                client.set_terminated(run)
    return uri_of(folder)


@pytest.fixture(scope="module")
def across(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_study(tmp_path_factory.mktemp("across"), ["p1", "p2"])


def test_trial_frame_has_labels_lr_seconds_and_run_ids(across: str) -> None:
    frame = StudyRuns("across", across).trial_frame()
    assert list(frame.columns) == [
        "arm", "seed", "trial", "outcome", "objective", "problem", "optimizer", "lr", "seconds",
        STEP_SECONDS, OPTIMIZER_STEP_SECONDS, "run_id",
    ]  # fmt: skip
    assert len(frame) == 2 * 2 * 2 * 2 and frame["lr"].dtype == float
    first = frame.iloc[0]
    assert (first["arm"], first["problem"], first["optimizer"]) == ("p1 adam", "p1", "adam")
    assert frame["lr"].tolist()[:2] == [0.01, 0.1] and (frame["seconds"] == 3.0).all()
    assert frame["run_id"].str.len().eq(32).all() and frame["run_id"].is_unique


def test_the_report_compares_optimizers_across_problems(across: str, tmp_path: Path) -> None:
    text = render("across", out=tmp_path, tracking=across).read_text()
    assert "## Optimizers across problems" in text
    assert "its best of 2 search trials. A problem's target is its best optimizer's median " in text
    for stem in ("time_to_target", "scores", "step_cost"):
        for fmt in ("md", "html", "tex", "csv"):
            assert (tmp_path / "tables" / f"{stem}.{fmt}").is_file(), (stem, fmt)
    for stem in ("profile", "lr_sensitivity", "tuneability"):
        assert f"](figures/{stem}.png)" in text and (tmp_path / "figures" / f"{stem}.pdf").is_file()
    times = pd.read_csv(tmp_path / "tables" / "time_to_target.csv")
    assert times[["problem", "optimizer"]].values.tolist() == [
        ["p1", "sgd"], ["p1", "adam"], ["p2", "sgd"], ["p2", "adam"],
    ]  # fmt: skip
    assert times["target"].tolist() == pytest.approx([0.891, 0.891, 0.792, 0.792])
    assert times["steps"].tolist() == [30, 10, 20, INF]
    # steps x step_s: 30 x 2 ms, 10 x 3 ms, 20 x 2 ms (summed epoch shares: 15, 0.5, 10 s)
    assert times["seconds"].tolist() == pytest.approx([0.06, 0.03, 0.04, INF])
    assert times["reached"].tolist() == [2, 2, 2, 0]
    assert "| p1 | sgd | 0.8910 | 3 | 30 | 0.06 | 2/2 |" in text
    # By seconds the ratios are p1: sgd 2, adam 1; p2: sgd 1, adam never.
    # sgd: ((4 - 2) / 3 + 1) / 2; adam: (1 + 0) / 2. By steps sgd's p1 ratio is 3.
    scores = pd.read_csv(tmp_path / "tables" / "scores.csv").set_index("optimizer")
    assert scores.loc["sgd", "seconds"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores.loc["sgd", "steps"] == pytest.approx((1 / 3 + 1) / 2)
    assert scores["steps"]["adam"] == 0.5 and scores["seconds"]["adam"] == 0.5
    assert scores.loc["sgd", "rank"] == 1 and (scores["problems"] == 2).all()
    cost = pd.read_csv(tmp_path / "tables" / "step_cost.csv").set_index(["problem", "optimizer"])
    assert cost.loc[("p2", "adam"), "optimizer_step_s"] == pytest.approx(0.003)
    assert cost.loc[("p2", "adam"), "step_s"] == pytest.approx(0.006)
    assert cost.loc[("p2", "adam"), "beyond_sgd"] == pytest.approx(0.002)
    assert (cost["runs"] == 4).all()  # 2 seeds x 2 trials
    assert cost.index.tolist() == [("p1", "sgd"), ("p1", "adam"), ("p2", "sgd"), ("p2", "adam")]
    assert "| p1 | adam | 4 | 6 | 3 | +2 |" in text


def test_a_study_before_the_step_timing_gets_no_seconds_and_no_cost_table(
    tmp_path: Path,
) -> None:
    uri = write_study(tmp_path, ["p1", "p2"], timed=False)
    text = render("across", out=tmp_path / "report", tracking=uri).read_text()
    assert "## Optimizers across problems" in text and "step_cost" not in text
    scores = pd.read_csv(tmp_path / "report" / "tables" / "scores.csv")
    assert list(scores.columns) == ["optimizer", "rank", "steps", "problems"]
    times = pd.read_csv(tmp_path / "report" / "tables" / "time_to_target.csv")
    assert "seconds" not in times and times["steps"].tolist() == [30, 10, 20, INF]


def test_an_older_study_gets_epochs_to_target_only(tmp_path: Path) -> None:
    uri = write_study(tmp_path, ["p1", "p2"], steps=False, timed=False)
    text = render("across", out=tmp_path / "report", tracking=uri).read_text()
    assert "## Optimizers across problems" in text and "### Time to target" in text
    assert "step_cost" not in text and "scores" not in text and "figures/profile" not in text
    times = pd.read_csv(tmp_path / "report" / "tables" / "time_to_target.csv")
    assert list(times.columns) == [
        "problem", "optimizer", "target", "epochs", "reached", "cells",
    ]  # fmt: skip
    assert times["epochs"].tolist() == [3, 1, 2, INF]


def test_one_problem_is_no_comparison_across_problems(tmp_path: Path) -> None:
    uri = write_study(tmp_path, ["p1"])
    text = render("across", out=tmp_path / "report", tracking=uri).read_text()
    assert "## Search budget" in text and "Optimizers across problems" not in text
