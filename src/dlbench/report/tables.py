"""Report tables: built once from the stats frames, written as Markdown, HTML, LaTeX and CSV.

A :class:`Table` holds the numbers (for CSV, which keeps full precision) and the same
rows as shown (rounded strings, best values bold), so every format says the same thing.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from dlbench.records import CELL_STATES

if TYPE_CHECKING:
    from dlbench.report.verdict import Verdict

DASH = "-"  # an empty cell: no value (not completed, or too few seeds for an interval)
LATEX_ESCAPES = {c: "\\" + c for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    "−": "$-$",
}


def number(value: object, digits: int = 4) -> str:
    """A value as shown: ``digits`` decimals for floats, DASH for NaN/None."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return DASH
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def seconds_shown(value: float) -> str:
    """A cell's cost to two significant digits: a stacked cell's share is a fraction of
    a second, a lone GPU cell minutes."""
    if value is None or math.isnan(value):
        return DASH
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def intervals(frame: pd.DataFrame, digits: int = 4) -> list[str]:
    """``[low, high]`` from a frame's ci_low/ci_high columns; DASH where there is none."""
    return [
        DASH if math.isnan(lo) else f"[{lo:.{digits}f}, {hi:.{digits}f}]"
        for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)
    ]


def _latex(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(c, c) for c in text)


