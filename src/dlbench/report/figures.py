"""Seaborn figures in one style: colour-blind-safe palette, white grid, PNG + SVG + PDF.

Every interval drawn is ``stats.bootstrap_ci`` (the tables' numbers), not seaborn's own
bootstrap, so a band in a figure and a CI in a table always agree.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dlbench.records import OBJECTIVE_METRIC  # noqa: E402
from dlbench.report.stats import bootstrap_ci  # noqa: E402

STYLE = {"style": "whitegrid", "palette": "colorblind", "context": "paper"}
FORMATS = ("png", "svg", "pdf")
# No dates or random ids in the files, so the same data renders the same bytes.
METADATA = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}
MAX_LINES = 10  # the colour-blind palette has 10 colours; more arms would share them
PANEL_COLUMNS = 3  # per-problem figures wrap after this many panels


def _figure(
    width: float, height: float, ncols: int = 1, nrows: int = 1
) -> tuple[plt.Figure, np.ndarray]:
    """A figure of ``nrows`` x ``ncols`` panels, their axes in reading order."""
    sns.set_theme(**STYLE)
    plt.rcParams["svg.hashsalt"] = "dlbench"  # fixed element ids in SVG
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    return fig, axes.ravel()


def _panels(count: int) -> tuple[plt.Figure, np.ndarray]:
    """One panel per problem, ``PANEL_COLUMNS`` to a row (a study of eight problems stays
    readable); the grid's spare panels are hidden."""
    ncols = min(count, PANEL_COLUMNS)
    nrows = -(-count // ncols)
    fig, axes = _figure(4.2 * ncols, 3.4 * nrows, ncols, nrows)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _legend(axes: np.ndarray) -> None:
    """One legend for every panel's lines, right of the last panel (a panel may lack some)."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        axes[-1].legend(
            handles.values(), handles.keys(), bbox_to_anchor=(1.02, 1), loc="upper left",
            fontsize="small",
        )  # fmt: skip


def save(fig: plt.Figure, folder: Path, stem: str) -> str:
    """``stem`` as PNG, SVG and PDF in ``folder``; returns the PNG's file name."""
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    for fmt in FORMATS:
        fig.savefig(folder / f"{stem}.{fmt}", dpi=150, metadata=METADATA[fmt])
    plt.close(fig)
    return f"{stem}.png"


def _mean_ci(values: pd.Series) -> pd.Series:
    low, high = bootstrap_ci(values.to_numpy())
    return pd.Series({"mean": values.mean(), "low": low, "high": high})


def _colours(order: list[str]) -> dict[str, tuple[float, float, float]]:
    return dict(zip(order, sns.color_palette("colorblind", len(order)), strict=True))


def learning_curves(curves: pd.DataFrame, metrics: list[str], order: list[str]) -> plt.Figure:
    """One panel per metric: per-epoch mean over seeds per arm, 95% bootstrap CI band."""
    fig, axes = _figure(4.2 * len(metrics), 3.6, len(metrics))
    colours = _colours(order)
    for ax, metric in zip(axes, metrics, strict=True):
        data = curves[curves["metric"] == metric]
        for arm in order:
            arm_data = data[data["arm"] == arm]
            if arm_data.empty:
                continue
            band = arm_data.groupby("epoch")["value"].apply(_mean_ci).unstack()
            ax.plot(band.index, band["mean"], color=colours[arm], label=arm, linewidth=1.5)
            ax.fill_between(band.index, band["low"], band["high"], color=colours[arm], alpha=0.2)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if axes[0].get_legend_handles_labels()[0]:
        axes[-1].legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize="small")
    return fig


