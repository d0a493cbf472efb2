"""The report statistics against values worked out by hand on tiny frames."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd
import pytest

from dlbench.report import stats
from dlbench.report.stats import (
    Comparison,
    arm_summary,
    best_of_k,
    bootstrap_ci,
    comparisons,
    indistinguishable_from_best,
    paired,
    ranking,
    t_interval,
)

NAN = float("nan")


def cells(rows: list[tuple[str, int, str, float]]) -> pd.DataFrame:
    """A cell frame from (arm, seed, outcome, objective) tuples."""
    return pd.DataFrame(rows, columns=["arm", "seed", "outcome", "objective"])


def completed(arm: str, values: list[float]) -> list[tuple[str, int, str, float]]:
    """Completed cells for seeds 0, 1, ... with the given objective values."""
    return [(arm, seed, "completed", value) for seed, value in enumerate(values)]


# bootstrap_ci


def test_bootstrap_ci_of_equal_values_is_that_value():
    assert bootstrap_ci([0.5, 0.5, 0.5]) == pytest.approx((0.5, 0.5))


def test_bootstrap_ci_of_two_points_spans_them():
    # Resample means are 0, 0.5, 1 with probability 1/4, 1/2, 1/4: both tails sit on the ends.
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)


def test_bootstrap_ci_contains_mean_and_is_reproducible():
    values = np.array([0.1, 0.4, 0.35, 0.8, 0.55])
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    # With few resamples the seed visibly matters, so it is really the seed that fixes the draw.
    assert bootstrap_ci(values, resamples=50, seed=3) != bootstrap_ci(values, resamples=50, seed=4)


def test_bootstrap_ci_narrows_with_level():
    values = [0.1, 0.4, 0.35, 0.8, 0.55]
    low95, high95 = bootstrap_ci(values)
    low50, high50 = bootstrap_ci(values, level=0.5)
    assert low95 < low50 < high50 < high95


@pytest.mark.parametrize("values", [[], [0.7], [0.7, NAN]])
def test_bootstrap_ci_needs_two_values(values):
    assert all(math.isnan(bound) for bound in bootstrap_ci(values))


# arm_summary


def test_arm_summary_counts_and_moments():
    frame = cells(
        [
            ("a", 0, "completed", 0.5),
            ("a", 1, "completed", 0.7),
            ("a", 2, "diverged", NAN),
            ("b", 0, "failed", NAN),
            ("b", 1, "missing", NAN),
            ("z", 0, "completed", 9.0),  # not in order: left out
        ]
    )
    summary = arm_summary(frame, "objective", ["b", "a", "c"])
    assert list(summary.columns) == [
        "arm",
        "n",
        "mean",
        "std",
        "ci_low",
        "ci_high",
        "completed",
        "diverged",
        "failed",
        "pruned",
        "running",
        "missing",
        "refused",
        "divergence_rate",
    ]
    assert summary["arm"].tolist() == ["b", "a", "c"]
    a, b, c = (summary.iloc[i] for i in (1, 0, 2))

    assert a["n"] == 2
    assert a["mean"] == pytest.approx(0.6)
    assert a["std"] == pytest.approx(0.141421356)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((0.5, 0.7))
    assert (a["completed"], a["diverged"], a["failed"]) == (2, 1, 0)
    assert a["divergence_rate"] == pytest.approx(1 / 3)

    assert b["n"] == 0
    assert (b["failed"], b["missing"], b["completed"], b["diverged"]) == (1, 1, 0, 0)
    for column in ("mean", "std", "ci_low", "ci_high", "divergence_rate"):
        assert math.isnan(b[column]) and math.isnan(c[column])
    assert c["n"] == 0 and sum(c[o] for o in ("completed", "failed", "missing")) == 0


def test_arm_summary_evidence_is_completed_and_finite():
    frame = cells(
        [
            ("a", 0, "completed", 0.4),
            ("a", 1, "completed", NAN),  # completed, but no number: counted, not averaged
            ("a", 2, "pruned", 0.9),  # an intermediate value of a pruned cell is no evidence
        ]
    )
    row = arm_summary(frame, "objective", ["a"]).iloc[0]
    assert (row["n"], row["completed"], row["pruned"]) == (1, 2, 1)
    assert row["mean"] == pytest.approx(0.4)
    assert math.isnan(row["std"]) and math.isnan(row["ci_low"])
    assert row["divergence_rate"] == 0.0


# paired / comparisons

PAIRED = cells(
    completed("a", [0.9, 0.8, 0.7])
    + completed("b", [0.8, 0.8, 0.5])
    + [
        ("a", 3, "completed", 0.1),  # b diverged on seed 3: not shared
        ("b", 3, "diverged", NAN),
        ("b", 4, "completed", 0.9),  # a never ran seed 4: not shared
    ]
)


def exact_p_better(diffs: list[float]) -> float:
    """P(resampled mean > 0), ties half, over all n**n equally likely resamples."""
    scores = [
        1.0 if sum(pick) > 1e-12 else 0.5 if abs(sum(pick)) <= 1e-12 else 0.0
        for pick in product(diffs, repeat=len(diffs))
    ]
    return sum(scores) / len(scores)


def test_paired_differences_over_shared_seeds():
    result = paired(PAIRED, "objective", "a", "b", "maximize")
    assert (result.a, result.b, result.n) == ("a", "b", 3)
    assert result.diff == pytest.approx(0.1)
    # Diffs [0.1, 0, 0.2]: mean 0.1, sd 0.1, t(0.975, 2 df) = 4.302653 -> 0.1 +- 0.248414.
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.1 - half, 0.1 + half))
    exact = exact_p_better([0.1, 0.0, 0.2])
    assert exact == pytest.approx(26.5 / 27)
    assert result.p_better == pytest.approx(exact, abs=0.01)


def test_paired_minimize_flips_p_better():
    maximize = paired(PAIRED, "objective", "a", "b", "maximize")
    minimize = paired(PAIRED, "objective", "a", "b", "minimize")
    assert minimize.p_better == pytest.approx(1 - maximize.p_better)
    assert (minimize.diff, minimize.ci_low, minimize.ci_high) == (
        maximize.diff,
        maximize.ci_low,
        maximize.ci_high,
    )


def test_paired_ignores_row_order():
    shuffled = PAIRED.sample(frac=1, random_state=7)
    assert paired(shuffled, "objective", "a", "b", "maximize") == paired(
        PAIRED, "objective", "a", "b", "maximize"
    )


@pytest.mark.parametrize(
    ("b_value", "p_better"), [(0.5, 1.0), (0.9, 0.0), (0.7, 0.5)], ids=["win", "loss", "tie"]
)
def test_paired_with_one_shared_seed(b_value, p_better):
    frame = cells([("a", 0, "completed", 0.7), ("b", 0, "completed", b_value)])
    result = paired(frame, "objective", "a", "b", "maximize")
    assert result.n == 1 and result.p_better == p_better
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high)


def test_paired_without_shared_seeds_is_nan():
    frame = cells([("a", 0, "completed", 0.7), ("b", 1, "completed", 0.5)])
    result = paired(frame, "objective", "a", "b", "maximize")
    assert result.n == 0
    assert all(math.isnan(x) for x in (result.diff, result.ci_low, result.p_better))


def test_paired_rejects_a_repeated_seed_and_unknown_direction():
    frame = cells(completed("a", [0.7]) + completed("a", [0.8]) + completed("b", [0.5]))
    with pytest.raises(ValueError, match="more than one"):
        paired(frame, "objective", "a", "b", "maximize")
    with pytest.raises(ValueError, match="direction"):
        paired(PAIRED, "objective", "a", "b", "max")


def test_comparisons_has_every_ordered_pair():
    frame = cells(completed("a", [1.0, 2.0]) + completed("b", [0.0, 0.0]) + completed("c", [3.0]))
    table = comparisons(frame, "objective", ["a", "b", "c"], "maximize")
    assert list(table.columns) == ["a", "b", "n", "diff", "ci_low", "ci_high", "p_better"]
    assert list(zip(table["a"], table["b"], strict=True)) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert table["n"].tolist() == [2, 1, 1]
    assert table["diff"].tolist() == pytest.approx([1.5, -2.0, -3.0])
    assert Comparison(**table.iloc[0].to_dict()) == paired(frame, "objective", "a", "b", "maximize")


# ranking


def test_t_interval_by_hand():
    # [1, 2, 3, 4]: mean 2.5, se 1.290994 / 2, t(0.975, 3 df) = 3.182446 -> 2.5 +- 2.054260.
    assert t_interval([1.0, 2.0, 3.0, 4.0, NAN]) == pytest.approx((0.445740, 4.554260))
    assert all(math.isnan(x) for x in t_interval([1.0]))


def test_two_seeds_pointing_the_same_way_are_not_enough():
    # Both paired differences favour a, so a bootstrap interval would be [0.01, 0.005] > 0;
    # the t interval with 1 degree of freedom straddles 0.
    frame = cells(completed("a", [0.90, 0.91]) + completed("b", [0.89, 0.905]))
    assert ranking(frame, "objective", ["a", "b"], "maximize")["distinguishable"].tolist() == [
        "best",
        "no",
    ]


def test_ranking_marks_who_is_distinguishable():
    frame = cells(
        completed("b", [0.50, 0.52, 0.51, 0.53])  # far below a on every seed
        + completed("c", [0.95, 0.85, 0.93, 0.87])  # mean 0.9, beats a on some seeds
        + completed("a", [0.90, 0.91, 0.92, 0.93])  # mean 0.915, the best
        + completed("d", [0.10])  # one seed: cannot tell
        + [("e", 0, "failed", NAN)]
    )
    table = ranking(frame, "objective", ["e", "d", "c", "b", "a"], "maximize")
    assert list(table.columns) == ["arm", "rank", "mean", "distinguishable"]
    assert table["arm"].tolist() == ["a", "c", "b", "d", "e"]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table["mean"].iloc[:4].tolist() == pytest.approx([0.915, 0.9, 0.515, 0.1])
    assert math.isnan(table["mean"].iloc[4])
    assert table["distinguishable"].tolist() == ["best", "no", "yes", "too few seeds", "no data"]
    assert indistinguishable_from_best(table) == ["a", "c"]


@pytest.mark.parametrize(
    ("direction", "arms"), [("minimize", ["low", "high"]), ("maximize", ["high", "low"])]
)
def test_ranking_follows_direction(direction, arms):
    frame = cells(completed("high", [2.0, 2.1, 2.2]) + completed("low", [1.0, 1.1, 1.2]))
    table = ranking(frame, "objective", ["high", "low"], direction)
    assert table["arm"].tolist() == arms
    assert table["distinguishable"].tolist() == ["best", "yes"]


@pytest.mark.parametrize("order", [["x", "y"], ["y", "x"]])
def test_ranking_keeps_order_on_ties(order):
    frame = cells(completed("x", [0.3, 0.6]) + completed("y", [0.3, 0.6]))
    table = ranking(frame, "objective", order, "maximize")
    assert table["arm"].tolist() == order
    # Every paired difference is 0, so the CI is (0, 0): touching 0 means "no".
    assert table["distinguishable"].tolist() == ["best", "no"]


def test_ranking_without_any_data():
    table = ranking(cells([("a", 0, "failed", NAN)]), "objective", ["a", "b"], "maximize")
    assert table["distinguishable"].tolist() == ["no data", "no data"]
    assert indistinguishable_from_best(table) == []


# best_of_k


def search_trials() -> pd.DataFrame:
    rows = [
        ("a", 0, 2, "completed", 0.5),
        ("a", 0, 0, "completed", 0.3),
        ("a", 0, 1, "pruned", 0.9),  # pruned midway: its value is no result
        ("a", 0, 3, "completed", 0.4),
        ("a", 1, 1, "completed", 0.6),
        ("a", 1, 0, "failed", NAN),  # seed 1 ran only two trials
        ("z", 0, 0, "completed", 5.0),  # not in order: left out
    ]
    return pd.DataFrame(rows, columns=["arm", "seed", "trial", "outcome", "objective"])


def test_best_of_k_maximize():
    # Seed 0 best so far: 0.3, 0.3, 0.5, 0.5. Seed 1: none, 0.6, then it keeps 0.6.
    table = best_of_k(search_trials(), "objective", ["a", "empty"], "maximize")
    assert list(table.columns) == ["arm", "k", "mean", "n", "low", "high"]
    assert table["arm"].tolist() == ["a"] * 4
    assert table["k"].tolist() == [1, 2, 3, 4]
    assert table["mean"].tolist() == pytest.approx([0.3, 0.45, 0.55, 0.55])
    assert table["n"].tolist() == [1, 2, 2, 2]
    # The band over seeds: the smaller and the larger of the two seeds' best so far.
    assert table["low"].tolist() == pytest.approx([0.3, 0.3, 0.5, 0.5])
    assert table["high"].tolist() == pytest.approx([0.3, 0.6, 0.6, 0.6])


def test_best_of_k_minimize():
    # Seed 0 best so far: 0.3 throughout. Seed 1: none, then 0.6.
    table = best_of_k(search_trials(), "objective", ["a"], "minimize")
    assert table["mean"].tolist() == pytest.approx([0.3, 0.45, 0.45, 0.45])
    assert table["n"].tolist() == [1, 2, 2, 2]


def test_seeds_needed_is_the_first_n_whose_t_interval_is_narrower_than_the_distance() -> None:
    # sd of [0, 2] = sqrt(2); n = 10: t(0.975, 9) * 1.4142 / sqrt(10) = 2.2622 * 0.4472
    # = 1.0116 > 1; n = 11: 2.2281 * 1.4142 / 3.3166 = 0.9501 < 1.
    assert stats.seeds_needed([0.0, 2.0], 1.0) == 11
    assert stats.seeds_needed([1.0, 1.0], 0.5) == 2  # no spread: two seeds settle it
    assert stats.seeds_needed([0.0, 2.0], 0.0) is None  # no effect is never told from none
    assert stats.seeds_needed([0.0, 2.0], 0.01) is None  # more than MOST_SEEDS
    assert stats.seeds_needed([1.0], 0.5) is None  # one seed: no spread to go by
