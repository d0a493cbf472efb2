"""Published references in a report: beside dlbench's mean and interval, judged by it."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.records import Reference
from dlbench.report import published
from dlbench.report.collect import StudyRuns
from dlbench.report.render import render


def test_the_frame_compares_each_reference_with_the_arms_interval() -> None:
    results = pd.DataFrame(
        {
            "arm": ["a"] * 4 + ["b"],
            "seed": [0, 1, 2, 3, 0],
            "outcome": ["completed"] * 5,
            "test/acc": [0.5, 0.6, 0.7, 0.6, 0.9],
        }
    )
    refs = [
        Reference("a", "test/acc", 0.6, "inside"),
        Reference("a", "test/acc", 0.95, "above"),
        Reference("b", "test/acc", 0.9, "one seed"),
        Reference("a", "test/f1", 0.5, "never logged"),
        Reference("c", "test/acc", 0.5, "no such arm"),
    ]
    frame = published.frame(refs, results, ["a", "b"])
    assert frame["mean"].iloc[0] == pytest.approx(0.6)
    assert frame["difference"].iloc[:2].tolist() == pytest.approx([0.0, 0.6 - 0.95])
    assert frame["ci_low"].iloc[0] <= 0.6 <= frame["ci_high"].iloc[0]
    assert frame["inside"].tolist() == [True, False, None, None, None]
    assert frame["n"].tolist() == [4, 4, 1, 0, 0]
    assert math.isnan(frame["difference"].iloc[3])
    shown = published.table(frame).shown
    assert shown["inside CI"].tolist() == ["yes", "no", "-", "-", "-"]
    assert shown["difference"].iloc[1] == "-0.3500"
    assert published.summary(frame) == (
        "Published references: 1 of 2 inside dlbench's 95% interval (3 without an interval)."
    )


@pytest.fixture(scope="module")
def referenced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study with three seeds and references, run for real, then rendered."""
    folder = tmp_path_factory.mktemp("references")
    text = TINY_STUDY.replace("name: tiny", "name: refs").replace(
        "seeds: [0, 1]", "seeds: [0, 1, 2]"
    )
    text += (
        "reference:\n"
        "  - {arm: adam, value: 0.0, metric: test/acc, source: Nowhere 2020}\n"
        "  - {arm: sgd, value: 0.1, metric: val/loss, source: Somewhere 2021}\n"
    )
    old = Path.cwd()
    os.chdir(folder)  # the Optuna journal goes to runs/ here
    try:
        spec = load_study(write_study(folder, text, "refs.yaml"))
        run_study(spec, RunOptions(tracking=uri_of(folder), devices="cpu"))
    finally:
        os.chdir(old)
    render("refs", out=folder / "report", tracking=uri_of(folder))
    return folder


def test_a_study_files_references_reach_its_report(referenced: Path) -> None:
    runs = StudyRuns("refs", uri_of(referenced))
    assert runs.references == [
        Reference("adam", "test/acc", 0.0, "Nowhere 2020"),
        Reference("sgd", "val/loss", 0.1, "Somewhere 2021"),
    ]
    text = (referenced / "report" / "index.md").read_text()
    assert "## Published references" in text
    assert "inside dlbench's 95% interval." in text.split("## Results per arm")[0]
    table = pd.read_csv(referenced / "report" / "tables" / "references.csv")
    frame = runs.frame()
    adam = frame.loc[(frame["arm"] == "adam") & (frame["outcome"] == "completed"), "test/acc"]
    row = table.iloc[0]
    assert row["mean"] == pytest.approx(adam.mean())
    assert row["difference"] == pytest.approx(adam.mean() - 0.0)
    assert row["inside"] == "no"  # 0% accuracy is outside any trained model's interval
    assert "| adam | test/acc | 0.0000 |" in text


def test_a_study_without_references_has_no_such_section(tiny_run: Path, tmp_path: Path) -> None:
    assert StudyRuns("tiny", uri_of(tiny_run)).references == []
    text = render("tiny", out=tmp_path / "tiny", tracking=uri_of(tiny_run)).read_text()
    assert "Published references" not in text