@dataclass(frozen=True)
class Table:
    """One table of a report: its file name, caption, numbers and formatted rows."""

    name: str
    caption: str
    data: pd.DataFrame  # raw values, one row per shown row: the CSV
    shown: pd.DataFrame  # the same rows as display strings
    bold: frozenset[tuple[int, str]] = field(default_factory=frozenset)  # (row, column)
    right: frozenset[str] = field(default_factory=frozenset)  # right-aligned (numeric) columns

    def _cells(self, escape: Callable[[str], str], mark: str) -> list[list[str]]:
        """The shown rows, each value escaped for the format and the best ones marked bold."""
        return [
            [
                mark.format(escape(value)) if (i, column) in self.bold else escape(value)
                for column, value in zip(self.shown.columns, row, strict=True)
            ]
            for i, row in enumerate(self.shown.itertuples(index=False))
        ]

    def markdown(self) -> str:
        escape = lambda text: str(text).replace("|", r"\|")  # noqa: E731
        columns = [escape(c) for c in self.shown.columns]
        rule = ["---:" if c in self.right else ":---" for c in self.shown.columns]
        rows = self._cells(escape, "**{}**")
        return "\n".join("| " + " | ".join(r) + " |" for r in [columns, rule, *rows]) + "\n"

    def html(self) -> str:
        def cell(tag: str, column: str, text: str) -> str:
            align = ' class="num"' if column in self.right else ""
            return f"<{tag}{align}>{text}</{tag}>"

        head = "".join(cell("th", c, html.escape(c)) for c in self.shown.columns)
        rows = [
            "<tr>" + "".join(cell("td", c, v) for c, v in zip(self.shown.columns, row, strict=True))
            for row in self._cells(html.escape, "<b>{}</b>")
        ]
        body = "</tr>\n".join(rows) + ("</tr>" if rows else "")
        return (
            f'<table id="{self.name}">\n<caption>{html.escape(self.caption)}</caption>\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        )

    def latex(self, label: str) -> str:
        """A booktabs ``table`` float, ready for ``\\input`` (needs ``\\usepackage{booktabs}``)."""
        spec = "".join("r" if c in self.right else "l" for c in self.shown.columns)
        rows = self._cells(_latex, r"\textbf{{{}}}")
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{_latex(self.caption)}}}",
            rf"\label{{tab:{label}}}",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(_latex(c) for c in self.shown.columns) + r" \\",
            r"\midrule",
            *(" & ".join(row) + r" \\" for row in rows),
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
        ]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, label: str) -> None:
        """``<name>.md``, ``.html``, ``.tex`` and ``.csv`` in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.md").write_text(self.markdown())
        (folder / f"{self.name}.html").write_text(self.html())
        (folder / f"{self.name}.tex").write_text(self.latex(label))
        self.data.to_csv(folder / f"{self.name}.csv", index=False, lineterminator="\n")


def _best_row(values: pd.Series, direction: str) -> int | None:
    """Position of the best finite value (the first on ties), or None."""
    finite = values.astype(float).reset_index(drop=True).dropna()
    if finite.empty:
        return None
    return int(finite.idxmax() if direction == "maximize" else finite.idxmin())


def _not_completed(row: pd.Series) -> str:
    return ", ".join(f"{int(row[o])} {o}" for o in CELL_STATES if o != "completed" and row[o])


def results(
    summary: pd.DataFrame,
    ranking: pd.DataFrame,
    *,
    metric: str,
    direction: str,
    final: tuple[str, pd.DataFrame, str] | None = None,
    seconds: pd.Series | None = None,
) -> Table:
    """Per arm, best first: the objective's mean, 95% CI, std and n, and what did not finish.

    ``final`` (a held-out metric's name, ``arm_summary`` and direction, e.g. test/acc,
    maximize) adds its mean, its best in bold by its own direction; ``seconds`` (mean
    seconds per cell, by arm: a stacked cell's share of its stack) adds the cost.
    """
    data = ranking[["rank", "arm", "distinguishable"]].merge(summary, on="arm", how="left")
    means = {f"{metric} mean": data["mean"]}
    directions = {f"{metric} mean": direction}
    if final:
        name, final_summary, directions[f"{name} mean"] = final
        data[f"{name} mean"] = data["arm"].map(final_summary.set_index("arm")["mean"])
        means[f"{name} mean"] = data[f"{name} mean"]
    objective = f"{metric} mean"
    shown = pd.DataFrame(
        {
            "rank": data["rank"].astype(str),
            "arm": data["arm"],
            objective: data["mean"].map(number),
            "95% CI": intervals(data),
            "std": data["std"].map(number),
            "n": data["n"].astype(str),
            **{c: v.map(number) for c, v in means.items() if c != objective},
            "vs best": data["distinguishable"],
            "diverged": data["divergence_rate"].map(lambda r: number(r, 2)),
            "not completed": data.apply(_not_completed, axis=1) if len(data) else [],
        }
    )
    if seconds is not None:
        data["seconds"] = data["arm"].map(seconds)
        shown["s/cell"] = data["seconds"].map(seconds_shown)
    bold = {
        (row, column)
        for column, values in means.items()
        if (row := _best_row(values, directions[column])) is not None
    }
    return Table(
        "results",
        f"{metric} per arm over seeds ({direction}), best first. 95% CI: percentile bootstrap "
        "of the mean over completed seeds. vs best: whether the paired 95% CI of the "
        "difference from the best arm excludes 0. diverged: share of trained seeds whose "
        "loss became non-finite.",
        data,
        shown,
        frozenset(bold),
        frozenset(set(shown.columns) - {"arm", "vs best", "not completed"}),
    )


def comparisons(pairs: pd.DataFrame, metric: str, direction: str) -> Table:
    """Paired comparisons: mean difference a - b over shared seeds, its CI, P(a beats b)."""
    shown = pd.DataFrame(
        {
            "a": pairs["a"],
            "b": pairs["b"],
            "seeds": pairs["n"].astype(str),
            "a − b": pairs["diff"].map(number),
            "95% CI": intervals(pairs),
            "P(a beats b)": pairs["p_better"].map(lambda p: number(p, 2)),
        }
    )
    return Table(
        "comparisons",
        f"Paired comparisons of {metric} ({direction}) over the seeds both arms completed. "
        "P(a beats b): bootstrap probability over those seeds, not a p-value.",
        pairs,
        shown,
        right=frozenset({"seeds", "a − b", "95% CI", "P(a beats b)"}),
    )


def unfinished(frame: pd.DataFrame) -> Table:
    """Every cell that did not complete: arm, seed, outcome, attempts and the recorded reason."""
    data = frame.loc[
        frame["outcome"] != "completed", ["arm", "seed", "outcome", "attempts", "error"]
    ]
    data = data.reset_index(drop=True)
    # A traceback's newlines would break a Markdown row or a LaTeX tabular: one line each.
    oneline = data["error"].map(lambda text: " ".join(str(text).split())[:120])
    shown = data.astype(str).assign(error=oneline)
    return Table(
        "unfinished",
        "Cells that did not complete, with the reason recorded in MLflow.",
        data,
        shown,
        right=frozenset({"seed", "attempts"}),
    )


def budget(best: pd.DataFrame, metric: str) -> Table:
    """Search studies: best-of-k per arm, at k = 1, 2, 4, ... and the full budget."""
    budget_max = int(best["k"].max()) if len(best) else 0
    ks = sorted({2**i for i in range(budget_max.bit_length()) if 2**i <= budget_max} | {budget_max})
    data = best[best["k"].isin(ks)].pivot(index="arm", columns="k", values="mean")
    data = data.reindex(list(dict.fromkeys(best["arm"]))).reset_index()
    shown = pd.DataFrame({"arm": data["arm"], **{f"k={k}": data[k].map(number) for k in ks}})
    return Table(
        "budget",
        f"Best {metric} after the first k search trials, mean over seeds (best-of-k).",
        data,
        shown,
        right=frozenset(shown.columns) - {"arm"},
    )


def verdicts(judged: list[Verdict], objective: str) -> Table:
    """Claim studies: each expectation in words, its verdict and the numbers behind it."""
    rows = [(v.expectation.describe(objective), v.verdict, v.evidence) for v in judged]
    data = pd.DataFrame(rows, columns=["expectation", "verdict", "evidence"])
    return Table(
        "verdicts",
        "What the claim expects of the results, and whether the 95% intervals over seeds show it.",
        data,
        data.astype(str),
        bold=frozenset((i, "verdict") for i in range(len(data))),
    )
