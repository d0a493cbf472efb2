"""Tables: the stats' numbers, formatted once, the same in Markdown, HTML, LaTeX and CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlbench.report import stats, tables
from dlbench.report.tables import Table

NAN = float("nan")


def frame() -> pd.DataFrame:
    rows = [
        ("a", 0, "completed", 0.5),
        ("a", 1, "completed", 0.7),
        ("a", 2, "diverged", NAN),
        ("b_2", 0, "completed", 0.9),
        ("b_2", 1, "completed", 0.8),
        ("b_2", 2, "missing", NAN),
    ]
    return pd.DataFrame(rows, columns=["arm", "seed", "outcome", "objective"])


def results_table() -> Table:
    data, order = frame(), ["a", "b_2"]
    return tables.results(
        stats.arm_summary(data, "objective", order),
        stats.ranking(data, "objective", order, "maximize"),
        metric="val/acc",
        direction="maximize",
        seconds=pd.Series({"a": 2.0, "b_2": 3.25}),
    )


def test_results_table_shows_the_stats_numbers_best_first() -> None:
    table = results_table()
    shown = table.shown.set_index("arm")
    assert table.shown["arm"].tolist() == ["b_2", "a"]
    assert shown.loc["a", "val/acc mean"] == "0.6000"
    assert shown.loc["a", "std"] == "0.1414"  # sample std of 0.5 and 0.7
    assert shown.loc["a", "n"] == "2" and shown.loc["a", "diverged"] == "0.33"
    assert shown.loc["a", "not completed"] == "1 diverged"
    assert shown.loc["b_2", "not completed"] == "1 missing" and shown.loc["b_2", "s/cell"] == "3.2"
    # Paired differences a - b_2 are -0.4 and -0.1: with 1 degree of freedom the t interval
    # (-0.25 +- 12.706 * 0.15) straddles 0, so two seeds cannot separate the arms.
    assert shown.loc["b_2", "vs best"] == "best" and shown.loc["a", "vs best"] == "no"
    low, high = stats.bootstrap_ci([0.9, 0.8])
    assert shown.loc["b_2", "95% CI"] == f"[{low:.4f}, {high:.4f}]"
    assert table.bold == {(0, "val/acc mean")}


def test_markdown_bolds_the_best_and_escapes_pipes() -> None:
    table = Table(
        "t",
        "caption",
        pd.DataFrame({"x": [1]}),
        pd.DataFrame({"name": ["a|b"], "v": ["0.5"]}),
        frozenset({(0, "v")}),
        frozenset({"v"}),
    )
    assert table.markdown() == "| name | v |\n| :--- | ---: |\n| a\\|b | **0.5** |\n"


def test_html_escapes_and_marks_numbers() -> None:
    shown = pd.DataFrame({"arm": ["<adam>"], "mean": ["0.9"]})
    html = Table(
        "results", "a & b", shown, shown, frozenset({(0, "mean")}), frozenset({"mean"})
    ).html()
    assert '<table id="results">' in html and "<caption>a &amp; b</caption>" in html
    assert "<td>&lt;adam&gt;</td>" in html and '<td class="num"><b>0.9</b></td>' in html


def test_latex_is_booktabs_with_the_best_in_bold_and_escaped() -> None:
    latex = results_table().latex("demo-results")
    lines = latex.splitlines()
    assert lines[0] == r"\begin{table}[t]" and r"\label{tab:demo-results}" in lines
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r"1 & b\_2 & \textbf{0.8500} & " in latex  # _ escaped, best bold
    assert r"95\% CI" in latex and r"\begin{tabular}{rlrrrrlrlr}" in latex


def test_write_gives_four_formats_and_csv_keeps_full_precision(tmp_path: Path) -> None:
    table = results_table()
    table.write(tmp_path, "demo-results")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "results.csv", "results.html", "results.md", "results.tex",
    ]  # fmt: skip
    csv = pd.read_csv(tmp_path / "results.csv")
    assert (
        csv.loc[csv["arm"] == "a", "std"].item()
        == stats.arm_summary(frame(), "objective", ["a"])["std"].item()
    )


def test_unfinished_lists_every_cell_that_did_not_complete() -> None:
    data = frame().assign(attempts=1, error=["", "", "non-finite\n  training loss", "", "", ""])
    table = tables.unfinished(data)
    assert table.shown[["arm", "seed", "outcome"]].values.tolist() == [
        ["a", "2", "diverged"],
        ["b_2", "2", "missing"],
    ]
    assert table.shown["error"].tolist() == ["non-finite training loss", ""]


def test_budget_picks_powers_of_two_and_the_full_budget() -> None:
    best = pd.DataFrame(
        [("a", k, 0.1 * k, 2) for k in range(1, 6)], columns=["arm", "k", "mean", "n"]
    )
    table = tables.budget(best, "val/acc")
    assert list(table.shown.columns) == ["arm", "k=1", "k=2", "k=4", "k=5"]
    assert table.shown.iloc[0].tolist() == ["a", "0.1000", "0.2000", "0.4000", "0.5000"]


def test_a_held_out_column_is_bolded_by_its_own_direction() -> None:
    """A test/loss objective (minimize) beside test/acc (maximize): each column's best."""
    data, order = frame(), ["a", "b_2"]
    accuracy = data.assign(objective=data["arm"].map({"a": 0.2, "b_2": 0.9}))
    table = tables.results(
        stats.arm_summary(data, "objective", order),
        stats.ranking(data, "objective", order, "minimize"),
        metric="test/loss",
        direction="minimize",
        final=("test/acc", stats.arm_summary(accuracy, "objective", order), "maximize"),
    )
    rows = {arm: i for i, arm in enumerate(table.shown["arm"])}
    assert table.shown["arm"].tolist() == ["a", "b_2"]  # a's loss (0.6) is the lower
    assert {(rows["a"], "test/loss mean"), (rows["b_2"], "test/acc mean")} <= table.bold
    assert (rows["a"], "test/acc mean") not in table.bold