def final_points(
    frame: pd.DataFrame, summary: pd.DataFrame, metric: str, order: list[str], label: str
) -> plt.Figure:
    """Per arm (best at the top): every completed seed as a dot, the mean and its 95% CI."""
    fig, (ax,) = _figure(6.4, 1.2 + 0.32 * len(order))
    colours = _colours(order)
    done = frame[frame["outcome"] == "completed"].sort_values("seed")
    for y, arm in enumerate(order):
        values = done.loc[done["arm"] == arm, metric]
        # Seeds spread evenly around the arm's row (no random jitter: same data, same bytes).
        offsets = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
        ax.scatter(values, y + np.asarray(offsets), color=colours[arm], s=22, alpha=0.7)
    rows = summary.set_index("arm").reindex(order)
    y = np.arange(len(order))
    ax.errorbar(
        rows["mean"], y, xerr=[rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]],
        fmt="|", color="black", markersize=12, capsize=3, linewidth=1,
    )  # fmt: skip
    ax.set(xlabel=label, ylabel=None, yticks=y, yticklabels=order)
    ax.set_ylim(len(order) - 0.5, -0.5)  # best at the top
    return fig


def heatmap(values: pd.DataFrame, title: str, fmt: str, cmap: str) -> plt.Figure:
    """An annotated heatmap of a pivot table (rows x columns of two grid axes)."""
    fig, (ax,) = _figure(1.6 + 1.0 * values.shape[1], 1.2 + 0.45 * values.shape[0])
    sns.heatmap(values.astype(float), annot=True, fmt=fmt, cmap=cmap, linewidths=0.5, ax=ax)
    ax.grid(False)
    ax.set_facecolor("#e8e8e8")  # a cell with no value shows grey, not white
    ax.set(title=title)
    ax.tick_params(axis="y", rotation=0)
    return fig


def sensitivity(
    frame: pd.DataFrame, metric: str, hue: str, xs: list[str], label: str
) -> plt.Figure:
    """``metric`` against each of ``xs`` (e.g. batch size, effective lr), log x, one line per hue."""
    fig, axes = _figure(4.2 * len(xs), 3.6, len(xs))
    done = frame[frame["outcome"] == "completed"]
    groups = list(dict.fromkeys(frame[hue]))
    colours = _colours(groups)
    for ax, x in zip(axes, xs, strict=True):
        for group in groups:
            points = done[done[hue] == group].groupby(x)[metric].apply(_mean_ci).unstack()
            if points.empty:
                continue
            ax.plot(points.index, points["mean"], marker="o", color=colours[group], label=group)
            bars = points.dropna(subset=["low"])  # one seed: no interval, no bar
            ax.errorbar(
                bars.index, bars["mean"], yerr=[bars["mean"] - bars["low"], bars["high"] - bars["mean"]],
                fmt="none", capsize=3, color=colours[group],
            )  # fmt: skip
        ax.set(xscale="log", xlabel=x, ylabel=label)
    axes[0].legend(title=hue, fontsize="small")
    return fig


def cost(frame: pd.DataFrame, metric: str, order: list[str], label: str) -> plt.Figure:
    """``metric`` against each cell's seconds (a stacked cell's share of its stack's wall
    time): every completed cell a dot."""
    fig, (ax,) = _figure(6.4, 4.0)
    done = frame[(frame["outcome"] == "completed") & frame["arm"].isin(order)]
    sns.scatterplot(
        data=done, x="seconds", y=metric, hue="arm", hue_order=order, palette=_colours(order),
        s=30, alpha=0.8, ax=ax,
    )  # fmt: skip
    ax.set(xlabel="seconds per cell (a stacked cell: its share of the stack)", ylabel=label)
    ax.legend(fontsize="small", ncols=2 if len(order) > 6 else 1)
    return fig


