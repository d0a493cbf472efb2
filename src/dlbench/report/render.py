"""Render ``reports/<study>/`` from MLflow alone: index.md, index.html, tables/, figures/.

The order of the page: provenance header, headline, results table, figures, paired
comparisons, the cells that did not complete. Rendering twice from the same MLflow
data writes byte-identical tables and Markdown; a failed render leaves the previous
report in place (everything is written to a scratch folder, then swapped in).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from itertools import combinations
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from dlbench.errors import ConfigError
from dlbench.records import OBJECTIVE_METRIC, PLUGINS
from dlbench.report import figures, optimizer_views, published, stats, tables, verdict
from dlbench.report.collect import StudyRuns
from dlbench.report.document import Block, Figure, Heading, Paragraph, TableBlock, markdown, to_html

REPORTS_DIR = Path("reports")
MAX_PAIRS_ARMS = 12  # above this many arms, compare each arm with the best only
ALONG_LEVELS = 4  # a numeric axis of at least this many values gets the along figure


def held_out(metric: str) -> str:
    """The held-out column the results table adds: the test split's value of a validation
    objective, and for a test objective the other test metric (test/acc beside test/loss)."""
    if metric.startswith("test/"):
        return "test/acc" if metric == "test/loss" else "test/loss"
    return "test/" + metric.removeprefix("val/")


def direction_of(metric: str) -> str:
    """Losses are minimized, accuracies maximized."""
    return "maximize" if metric.endswith("/acc") else "minimize"


def plugin_note(tags: dict[str, str]) -> str:
    """' Plugins: `file` (sha256 `...`).' for a study that loaded plugin files, else ''."""
    loaded = json.loads(tags.get(PLUGINS) or "[]")
    named = ", ".join(f"`{p['path']}` (sha256 `{p['sha256'][:12]}`)" for p in loaded)
    return f" Plugins: {named}." if named else ""


class Report:
    """One study's report being assembled: its data, statistics and blocks."""

    def __init__(self, runs: StudyRuns, out: Path):
        self.runs, self.out = runs, out
        self.frame = runs.frame()
        self.metric, self.direction, self.label = runs.metric, runs.direction, runs.label
        self.order = list(runs.plan)
        self.summary = stats.arm_summary(self.frame, OBJECTIVE_METRIC, self.order)
        self.ranking = stats.ranking(self.frame, OBJECTIVE_METRIC, self.order, self.direction)
        self.ranked = self.ranking["arm"].tolist()
        # Arms with at least one completed seed, best first: what figures of results draw.
        self.shown = self.ranking.loc[self.ranking["distinguishable"] != "no data", "arm"].tolist()
        self.references = published.frame(runs.references, self.frame, self.order)
        self.blocks: list[Block] = []
        self.verdict, self.verdicts = (
            verdict.judge_claim(runs.claim, self.frame, runs.plan, self.direction)
            if runs.claim
            else ("", [])
        )

    # -- pieces --------------------------------------------------------------------------
    def setup(self) -> str:
        """The setup a caption states: problem, epochs, seeds and what varies."""
        epochs = sorted(self.frame["epochs"].dropna().unique()) if "epochs" in self.frame else []
        varies = ", ".join(f"{a} ({len(self.runs.labels(a))})" for a in self.runs.axes)
        return (
            f"Problem `{self.runs.tags.get('dlbench.problem', '?')}`, "
            f"{'/'.join(map(str, epochs)) or '?'} epochs, seeds "
            f"{', '.join(map(str, self.runs.seeds))}; varies: {varies or 'nothing'}."
        )

    def table(self, table: tables.Table) -> None:
        table.write(self.out / "tables", f"{self.runs.study}-{table.name}")
        self.blocks.append(TableBlock(table, "tables"))

    def figure(self, fig: plt.Figure, stem: str, title: str, caption: str) -> None:
        name = figures.save(fig, self.out / "figures", stem)
        self.blocks += [Heading(title, 3), Figure(f"figures/{name}", caption, title)]

    def header(self) -> None:
        tags, frame = self.runs.tags, self.frame
        counts = frame["outcome"].value_counts()
        outcomes = ", ".join(f"{counts[o]} {o}" for o in stats.OUTCOMES if o in counts)
        started = frame["start_time"].dropna()
        newest = started.max().strftime("%Y-%m-%d %H:%M UTC") if len(started) else "none"
        trials = f" ({sum(self.runs.trials.values())} search trials)" if self.runs.is_search else ""
        env = lambda tag: ", ".join(self.runs.environment(tag))  # noqa: E731
        commits = ", ".join(
            f"`{c[:12]}{'+dirty' if c.endswith('+dirty') else ''}`"
            for c in self.runs.environment("dlbench.git_commit")
        )
        self.blocks += [
            Heading(f"{self.runs.study}", 1),
            Paragraph(tags.get("mlflow.note.content", "")),
            Paragraph(f"**Setup.** {self.setup()} Objective: {self.label} ({self.direction})."),
            Paragraph(
                f"**Provenance.** Study file `{tags.get('dlbench.source', '?')}` "
                f"(sha256 `{tags.get('dlbench.source_sha', '?')[:12]}`), git {commits}, "
                f"dlbench {env('dlbench.version')}, torch {env('dlbench.torch')}, "
                f"device {env('dlbench.device')}.{plugin_note(tags)} {len(frame)} cells{trials}: "
                f"{outcomes}. Newest run started {newest}. Rendered from MLflow alone by "
                f"`dlbench report {self.runs.study}`."
            ),
        ]

    def headline(self) -> None:
        top = stats.indistinguishable_from_best(self.ranking)
        if not top:
            self.blocks.append(Paragraph("No cell has completed yet."))
            return
        best = self.summary.set_index("arm").loc[top[0]]
        ci = tables.intervals(pd.DataFrame([best]))[0]
        text = (
            f"**Best:** {top[0]}, {self.label} {best['mean']:.4f} (95% CI {ci}, n={best['n']:.0f})."
        )
        if best["n"] < 2:
            text += " One completed seed: a single run, not yet evidence."
        if len(top) > 1:
            text += (
                f" Not distinguishable from it at 95% (paired over seeds): {', '.join(top[1:])}."
            )
        few = self.ranking.loc[self.ranking["distinguishable"] == "too few seeds", "arm"]
        if len(few):
            text += f" Too few seeds shared with it to judge: {', '.join(few)}."
        if len(self.references):
            text += " " + published.summary(self.references)
        self.blocks.append(Paragraph(text))

    def claim(self) -> None:
        """Claim studies: the claim, where it comes from, and the verdict with its evidence."""
        claim = self.runs.claim
        assert claim is not None
        self.blocks += [
            Heading(f"Claim {claim.number}: {self.verdict}"),
            Paragraph(f"**Claim.** {claim.text} **Source:** {claim.source}."),
        ]
        if claim.paper:
            self.blocks.append(Paragraph(f"**In the literature.** {claim.paper}"))
        self.table(tables.verdicts(self.verdicts, self.label))
        self.blocks.append(
            Paragraph(
                f"**Verdict: {self.verdict}.** Supported when every expectation's 95% interval "
                "lies on its side, contradicted when any lies wholly on the other side, "
                "inconclusive otherwise (a = the first arm named, b = the second)."
                + (f" **Caveat:** {claim.caveat}" if claim.caveat else "")
            )
        )

    def results(self) -> None:
        final = held_out(self.metric)
        has_final = final in self.frame
        seconds = self.frame[self.frame["outcome"] == "completed"].groupby("arm")["seconds"]
        self.blocks.append(Heading("Results per arm"))
        self.table(
            tables.results(
                self.summary,
                self.ranking,
                metric=self.label,
                direction=self.direction,
                final=(final, stats.arm_summary(self.frame, final, self.order), direction_of(final))
                if has_final
                else None,
                seconds=seconds.mean(),
            )
        )

    def reference_values(self) -> None:
        """The study file's published references beside dlbench's results."""
        self.blocks += [
            Heading("Published references"),
            Paragraph(
                "Each reference is a published value for the arm's setup; *inside CI* says "
                "whether it lies in dlbench's 95% bootstrap interval over seeds, i.e. whether "
                "these runs reproduce it."
            ),
        ]
        self.table(published.table(self.references))

    def learning_curves(self) -> None:
        metrics = list(dict.fromkeys(["train/loss", "val/loss", self.metric]))
        shown = self.shown[: figures.MAX_LINES]
        # Completed runs of the arms drawn: a diverged run's loss reaches 1e30 and would
        # flatten every other line.
        drawn = (self.frame["outcome"] == "completed") & self.frame["arm"].isin(shown)
        curves = self.runs.curves(metrics, set(self.frame.loc[drawn, "cell"]))
        if curves.empty:
            return
        extra = f" The {len(shown)} best arms are drawn." if len(shown) < len(self.shown) else ""
        self.figure(
            figures.learning_curves(curves, metrics, shown),
            "curves",
            "Learning curves",
            f"Per-epoch training and validation curves per arm over completed runs: mean over "
            f"seeds, band = 95% bootstrap CI. {self.setup()}{extra}",
        )

    def final_points(self) -> None:
        self.figure(
            figures.final_points(
                self.frame, self.summary, OBJECTIVE_METRIC, self.shown, self.label
            ),
            "final",
            "Final result per seed",
            f"{self.label} (the objective) per arm, best at the top: each dot is one seed, the "
            f"bar the mean with its 95% bootstrap CI. {self.setup()}",
        )

    def _pivot(self, frame: pd.DataFrame, values: str, rows: str, columns: str) -> pd.DataFrame:
        """Mean of ``values`` per (rows, columns) label pair, labels in study order."""
        table = frame.pivot_table(values, rows, columns, "mean")
        return table.reindex(index=self.runs.labels(rows), columns=self.runs.labels(columns))

    def heatmaps(self) -> None:
        """Two-axis views: mean objective and divergence rate for every pair of axes."""
        axes = [a for a in self.runs.axes if len(self.runs.labels(a)) > 1]
        outcome = self.frame["outcome"]
        trained = self.frame[outcome.isin(["completed", "diverged"])]
        trained = trained.assign(diverged=(trained["outcome"] == "diverged").astype(float))
        for rows, columns in combinations(axes, 2):
            others = [a for a in axes if a not in (rows, columns)]
            over = f", averaged over {', '.join(others)}" if others else ""
            means = self._pivot(self.frame[outcome == "completed"], OBJECTIVE_METRIC, rows, columns)
            self.figure(
                figures.heatmap(means, f"mean {self.label}", ".3f", "viridis"),
                f"heatmap-{rows}-{columns}",
                f"{self.label}: {rows} × {columns}",
                f"Mean {self.label} over completed seeds{over}; blank: no completed cell. "
                f"{self.setup()}",
            )
            if (outcome == "diverged").any():
                self.figure(
                    figures.heatmap(
                        self._pivot(trained, "diverged", rows, columns),
                        "divergence rate",
                        ".2f",
                        "Reds",
                    ),  # fmt: skip
                    f"divergence-{rows}-{columns}",
                    f"Divergence: {rows} × {columns}",
                    f"Share of trained seeds (completed + diverged) whose training loss became "
                    f"non-finite{over}. {self.setup()}",
                )

    def sensitivity(self) -> None:
        varying = [c for c in ("batch_size_effective", "lr_effective") if c in self.frame]
        varying = [c for c in varying if self.frame[c].nunique() > 1]
        if "batch_size_effective" not in varying:
            return
        others = [a for a in self.runs.axes if a != "batch_size"]
        hue = others[0] if len(others) == 1 else "arm"
        self.figure(
            figures.sensitivity(self.frame, OBJECTIVE_METRIC, hue, varying, self.label),
            "sensitivity",
            "Batch size and learning-rate sensitivity",
            f"{self.label} against the batch size trained with and the effective learning rate "
            f"(after the scaling rule): mean and 95% bootstrap CI over completed seeds, log x. "
            f"Diverged cells have no point; the divergence heatmap shows them. {self.setup()}",
        )

    def along(self) -> None:
        """A study of one numeric axis with many values (a width sweep): the training,
        validation and test value of the objective's quantity along it."""
        axes = self.runs.axes
        if len(axes) != 1 or len(self.runs.labels(axes[0])) < ALONG_LEVELS:
            return
        axis = axes[0]
        if axis not in self.frame:
            return
        values = pd.to_numeric(self.frame[axis], errors="coerce")  # labels are strings
        if values.isna().any():
            return
        quantity = self.metric.split("/")[-1]
        metrics = [f"{split}/{quantity}" for split in ("train", "val", "test")]
        metrics = [m for m in metrics if m in self.frame]
        self.figure(
            figures.along(self.frame.assign(**{axis: values}), axis, metrics, quantity),
            "along",
            f"Against {axis}",
            f"Final {', '.join(metrics)} against {axis}: mean over completed seeds, band = "
            f"95% bootstrap CI (train: the last epoch's mean over its batches, as trained). "
            f"{self.setup()}",
        )

    def cost(self) -> None:
        self.figure(
            figures.cost(self.frame, OBJECTIVE_METRIC, self.shown[: figures.MAX_LINES], self.label),
            "cost",
            "Result against cost",
            f"{self.label} against each cell's seconds (building, training, validation and "
            f"test; cells trained together as one stack share its wall time equally): the "
            f"cost view. {self.setup()}",
        )

    def search_budget(self) -> None:
        best = stats.best_of_k(
            self.runs.trial_frame(), OBJECTIVE_METRIC, self.ranked, self.direction
        )
        self.blocks.append(Heading("Search budget"))
        self.table(tables.budget(best, self.label))
        self.figure(
            figures.budget(best, self.label, self.shown[: figures.MAX_LINES]),
            "budget",
            "Best of k trials",
            f"Best {self.label} among a cell's first k search trials, mean over seeds: what a "
            f"smaller tuning budget would have found. {self.setup()}",
        )

    def comparisons(self) -> None:
        many = len(self.ranked) > MAX_PAIRS_ARMS
        against = self.ranked[0] if many else ""
        pairs = stats.comparisons(
            self.frame, OBJECTIVE_METRIC, self.ranked, self.direction, against=against
        )
        pairs = pairs[pairs["n"] > 0].reset_index(drop=True)
        note = "Every pair of arms with completed seeds in common, better-ranked arm as a."
        if many:
            note = f"Each arm against the best ({against}); the grid has too many pairs for all."
        note += (
            " The 95% CI of the mean paired difference is a Student-t interval over the shared"
            " seeds (a bootstrap of 2-5 values is too narrow to judge by)."
        )
        self.blocks += [Heading("Paired comparisons"), Paragraph(note)]
        self.table(tables.comparisons(pairs, self.label, self.direction))

    def unfinished(self) -> None:
        table = tables.unfinished(self.frame)
        self.blocks.append(Heading("Cells that did not complete"))
        if table.data.empty:
            self.blocks.append(Paragraph("Every planned cell completed."))
        else:
            self.table(table)

    # -- the whole page ------------------------------------------------------------------
    def build(self) -> None:
        self.header()
        self.headline()
        if self.runs.claim:
            self.claim()
        self.results()
        if len(self.references):
            self.reference_values()
        if self.shown:  # figures of results need a completed cell
            self.blocks.append(Heading("Figures"))
            self.learning_curves()
            self.final_points()
            self.heatmaps()
            self.sensitivity()
            self.along()
            self.cost()
        if self.runs.is_search:
            self.search_budget()
        optimizer_views.section(self)  # a search over problems and optimizers
        self.comparisons()
        self.unfinished()
        (self.out / "index.md").write_text(markdown(self.blocks))
        (self.out / "index.html").write_text(to_html(self.blocks, self.runs.study))


def render(study: str, *, out: Path | None = None, tracking: str | None = None) -> Path:
    """Write the report for ``study`` from MLflow; returns the path of ``index.md``."""
    out = out or REPORTS_DIR / study
    write(StudyRuns(study, tracking), out)
    return out / "index.md"


def write(runs: StudyRuns, out: Path) -> Report:
    """Build ``runs``' report into ``out`` (replacing an old report there as a whole)."""
    if out.is_dir() and any(out.iterdir()) and not (out / "index.md").is_file():
        # The old report is replaced as a whole: never a folder that is not one.
        raise ConfigError(f"{out} is not empty and holds no report (index.md); pick another")
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        report = Report(runs, scratch)
        report.build()
        scratch.chmod(0o755)  # mkdtemp makes it private; a report is for sharing
        if out.exists():
            shutil.rmtree(out)
        scratch.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.out = out
    return report
