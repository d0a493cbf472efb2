"""Search mode: the search block is checked, each cell is tuned by its own Optuna study,
every trial is an MLflow run of its cell, and the cell's result is its best trial."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.errors import ConfigError
from dlbench.harness import search, storage
from dlbench.harness.grid import expand
from dlbench.harness.options import RunOptions
from dlbench.harness.runner import train
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.records import CELL, OUTCOME, ROLE, SEARCH_TRIAL
from dlbench.report.collect import StudyRuns
from dlbench.report.render import render

SEARCH = """\
search:
  trials: 3
  params:
    lr: {low: 1.0e-3, high: 1.0, log: true}
    momentum: {low: 0.0, high: 0.95}
"""


def test_each_cell_is_tuned_and_its_result_is_the_best_trial(workdir: Path) -> None:
    text = TINY_STUDY.replace("    - {name: sgd, lr: 0.1}\n", "    - {name: momentum, lr: 0.1}\n")
    spec = load_study(write_study(workdir, text + SEARCH), smoke=True)
    units = expand(spec)
    assert [u.label for u in units] == [
        f"{arm} s0 t{k}" for arm in ("momentum", "adam") for k in range(3)
    ]
    run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu"))

    client = MlflowClient(uri_of(workdir))
    experiment = client.get_experiment_by_name("tiny_smoke")
    runs = [
        r for r in client.search_runs([experiment.experiment_id]) if r.data.tags[ROLE] == "cell"
    ]
    assert len(runs) == 6 and all(r.data.tags[OUTCOME] == "completed" for r in runs)
    by_cell: dict[str, list] = {}
    for run in runs:
        by_cell.setdefault(run.data.tags[CELL], []).append(run)
    assert sorted(by_cell) == sorted({u.grid_id for u in units})
    for cell_runs in by_cell.values():
        assert sorted(r.data.tags[SEARCH_TRIAL] for r in cell_runs) == ["0", "1", "2"]
        lrs = [float(r.data.params["lr"]) for r in cell_runs]
        assert len(set(lrs)) == 3 and all(1e-3 <= lr <= 1.0 for lr in lrs)  # sampled, in range
    # momentum is only searched where the optimizer takes it.
    adam = next(r for rs in by_cell.values() for r in rs if r.data.params["optimizer"] == "adam")
    assert "momentum" not in adam.data.params

    # Each cell's own Optuna study saw the three trials and their per-epoch values.
    sweep = storage.open_study("tiny_smoke", "maximize")
    for grid_id in by_cell:
        tuning = optuna.load_study(
            study_name=f"tiny_smoke/{grid_id}", storage=storage.store_of(sweep)
        )
        trials = tuning.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert len(trials) == 3 and all(t.intermediate_values for t in trials)

    # The report's row for a cell is its best trial, with the tuning budget.
    frame = StudyRuns("tiny_smoke", uri_of(workdir)).frame()
    assert len(frame) == 2 and set(frame["search_trials"]) == {3}
    for _, row in frame.iterrows():
        best = max(r.data.metrics["objective"] for r in by_cell[row["cell"]])
        assert row["objective"] == best

    # The report adds the search budget: best-of-k for k = 1, 2 and the full 3 trials.
    index = render("tiny_smoke", out=workdir / "report", tracking=uri_of(workdir))
    assert "## Search budget" in index.read_text() and "](figures/budget.png)" in index.read_text()
    budget = pd.read_csv(workdir / "report" / "tables" / "budget.csv")
    assert list(budget.columns) == ["arm", "1", "2", "3"] and len(budget) == 2
    assert (budget[["1", "2", "3"]].diff(axis=1).iloc[:, 1:] >= 0).all().all()  # never worse


def test_pruning_stops_a_trial_and_records_it_as_pruned(workdir: Path) -> None:
    spec = load_study(write_study(workdir, TINY_STUDY), smoke=True, overrides=["epochs=4"])
    cell = expand(spec)[0]
    # A threshold no accuracy reaches: the pruner stops the trial after its first epoch.
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )
    pruning = search.Pruning(study.ask(), "val/acc")
    client = MlflowClient(uri_of(workdir))
    run_id = client.create_run(client.create_experiment("p")).info.run_id
    (result,) = train(
        [cell], spec.objective, run_ids=[run_id], tracking_uri=uri_of(workdir),
        accelerator="cpu", pruning=pruning,
    )  # fmt: skip
    assert result.outcome == "pruned" and pruning.pruned_epoch == 0
    assert "after epoch 0" in result.error and not math.isnan(result.final["val/acc"])


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("search: {trials: 0, params: {lr: {low: 0.1, high: 1}}}", ["search.trials", ">= 1"]),
        (
            "search: {trials: 2, params: {lr: {low: 1, high: 0.1}}}",
            ["search.params.lr", "low < high"],
        ),
        (
            "search: {trials: 2, params: {momentum: {low: 0, high: 0.9, log: true}}}",
            ["search.params.momentum", "log range needs low > 0"],
        ),
        (
            "search: {trials: 2, params: {lrr: {low: 0.1, high: 1}}}",
            ["search.params.lrr", "did you mean lr"],
        ),
        (
            "search: {trials: 2, params: {lr: {low: 0.1, high: 1}}, pruner: asha}",
            ["search.pruner", "median"],
        ),
        (
            "search: {trials: 2, params: {optimizer: {low: 0.1, high: 1}}}",
            ["search.params.optimizer"],
        ),
    ],
)
def test_bad_search_blocks_are_refused(workdir: Path, block: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_study(write_study(workdir, TINY_STUDY + block + "\n"))
    assert all(word in str(err.value) for word in words), str(err.value)


def test_a_grid_axis_cannot_also_be_searched(workdir: Path) -> None:
    text = TINY_STUDY + "search: {trials: 2, params: {lr: {low: 0.1, high: 1}}}\n"
    text = text.replace(
        "grid:\n  optimizer:\n    - {name: sgd, lr: 0.1}\n    - {name: adam, lr: 0.01}\n",
        "grid: {lr: [0.1, 0.2]}\n",
    )
    with pytest.raises(ConfigError, match="grid axis"):
        load_study(write_study(workdir, text))