def budget(best: pd.DataFrame, metric: str, order: list[str]) -> plt.Figure:
    """Search studies: best ``metric`` after k trials, mean over seeds, one line per arm."""
    fig, (ax,) = _figure(6.4, 4.0)
    sns.lineplot(
        data=best, x="k", y="mean", hue="arm", hue_order=order, palette=_colours(order),
        marker="o", errorbar=None, ax=ax,
    )  # fmt: skip
    ax.set(xlabel="search trials k", ylabel=f"best {metric} of k")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def along(frame: pd.DataFrame, x: str, metrics: list[str], label: str) -> plt.Figure:
    """Each of ``metrics`` against a numeric grid axis ``x`` (log x when it spans a decade):
    the mean over completed seeds, band = 95% bootstrap CI. A width sweep's view, where
    double descent shows."""
    fig, (ax,) = _figure(6.4, 3.6)
    done = frame[frame["outcome"] == "completed"]
    colours = _colours(metrics)
    for metric in metrics:
        points = done.groupby(x)[metric].apply(_mean_ci).unstack().sort_index()
        ax.plot(points.index, points["mean"], marker="o", markersize=3, color=colours[metric],
                label=metric)  # fmt: skip
        band = points.dropna(subset=["low"])  # one seed: no interval
        ax.fill_between(band.index, band["low"], band["high"], color=colours[metric], alpha=0.2)
    values = done[x].astype(float)
    if len(values) and values.min() > 0 and values.max() >= 10 * values.min():
        ax.set_xscale("log")
    ax.set(xlabel=x, ylabel=label)
    ax.legend(fontsize="small")
    return fig


# -- optimizers across problems (report/optimizers.py's numbers) --------------------------
def performance_profiles(
    profiles: dict[str, pd.DataFrame], order: list[str], r_max: float
) -> plt.Figure:
    """One panel per time measure: rho(tau) per optimizer as a step line, tau from 1 to
    ``r_max`` on a log axis (each profile evaluated where it steps, so the line is exact)."""
    fig, axes = _figure(4.2 * len(profiles), 3.6, len(profiles))
    colours = _colours(order)
    ticks = [t for t in (1, 1.5, 2, 3, 4, 6, 8) if t <= r_max]
    for ax, (measure, profile) in zip(axes, profiles.items(), strict=True):
        for optimizer in order:
            if optimizer in profile.index:
                ax.step(
                    profile.columns, profile.loc[optimizer], where="post", linewidth=1.5,
                    color=colours[optimizer], label=optimizer,
                )  # fmt: skip
        ax.set(xscale="log", xlim=(1, r_max), ylim=(-0.03, 1.03), title=f"by {measure}")
        ax.set(xlabel=f"tau ({measure} to target / the fastest's)", ylabel="share of problems")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(plt.NullLocator())
    _legend(axes)
    return fig


def lr_sensitivity(
    points: pd.DataFrame, problems: list[str], order: list[str], label: str
) -> plt.Figure:
    """One panel per problem: every completed search trial's objective against its
    learning rate (log x), one colour per optimizer (DeepOBS's sensitivity view)."""
    fig, axes = _panels(len(problems))
    colours = _colours(order)
    for ax, problem in zip(axes, problems, strict=True):
        data = points[points["problem"] == problem]
        for optimizer in order:
            own = data[data["optimizer"] == optimizer]
            if len(own):
                ax.scatter(own["lr"], own[OBJECTIVE_METRIC], s=18, alpha=0.8,
                           color=colours[optimizer], label=optimizer)  # fmt: skip
        ax.set(xscale="log", xlabel="learning rate", ylabel=label, title=problem)
    _legend(axes)
    return fig


def tuneability(
    best: pd.DataFrame, problems: list[str], order: list[str], label: str
) -> plt.Figure:
    """One panel per problem: the best objective of the first k search trials per
    optimizer, mean over seeds, band from the worst seed's to the best seed's."""
    fig, axes = _panels(len(problems))
    colours = _colours(order)
    for ax, problem in zip(axes, problems, strict=True):
        data = best[best["problem"] == problem]
        for optimizer in order:
            own = data[data["optimizer"] == optimizer].sort_values("k")
            if own.empty:
                continue
            ax.plot(own["k"], own["mean"], marker="o", markersize=3, color=colours[optimizer],
                    label=optimizer)  # fmt: skip
            ax.fill_between(own["k"], own["low"], own["high"], color=colours[optimizer], alpha=0.2)
        ax.set(xlabel="search trials k", ylabel=f"best {label} of k", title=problem)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(axes)
    return fig
