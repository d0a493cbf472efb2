"""Render ``reports/<study>/index.md``: the objective table and the figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlbench.records import DIRECTION, OBJECTIVE, OBJECTIVE_METRIC
from dlbench.report import figures
from dlbench.report.collect import StudyRuns

REPORTS_DIR = Path("reports")


def arm_table(frame: pd.DataFrame, order: list[str], columns: list[str]) -> pd.DataFrame:
    """Per arm: ``mean ± std`` and n of each column over completed cells, plus other outcomes."""
    rows = []
    for arm in order:
        runs = frame[frame["arm"] == arm]
        done = runs[runs["outcome"] == "completed"]
        row: dict[str, object] = {"arm": arm}
        for column in columns:
            values = done[column].dropna() if column in done else pd.Series(dtype=float)
            std = f" ± {values.std():.4f}" if len(values) > 1 else ""
            row[column] = f"{values.mean():.4f}{std}" if len(values) else "-"
        row["n"] = len(done)
        others = runs[runs["outcome"] != "completed"]["outcome"].value_counts()
        row["not completed"] = ", ".join(f"{n} {o}" for o, n in sorted(others.items())) or ""
        rows.append(row)
    return pd.DataFrame(rows)


def render(study: str, *, out: Path | None = None, tracking: str | None = None) -> Path:
    """Write the report for ``study`` from MLflow; returns the path of ``index.md``."""
    runs = StudyRuns(study, tracking)
    frame = runs.frame()
    out = out or REPORTS_DIR / study
    out.mkdir(parents=True, exist_ok=True)
    tags = runs.parent.data.tags if runs.parent else {}
    metric = tags.get(OBJECTIVE, "val/acc")
    direction = tags.get(DIRECTION, "maximize")
    order = list(dict.fromkeys(frame["arm"])) if len(frame) else []
    if len(frame) and OBJECTIVE_METRIC in frame:
        means = frame[frame["outcome"] == "completed"].groupby("arm")[OBJECTIVE_METRIC].mean()
        order = sorted(
            order, key=lambda a: means.get(a, float("nan")), reverse=direction == "maximize"
        )
    final_metric = "test/acc" if "test/acc" in frame else metric
    table = arm_table(frame, order, [OBJECTIVE_METRIC, final_metric])
    table = table.rename(columns={OBJECTIVE_METRIC: f"{metric} (objective)"})

    curves = runs.curves([metric])
    figs = []
    if len(curves):
        figs.append(
            (
                "Learning curves",
                figures.learning_curves(curves, metric, order, out / "curves.png"),
                f"{metric} per epoch, mean over seeds with a ±1 std band.",
            )
        )
    if final_metric in frame:
        figs.append(
            (
                "Final result per seed",
                figures.final_points(frame, final_metric, order, out / "final.png"),
                f"{final_metric} at the end of training; each point is one seed, the bar is the mean.",
            )
        )

    seeds = sorted(frame["seed"].unique()) if "seed" in frame else []
    lines = [
        f"# {study}",
        "",
        tags.get("mlflow.note.content", ""),
        "",
        f"Problem `{tags.get('dlbench.problem', '?')}`, {len(frame)} cells over seeds "
        f"{', '.join(map(str, seeds))}; objective: {metric} ({direction}). "
        f"Rendered from MLflow alone (`dlbench report {study}`); study file "
        f"`{tags.get('dlbench.source', '?')}` (sha256 {tags.get('dlbench.source_sha', '?')[:12]}), "
        f"git {tags.get('dlbench.git_commit', '?')[:12]}, torch {tags.get('dlbench.torch', '?')}, "
        f"device {tags.get('dlbench.device', '?')}.",
        "",
        "## Results per arm",
        "",
        "Mean ± std over seeds of completed runs; best first.",
        "",
        table.to_markdown(index=False),
        "",
    ]
    for title, path, caption in figs:
        lines += [f"## {title}", "", f"![{title}]({path.name})", "", caption, ""]
    index = out / "index.md"
    index.write_text("\n".join(lines))
    return index
