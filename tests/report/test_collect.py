"""MLflow -> tidy frame: one typed row per planned cell, missing cells kept, curves per epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import dlbench
from conftest import copy_store, uri_of
from dlbench.errors import ConfigError
from dlbench.records import CELL, OUTCOME
from dlbench.report.collect import ID_COLUMNS, StudyRuns, studies


def test_frame_has_one_typed_row_per_cell(tiny_run: Path) -> None:
    frame = dlbench.results("tiny", uri_of(tiny_run))
    assert list(frame.columns[: len(ID_COLUMNS)]) == ID_COLUMNS
    assert len(frame) == 4 and frame["arm"].tolist() == ["sgd", "adam", "sgd", "adam"]
    assert frame["seed"].tolist() == [0, 0, 1, 1]  # seeds outermost, arms in study order
    assert (frame["outcome"] == "completed").all() and (frame["attempts"] == 1).all()
    assert frame["lr"].dtype == float and frame["epochs"].dtype == "Int64"
    assert frame["lr"].tolist() == [0.1, 0.01, 0.1, 0.01]
    assert isinstance(frame["start_time"].dtype, pd.DatetimeTZDtype)
    assert (frame["seconds"] > 0).all()
    for metric in ("objective", "val/acc", "train/loss", "test/acc", "time/epoch_s"):
        assert frame[metric].notna().all(), metric


def test_curves_have_every_epoch_of_every_cell(tiny_run: Path) -> None:
    curves = dlbench.curves("tiny", tracking=uri_of(tiny_run))
    assert set(curves["metric"]) == {"train/loss", "val/loss", "val/acc"}
    assert len(curves) == 4 * 3 * 2 and sorted(curves["epoch"].unique()) == [0, 1]


def test_a_cell_that_never_ran_is_a_missing_row(grid_run: Path, tmp_path: Path) -> None:
    copy_store(grid_run, tmp_path)
    uri = uri_of(tmp_path)
    runs = StudyRuns("grid2", uri)
    gone = next(r for r in runs.runs if r.data.tags["dlbench.arm.optimizer"] == "adam")
    MlflowClient(uri).delete_run(gone.info.run_id)

    frame = dlbench.results("grid2", uri)
    assert len(frame) == 3 * 2 * 2  # the plan, not the runs found
    missing = frame[frame["outcome"] == "missing"]
    assert len(missing) == 1 and missing["cell"].isna().all()
    row = missing.iloc[0]
    assert row["optimizer"] == "adam" and row["init"] == gone.data.tags["dlbench.arm.init"]
    assert row["seed"] == int(gone.data.params["seed"]) and pd.isna(row["objective"])
    assert gone.data.tags[CELL] not in set(frame["cell"].dropna())


def test_diverged_cells_are_rows_with_their_reason(grid_run: Path) -> None:
    frame = dlbench.results("grid2", uri_of(grid_run))
    hot = frame[frame["optimizer"] == "sgd-hot"]
    assert len(hot) == 4 and (hot["outcome"] == "diverged").all()
    assert hot["error"].str.match(r"non-finite training loss at step \d+ \(epoch \d+\)").all()
    assert (frame.loc[frame["optimizer"] != "sgd-hot", "outcome"] == "completed").all()


def test_studies_lists_experiments_with_a_study_run(tiny_run: Path) -> None:
    assert studies(uri_of(tiny_run)) == ["tiny"]


def test_unknown_study_names_the_ones_in_mlflow(tiny_run: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown study 'tinny' \(did you mean tiny\?\); allowed: tiny \(in MLflow",
    ):
        StudyRuns("tinny", uri_of(tiny_run))


def test_a_run_that_ended_without_an_outcome_is_failed(grid_run: Path, tmp_path: Path) -> None:
    copy_store(grid_run, tmp_path)
    uri, client = uri_of(tmp_path), MlflowClient(uri_of(tmp_path))
    run = StudyRuns("grid2", uri).runs[0]
    client.delete_tag(run.info.run_id, OUTCOME)  # as if its worker died before recording it
    client.set_terminated(run.info.run_id, "KILLED")
    row = dlbench.results("grid2", uri).set_index("run_id").loc[run.info.run_id]
    assert (
        row["outcome"] == "failed" and row["error"] == "no outcome recorded (MLflow status KILLED)"
    )


def test_refused_cells_are_rows_with_their_reason(across_run: Path) -> None:
    frame = dlbench.results("across", uri_of(across_run))
    assert len(frame) == 2 * 4 * 2  # the plan: problems x optimizers x seeds
    refused = frame[frame["outcome"] == "refused"]
    assert set(zip(refused["problem"], refused["optimizer"], strict=True)) == {("cnn", "adam-wide")}
    assert (refused["error"] == "problem 'digits_cnn' takes no setting 'width'").all()
    assert len(refused) == 2 and refused["cell"].isna().all()
    assert (frame.loc[frame["outcome"] != "refused", "outcome"] == "completed").all()
    trained = frame[frame["outcome"] == "completed"]
    assert set(trained.loc[trained["optimizer"] == "adam-wide", "width"]) == {32}
