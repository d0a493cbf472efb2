"""Seaborn figures, one style: colour-blind-safe palette, white grid, arms in study order."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

STYLE = {"style": "whitegrid", "palette": "colorblind", "context": "paper"}


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    # No timestamps in the files, so the same data renders the same bytes.
    fig.savefig(path, dpi=150, metadata={"Software": None})
    plt.close(fig)
    return path


def learning_curves(curves: pd.DataFrame, metric: str, order: list[str], path: Path) -> Path:
    """Per-epoch ``metric``, one line per arm: mean over seeds with a +-1 std band."""
    sns.set_theme(**STYLE)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    data = curves[curves["metric"] == metric]
    sns.lineplot(data=data, x="epoch", y="value", hue="arm", hue_order=order, errorbar="sd", ax=ax)
    ax.set(xlabel="epoch", ylabel=metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(title=None, fontsize="small", ncols=2)
    return _save(fig, path)


def final_points(frame: pd.DataFrame, metric: str, order: list[str], path: Path) -> Path:
    """Final ``metric`` per arm: every seed as a point, the mean as a bar-free marker."""
    sns.set_theme(**STYLE)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    data = frame.dropna(subset=[metric])
    sns.stripplot(
        data=data,
        x="arm",
        y=metric,
        order=order,
        hue="arm",
        hue_order=order,
        jitter=0.15,
        size=6,
        alpha=0.7,
        legend=False,
        ax=ax,
    )
    sns.pointplot(
        data=data,
        x="arm",
        y=metric,
        order=order,
        errorbar=None,
        color="black",
        markers="_",
        markersize=20,
        linestyles="none",
        ax=ax,
    )
    ax.set(xlabel=None, ylabel=metric)
    ax.tick_params(axis="x", rotation=30)
    return _save(fig, path)
