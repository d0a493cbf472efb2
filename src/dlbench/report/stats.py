"""The numbers behind every report table, computed once and tested against hand-worked values.

Seeds are the unit of evidence: an arm's result is the spread of its completed seeds, and two
arms are compared seed by seed (paired), since a seed fixes the data order and initialisation
that both arms share. Only ``completed`` cells with a finite metric count as evidence; the other
outcomes are counted, never averaged. Every random draw comes from
``numpy.random.default_rng(seed)`` with a fixed default seed, so a report renders the same
numbers every time.

Input frames have one row per (arm, seed) cell with columns ``arm``, ``seed``, ``outcome`` and
the metric column, NaN where the cell did not complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from dlbench.records import CELL_STATES as OUTCOMES  # every state a cell can be in

LEVEL = 0.95
RESAMPLES = 10_000
SEED = 0


def _sign(direction: str) -> int:
    """+1 when larger is better, -1 when smaller is, so one code path serves both."""
    signs = {"maximize": 1, "minimize": -1}
    if direction not in signs:
        raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    return signs[direction]


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The values as floats with NaN/inf dropped: a missing number is no evidence."""
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _resampled_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples (with replacement) of ``values``, in one draw."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[picks].mean(axis=1)


def _interval(means: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of the resampled means."""
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail], method="linear")
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of the finite ``values``.

    Fewer than two values give ``(nan, nan)``: one seed says nothing about seed-to-seed spread,
    and a zero-width interval would claim certainty it does not have.
    """
    finite = _finite(values)
    if len(finite) < 2:
        return float("nan"), float("nan")
    return _interval(_resampled_means(finite, resamples, seed), level)


def t_interval(
    values: Sequence[float] | np.ndarray, *, level: float = LEVEL
) -> tuple[float, float]:
    """Student-t CI of the mean of the finite ``values`` (n - 1 degrees of freedom).

    Used to judge paired differences: a percentile bootstrap never leaves [min, max], so
    with 2-3 seeds that all point the same way it would "exclude 0" half the time for
    two equal arms; the t interval keeps its 95% at any n >= 2 (for normal noise).
    """
    finite = _finite(values)
    if len(finite) < 2:
        return float("nan"), float("nan")
    half = scipy_stats.t.ppf(0.5 + level / 2, len(finite) - 1) * finite.std(ddof=1)
    half /= np.sqrt(len(finite))
    return float(finite.mean() - half), float(finite.mean() + half)


MOST_SEEDS = 1000  # beyond this, "seeds needed" says "more than 1000"


def seeds_needed(
    values: Sequence[float] | np.ndarray, distance: float, *, level: float = LEVEL
) -> int | None:
    """The fewest seeds at which a Student-t CI of the mean of data like ``values`` (their
    standard deviation) would be narrower, on each side, than ``distance``: what it takes
    for an effect that size to be told from none. None: more than ``MOST_SEEDS``."""
    finite = _finite(values)
    spread = finite.std(ddof=1) if len(finite) >= 2 else float("nan")
    if not distance > 0 or not np.isfinite(spread):
        return None
    if spread == 0:
        return 2
    for n in range(2, MOST_SEEDS + 1):
        if scipy_stats.t.ppf(0.5 + level / 2, n - 1) * spread / np.sqrt(n) < distance:
            return n
    return None


def _evidence(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows that count as evidence: completed cells with a finite metric."""
    completed = frame[frame["outcome"] == "completed"]
    return completed[np.isfinite(completed[metric].astype(float))]


def arm_summary(frame: pd.DataFrame, metric: str, order: list[str]) -> pd.DataFrame:
    """Per arm in ``order``: n, mean, sample std and bootstrap CI over completed seeds.

    Also the count of each outcome, and ``divergence_rate`` = diverged / (completed + diverged):
    failed, pruned, running and missing cells never trained to the end, so they say nothing about
    whether the recipe diverges. An arm with no rows gets n = 0 and NaNs.
    """
    evidence = _evidence(frame, metric)
    rows = []
    for arm in order:
        values = evidence.loc[evidence["arm"] == arm, metric].astype(float)
        counts = frame.loc[frame["arm"] == arm, "outcome"].value_counts()
        outcomes = {outcome: int(counts.get(outcome, 0)) for outcome in OUTCOMES}
        trained = outcomes["completed"] + outcomes["diverged"]
        ci_low, ci_high = bootstrap_ci(values.to_numpy())
        rows.append(
            {
                "arm": arm,
                "n": len(values),
                "mean": values.mean(),
                "std": values.std(ddof=1),
                "ci_low": ci_low,
                "ci_high": ci_high,
                **outcomes,
                "divergence_rate": outcomes["diverged"] / trained if trained else float("nan"),
            }
        )
    columns = ["arm", "n", "mean", "std", "ci_low", "ci_high", *OUTCOMES, "divergence_rate"]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Comparison:
    """Arm ``a`` against arm ``b`` over the seeds where both completed.

    ``diff`` is the mean paired difference (a - b) in metric units, ``ci_low``/``ci_high`` its
    Student-t CI (nan if n < 2), and ``p_better`` the bootstrap probability that a's mean beats
    b's over these seeds (nan if n == 0) -- a summary of these seeds, not a p-value.
    """

    a: str
    b: str
    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_better: float


def _by_seed(evidence: pd.DataFrame, metric: str, arm: str) -> pd.Series:
    """One arm's metric indexed by seed; a repeated seed would pair the wrong cells, so refuse it."""
    values = evidence.loc[evidence["arm"] == arm].set_index("seed")[metric].astype(float)
    if values.index.duplicated().any():
        raise ValueError(f"arm {arm!r} has more than one completed row for a seed")
    return values


def paired(
    frame: pd.DataFrame,
    metric: str,
    a: str,
    b: str,
    direction: str,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Comparison:
    """Compare ``a`` with ``b`` on the differences over their shared seeds.

    Pairing removes the seed-to-seed variation both arms share. ``p_better`` is the fraction of
    bootstrap resamples of the differences whose mean favours ``a`` (larger when maximizing,
    smaller when minimizing), exact ties counting half; with one shared seed it is 1, 0 or 0.5.
    Seeds are sorted first, so the result does not depend on the frame's row order.
    """
    sign = _sign(direction)
    evidence = _evidence(frame, metric)
    both = pd.concat(
        [_by_seed(evidence, metric, a), _by_seed(evidence, metric, b)], axis=1, join="inner"
    )
    diffs = (both.iloc[:, 0] - both.iloc[:, 1]).sort_index().to_numpy()
    n = len(diffs)
    if n == 0:
        nan = float("nan")
        return Comparison(a, b, 0, nan, nan, nan, nan)
    means = _resampled_means(diffs, resamples, seed)
    favour = sign * means
    p_better = float(np.mean((favour > 0) + 0.5 * (favour == 0)))
    return Comparison(a, b, n, float(diffs.mean()), *t_interval(diffs), p_better)


def comparisons(
    frame: pd.DataFrame, metric: str, order: list[str], direction: str, *, against: str = ""
) -> pd.DataFrame:
    """Every pair of arms (earlier in ``order`` as ``a``), one row per :class:`Comparison`;
    with ``against``, only that arm against each other one (a large grid's k^2 pairs)."""
    pairs = [(against, b) for b in order if b != against] if against else combinations(order, 2)
    rows = [astuple(paired(frame, metric, a, b, direction)) for a, b in pairs]
    return pd.DataFrame(rows, columns=[field.name for field in fields(Comparison)])


def ranking(frame: pd.DataFrame, metric: str, order: list[str], direction: str) -> pd.DataFrame:
    """Arms best first by mean, each marked by whether it is distinguishable from the best.

    Ranks are positions: arms without data go last, and equal means keep ``order`` order.
    ``distinguishable`` is "best" for the top arm; "yes" when the paired CI of (arm - best)
    excludes 0; "no" when it touches or straddles 0; "too few seeds" when fewer than two seeds
    are shared with the best (no interval to judge by); "no data" for arms with no completed
    seed. The mean shown is over all of the arm's
    completed seeds, the verdict over the seeds it shares with the best.
    """
    sign = _sign(direction)
    summary = arm_summary(frame, metric, order)
    ranked = (
        summary.assign(key=-sign * summary["mean"])
        .sort_values("key", kind="stable", na_position="last")
        .reset_index(drop=True)
    )
    best = ranked.loc[0, "arm"] if len(ranked) and ranked.loc[0, "n"] > 0 else None
    verdicts = []
    for arm, n in zip(ranked["arm"], ranked["n"], strict=True):
        if n == 0:
            verdicts.append("no data")
        elif arm == best:
            verdicts.append("best")
        else:
            versus = paired(frame, metric, arm, best, direction)
            straddles = not versus.ci_low > 0 and not versus.ci_high < 0
            verdicts.append("too few seeds" if versus.n < 2 else "no" if straddles else "yes")
    return pd.DataFrame(
        {
            "arm": ranked["arm"],
            "rank": np.arange(1, len(ranked) + 1),
            "mean": ranked["mean"],
            "distinguishable": verdicts,
        }
    )


def indistinguishable_from_best(rank_frame: pd.DataFrame) -> list[str]:
    """The arms a report cannot separate from the top one at ``LEVEL``, in rank order."""
    tied = rank_frame["distinguishable"].isin(["best", "no"])
    return rank_frame.loc[tied, "arm"].tolist()


def best_of_k(trials: pd.DataFrame, metric: str, order: list[str], direction: str) -> pd.DataFrame:
    """Best-of-k with the budget: per arm and k, the mean over seeds of the best of the first k.

    ``trials`` has one row per search trial (``arm, seed, trial, outcome, <metric>``). For each
    seed the best completed metric among its first k trials (in trial order) is NaN until one
    completes; a seed that ran fewer than k trials keeps its best of all it ran. k runs from 1 to
    the arm's largest per-seed trial count; ``n`` counts the seeds with a value at k, and
    ``low``/``high`` are the smallest and largest of those seeds' values (the band a tuneability
    figure draws: with a handful of seeds, their range says what happened where a bootstrap
    interval of so few values would be too narrow). Arms with no trials get no rows.
    """
    sign = _sign(direction)
    rows = []
    for arm in order:
        runs = trials[trials["arm"] == arm].sort_values(["seed", "trial"], kind="stable")
        values = runs[metric].astype(float)
        scores = values.where((runs["outcome"] == "completed") & np.isfinite(values))
        bests = {
            seed: sign * np.fmax.accumulate(sign * group.to_numpy())
            for seed, group in scores.groupby(runs["seed"], sort=True)
        }
        budget = max((len(best) for best in bests.values()), default=0)
        for k in range(1, budget + 1):
            at_k = pd.Series([best[min(k, len(best)) - 1] for best in bests.values()])
            rows.append(
                {
                    "arm": arm,
                    "k": k,
                    "mean": at_k.mean(),
                    "n": int(at_k.notna().sum()),
                    "low": at_k.min(),
                    "high": at_k.max(),
                }
            )
    return pd.DataFrame(rows, columns=["arm", "k", "mean", "n", "low", "high"])
