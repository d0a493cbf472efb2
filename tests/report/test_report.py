"""Reports: rendered from MLflow alone, numbers checked against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import uri_of
from dlbench.errors import ConfigError
from dlbench.report.collect import StudyRuns
from dlbench.report.render import arm_table, render


def test_frame_has_one_typed_row_per_cell(tiny_run: Path) -> None:
    runs = StudyRuns("tiny", uri_of(tiny_run))
    frame = runs.frame()
    assert len(frame) == 4 and set(frame["arm"]) == {"sgd", "adam"}
    assert frame["seed"].tolist().count(0) == 2
    assert frame["lr"].dtype == float and frame["epochs"].dtype == "int64"
    assert (frame["outcome"] == "completed").all()
    curves = runs.curves(["val/acc"])
    assert len(curves) == 4 * 2 and sorted(curves["epoch"].unique()) == [0, 1]


def test_arm_table_is_mean_std_and_n_over_completed_cells() -> None:
    frame = pd.DataFrame(
        {
            "arm": ["a", "a", "a", "b", "b"],
            "outcome": ["completed", "completed", "diverged", "completed", "failed"],
            "objective": [0.5, 0.7, None, 0.9, None],
        }
    )
    table = arm_table(frame, ["b", "a"], ["objective"]).set_index("arm")
    assert table.loc["a", "objective"] == "0.6000 ± 0.1414"  # sample std of 0.5, 0.7
    assert table.loc["a", "n"] == 2 and table.loc["a", "not completed"] == "1 diverged"
    assert table.loc["b", "objective"] == "0.9000" and table.loc["b", "not completed"] == "1 failed"


def test_render_writes_markdown_and_figures_from_mlflow(tiny_run: Path, tmp_path: Path) -> None:
    index = render("tiny", out=tmp_path / "report", tracking=uri_of(tiny_run))
    text = index.read_text()
    assert "| arm" in text and "val/acc (objective)" in text
    assert "![Learning curves](curves.png)" in text
    for name in ("curves.png", "final.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000
    rows = [
        line for line in text.splitlines() if line.startswith("| sgd") or line.startswith("| adam")
    ]
    assert len(rows) == 2
    again = render("tiny", out=tmp_path / "report", tracking=uri_of(tiny_run))
    assert again.read_text() == text, "same MLflow data, same Markdown"


def test_unknown_study_names_the_ones_in_mlflow(tiny_run: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown study 'tinny' \(did you mean tiny\?\); allowed: tiny \(in MLflow",
    ):
        StudyRuns("tinny", uri_of(tiny_run))
