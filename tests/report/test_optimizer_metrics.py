"""Optimizers across problems: targets, time to target, performance profiles and AlgoPerf's
score, lr sensitivity, tuneability and per-step cost, and their tables, against hand-worked
values (the report section itself: test_optimizer_views.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dlbench.records import OPTIMIZER_STEP_SECONDS, STEP_SECONDS, STEPS
from dlbench.report import optimizer_metrics, optimizer_tables

INF, NAN = math.inf, math.nan


# -- targets ---------------------------------------------------------------------------------


def cells(rows: list[tuple[str, str, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["problem", "optimizer", "seed", "outcome", "objective"])


def test_target_is_what_the_best_optimizer_reaches_in_half_its_seeds_less_one_percent() -> None:
    frame = cells(
        [
            ("p", "sgd", 0, "completed", 0.80),
            ("p", "sgd", 1, "completed", 0.90),
            ("p", "sgd", 2, "completed", 0.70),  # median 0.80
            ("p", "adam", 0, "completed", 0.85),
            ("p", "adam", 1, "completed", 0.75),
            ("p", "adam", 2, "completed", 0.95),  # median 0.85: the best
            ("p", "adam", 3, "diverged", NAN),  # no result: not in the median
            ("p", "lion", 0, "pruned", 0.99),  # pruned: its value is no result
            ("q", "sgd", 0, "completed", 0.50),
            ("q", "sgd", 1, "completed", 0.60),  # two seeds: the better one, 0.60
        ]
    )
    target = optimizer_metrics.targets(frame, "maximize")
    assert target.to_dict() == pytest.approx({"p": 0.85 * 0.99, "q": 0.60 * 0.99})
    # As losses: sgd 1.6, 1.8, 1.4 (median 1.6) beats adam 1.7, 1.5, 1.9 (median 1.7); on q
    # the better of two seeds is now the smaller, 1.0.
    losses = frame.assign(objective=frame["objective"] * 2)
    target = optimizer_metrics.targets(losses, "minimize")
    assert target.to_dict() == pytest.approx({"p": 1.6 / 0.99, "q": 1.0 / 0.99})


def test_half_best_is_the_median_or_the_better_middle_value() -> None:
    assert optimizer_metrics.half_best(pd.Series([30.0, INF, 40.0]), "minimize") == 40.0  # median
    assert optimizer_metrics.half_best(pd.Series([30.0, INF]), "minimize") == 30.0  # one of two
    assert optimizer_metrics.half_best(pd.Series([INF, INF, 5.0]), "minimize") == INF
    assert optimizer_metrics.half_best(pd.Series([1.0, 2.0, 3.0, 4.0]), "maximize") == 3.0
    assert math.isnan(optimizer_metrics.half_best(pd.Series([NAN]), "minimize"))


# -- time to target --------------------------------------------------------------------------


def curve(cell: str, problem: str, optimizer: str, seed: int, **metrics: list[float]):
    names = {"acc": "val/acc", "steps": STEPS, "epoch_s": "time/epoch_s"}
    return [
        (cell, problem, optimizer, seed, names[short], epoch, value)
        for short, values in metrics.items()
        for epoch, value in enumerate(values)
    ]


def curves(*parts: list[tuple]) -> pd.DataFrame:
    rows = [row for part in parts for row in part]
    columns = ["cell", "problem", "optimizer", "seed", "metric", "epoch", "value"]
    return pd.DataFrame(rows, columns=columns)


def listed(rows: list[tuple], timed: bool = True) -> pd.DataFrame:
    """The frame's rows of the cells to time: (cell, problem, optimizer, seed, time/step_s),
    without the step_s column for a study that did not log it."""
    frame = pd.DataFrame(rows, columns=["cell", "problem", "optimizer", "seed", STEP_SECONDS])
    return frame if timed else frame.drop(columns=STEP_SECONDS)


# time/epoch_s, a stacked cell's share of its stack's epoch, is logged but not used: its sum
# to the target (1 + 2 + 1.5 = 4.5 s) is not the seconds to target.
FOUR_EPOCHS = curve(
    "c0", "p", "sgd", 0,
    acc=[0.5, 0.7, 0.85, 0.9], steps=[100, 200, 320, 400], epoch_s=[1.0, 2.0, 1.5, 1.5],
)  # fmt: skip


def test_time_to_target_is_the_first_epoch_at_the_target_and_steps_times_step_s() -> None:
    slow = curve("c1", "p", "sgd", 1, acc=[0.5, 0.6, 0.7, 0.75], steps=[100, 200, 300, 400])
    # The same curve as c0 on a costlier optimizer: same steps, 3 ms a step.
    adam = curve("c2", "p", "adam", 0, acc=[0.5, 0.7, 0.85, 0.9], steps=[100, 200, 320, 400])
    cells = listed([("c0", "p", "sgd", 0, 0.002), ("c1", "p", "sgd", 1, 0.002),
                    ("c2", "p", "adam", 0, 0.003)])  # fmt: skip
    times = optimizer_metrics.time_to_target(
        curves(FOUR_EPOCHS, slow, adam), cells, pd.Series({"p": 0.8}), "maximize", "val/acc"
    )
    first = times.iloc[0]
    # 0.85 at epoch 2 is the first value >= 0.8: three epochs, 320 steps, 320 x 2 ms = 0.64 s.
    assert (first["epochs"], first["steps"]) == (3.0, 320.0)
    assert first["seconds"] == pytest.approx(0.64)
    assert bool(first["reached"]) and first["cell"] == "c0"
    never = times.iloc[1]
    assert (never["epochs"], never["steps"], never["seconds"]) == (INF, INF, INF)
    assert not never["reached"]
    costlier = times.iloc[2]  # 320 x 3 ms
    assert (costlier["optimizer"], costlier["steps"]) == ("adam", 320.0)
    assert costlier["seconds"] == pytest.approx(0.96)


def test_time_to_target_minimizing_and_without_the_newer_metrics() -> None:
    # A study before train/steps and time/step_s: epochs only; the rest unknown, not inf.
    loss = curve("c0", "p", "sgd", 0, acc=[2.0, 1.0, 0.5, 0.4], epoch_s=[1.0, 1.0, 1.0, 1.0])
    cells = listed([("c0", "p", "sgd", 0, NAN), ("gone", "p", "sgd", 1, NAN)])
    for old in (cells, listed(cells.values.tolist(), timed=False)):  # NaN, or no column
        times = optimizer_metrics.time_to_target(
            curves(loss), old, pd.Series({"p": 1.0}), "minimize", "val/acc"
        )
        reached, gone = times.iloc[0], times.iloc[1]
        assert reached["epochs"] == 2.0 and bool(reached["reached"])
        assert math.isnan(reached["steps"]) and math.isnan(reached["seconds"])
        assert gone["cell"] == "gone" and gone["epochs"] == INF  # no curve: never reached
        assert math.isnan(gone["steps"]) and math.isnan(gone["seconds"])


def test_time_to_target_of_a_cell_without_its_step_s_in_a_timed_study() -> None:
    # c1 reached the target but logged no time/step_s (it failed after): unknown seconds;
    # the cell with no curve still never reached it: inf, as its steps.
    reaches = curve("c1", "p", "sgd", 1, acc=[0.5, 0.9], steps=[10, 20])
    cells = listed([("c0", "p", "sgd", 0, 0.01), ("c1", "p", "sgd", 1, NAN),
                    ("gone", "p", "sgd", 2, NAN)])  # fmt: skip
    times = optimizer_metrics.time_to_target(
        curves(FOUR_EPOCHS, reaches), cells, pd.Series({"p": 0.8}), "maximize", "val/acc"
    )
    assert times["seconds"].iloc[0] == pytest.approx(3.2)  # 320 steps x 10 ms
    assert times["steps"].iloc[1] == 20.0 and math.isnan(times["seconds"].iloc[1])
    assert (times["steps"].iloc[2], times["seconds"].iloc[2]) == (INF, INF)


def test_time_summary_takes_what_half_the_seeds_reached_and_counts_who_did() -> None:
    rows = [
        ("p", "sgd", 30.0, 3.0, True),
        ("p", "sgd", INF, INF, False),
        ("p", "sgd", 40.0, 5.0, True),  # median of 30, 40 and never: 40 (the mean: inf)
        ("p", "adam", 10.0, 1.0, True),
        ("p", "adam", INF, INF, False),
        ("p", "adam", INF, INF, False),  # one of three: not half
        ("q", "sgd", 20.0, 2.0, True),
        ("q", "sgd", INF, INF, False),  # one of two is half: 20 (the median: inf)
    ]
    times = pd.DataFrame(rows, columns=["problem", "optimizer", "steps", "seconds", "reached"])
    summary = optimizer_metrics.time_summary(times.assign(epochs=times["steps"] / 10))
    sgd, adam, q = summary.iloc[0], summary.iloc[1], summary.iloc[2]
    assert (sgd["steps"], sgd["seconds"], sgd["epochs"]) == (40.0, 5.0, 4.0)
    assert (sgd["reached"], sgd["cells"]) == (2, 3)
    assert adam["steps"] == INF and (adam["reached"], adam["cells"]) == (1, 3)
    assert (q["problem"], q["steps"], q["seconds"], q["reached"], q["cells"]) == ("q", 20, 2, 1, 2)


# -- performance profiles and the integrated score --------------------------------------------

# Three problems, three optimizers. Ratios to the fastest per problem:
#   p1: a 10 -> 1, b 20 -> 2, c 40 -> 4
#   p2: a 30 -> 2, b 15 -> 1, c never -> inf
#   p3: a 5 -> 1,  b 25 -> 5, c 10 -> 2
TIMES = pd.DataFrame(
    {"a": [10.0, 30.0, 5.0], "b": [20.0, 15.0, 25.0], "c": [40.0, INF, 10.0]},
    index=pd.Index(["p1", "p2", "p3"], name="problem"),
)


def test_ratios_divide_by_the_fastest_per_problem() -> None:
    r = optimizer_metrics.ratios(TIMES)
    assert r.to_numpy().tolist() == [[1, 2, 4], [2, 1, INF], [1, 5, 2]]
    nobody = pd.DataFrame({"a": [INF], "b": [INF]})
    assert optimizer_metrics.ratios(nobody).to_numpy().tolist() == [[INF, INF]]


def test_performance_profile_is_the_share_of_problems_within_tau() -> None:
    rho = optimizer_metrics.performance_profile(TIMES, [1.0, 1.5, 2.0, 4.0, 5.0])
    assert rho.loc["a"].tolist() == pytest.approx([2 / 3, 2 / 3, 1, 1, 1])
    assert rho.loc["b"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    assert rho.loc["c"].tolist() == pytest.approx([0, 0, 1 / 3, 2 / 3, 2 / 3])  # inf never counts
    assert optimizer_metrics.profile_taus(TIMES) == [1.0, 2.0, 4.0]  # 5 lies beyond r_max = 4


def test_integrated_score_is_the_normalized_area_under_rho_from_1_to_4() -> None:
    # A ratio r <= 4 on one of n problems adds (4 - r) / 3 / n; r = 4 and beyond add nothing.
    # a: (3 + 2 + 3) / 9; b: (2 + 3 + 0) / 9; c: (0 + 0 + 2) / 9.
    score = optimizer_metrics.integrated_score(TIMES)
    assert score.to_dict() == pytest.approx({"a": 8 / 9, "b": 5 / 9, "c": 2 / 9})
    # AlgoPerf integrates rho on a fine linear grid of tau in [1, 4] with the trapezoid rule.
    taus = np.linspace(1, 4, 30_001)
    rho = optimizer_metrics.performance_profile(TIMES, taus).to_numpy()
    trapezoid = ((rho[:, 1:] + rho[:, :-1]) / 2 * np.diff(taus)).sum(axis=1) / 3
    assert trapezoid == pytest.approx(score.to_numpy(), abs=1e-4)
    assert optimizer_metrics.integrated_score(TIMES, r_max=2.0).to_dict() == pytest.approx(
        {"a": 2 / 3, "b": 1 / 3, "c": 0.0}  # a: (1 + 0 + 1) / 3; b: (0 + 1 + 0) / 3
    )


def test_a_problem_an_optimizer_has_no_cell_on_earns_it_nothing() -> None:
    # c refused by p3 (no cell, NaN): as if it never reached the target there.
    refused = TIMES.assign(c=[40.0, INF, NAN])
    assert optimizer_metrics.ratios(refused)["c"].tolist() == [4.0, INF, INF]
    assert optimizer_metrics.integrated_score(refused)["c"] == 0.0
    rho = optimizer_metrics.performance_profile(refused, [1.0, 4.0])
    assert rho.loc["c"].tolist() == [0.0, 1 / 3] and rho.loc["a"].tolist() == [2 / 3, 1.0]


# -- learning-rate sensitivity and tuneability ------------------------------------------------


def trials() -> pd.DataFrame:
    rows = [
        ("p sgd", "p", "sgd", 0, 0, "completed", 0.5, 0.1),
        ("p sgd", "p", "sgd", 0, 1, "completed", 0.7, 0.3),
        ("p sgd", "p", "sgd", 0, 2, "completed", 0.6, 1.0),
        ("p sgd", "p", "sgd", 1, 0, "diverged", NAN, 3.0),
        ("p sgd", "p", "sgd", 1, 1, "completed", 0.4, 0.01),
        ("p sgd", "p", "sgd", 1, 2, "completed", 0.8, 0.2),
        ("q adam", "q", "adam", 0, 0, "completed", 0.9, 0.001),
    ]
    columns = ["arm", "problem", "optimizer", "seed", "trial", "outcome", "objective", "lr"]
    return pd.DataFrame(rows, columns=columns)


def test_lr_sensitivity_keeps_every_completed_trial() -> None:
    points = optimizer_metrics.lr_sensitivity(trials())
    assert len(points) == 6 and 3.0 not in points["lr"].tolist()  # the diverged trial
    assert list(points.columns) == ["problem", "optimizer", "seed", "trial", "lr", "objective"]


def test_tuneability_is_best_so_far_mean_and_min_max_band_over_seeds() -> None:
    # p sgd, best so far: seed 0: 0.5, 0.7, 0.7; seed 1: none, 0.4, 0.8.
    best = optimizer_metrics.tuneability(trials(), "maximize")
    sgd = best[best["optimizer"] == "sgd"]
    assert sgd["k"].tolist() == [1, 2, 3]
    assert sgd["mean"].tolist() == pytest.approx([0.5, 0.55, 0.75])
    assert sgd["low"].tolist() == pytest.approx([0.5, 0.4, 0.7])
    assert sgd["high"].tolist() == pytest.approx([0.5, 0.7, 0.8])
    assert sgd["n"].tolist() == [1, 2, 2]
    assert best[best["optimizer"] == "adam"][["problem", "k", "mean"]].values.tolist() == [
        ["q", 1, 0.9]
    ]
    # Minimizing, seed 0: 0.5, 0.5, 0.5; seed 1: none, 0.4, 0.4.
    low = optimizer_metrics.tuneability(trials(), "minimize")
    assert low[low["optimizer"] == "sgd"]["mean"].tolist() == pytest.approx([0.5, 0.45, 0.45])


# -- per-step optimizer cost ------------------------------------------------------------------


def cost_frame() -> pd.DataFrame:
    """Runs (search trials): each one's time/step_s and time/optimizer_step_s (seconds)."""
    rows = [
        # sgd on p: updates of 1, 2 and 6 ms, median 2 (the mean would be 3); whole steps of
        # 10, 12 and 20 ms, median 12. A cell that never ran has neither: not counted.
        ("s0", "p", "sgd", 0, "completed", 0.010, 0.001),
        ("s1", "p", "sgd", 1, "diverged", 0.012, 0.002),
        ("s2", "p", "sgd", 2, "completed", 0.020, 0.006),
        ("s3", "p", "sgd", 3, "missing", NAN, NAN),
        # adam on p: 3 ms of a 14 ms step, 1 ms beyond sgd.
        ("a0", "p", "adam", 0, "completed", 0.014, 0.003),
        # adam on q, where there is no sgd: no difference; its whole step was not logged.
        ("a1", "q", "adam", 0, "completed", NAN, 0.004),
    ]
    columns = ["cell", "problem", "optimizer", "seed", "outcome", STEP_SECONDS,
               OPTIMIZER_STEP_SECONDS]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def test_step_cost_is_the_median_update_and_step_and_the_difference_from_sgd() -> None:
    cost = optimizer_metrics.step_cost(cost_frame(), baseline="sgd")
    assert list(cost.columns) == [
        "problem", "optimizer", "runs", "step_s", "optimizer_step_s", "beyond_sgd",
    ]  # fmt: skip
    rows = cost.set_index(["problem", "optimizer"])
    assert rows.loc[("p", "sgd"), "optimizer_step_s"] == pytest.approx(0.002)
    assert rows.loc[("p", "sgd"), "step_s"] == pytest.approx(0.012)
    assert rows.loc[("p", "sgd"), "runs"] == 3
    assert rows.loc[("p", "adam"), "optimizer_step_s"] == pytest.approx(0.003)
    assert rows.loc[("p", "adam"), "step_s"] == pytest.approx(0.014)
    assert rows.loc[("p", "adam"), "beyond_sgd"] == pytest.approx(0.001)
    assert rows.loc[("p", "sgd"), "beyond_sgd"] == 0
    assert math.isnan(rows.loc[("q", "adam"), "beyond_sgd"])
    assert math.isnan(rows.loc[("q", "adam"), "step_s"])
    assert "beyond_sgd" not in optimizer_metrics.step_cost(cost_frame(), baseline=None)


def test_a_study_before_the_step_timing_has_no_step_cost() -> None:
    frame = cost_frame()
    assert optimizer_metrics.step_cost(frame.drop(columns=OPTIMIZER_STEP_SECONDS), "sgd").empty
    assert optimizer_metrics.step_cost(frame.assign(**{OPTIMIZER_STEP_SECONDS: NAN}), "sgd").empty


# -- tables -----------------------------------------------------------------------------------


def test_time_to_target_table_marks_the_fastest_and_the_unreached() -> None:
    summary = pd.DataFrame(
        [("p", "sgd", 3.0, 320.0, 0.64, 2, 3), ("p", "adam", INF, INF, INF, 1, 3)],
        columns=["problem", "optimizer", "epochs", "steps", "seconds", "reached", "cells"],
    )
    table = optimizer_tables.time_to_target(summary, pd.Series({"p": 0.891}), "val/acc", "maximize")
    assert table.shown.iloc[0].tolist() == ["p", "sgd", "0.8910", "3", "320", "0.64", "2/3"]
    assert table.shown.iloc[1].tolist()[3:] == ["not reached"] * 3 + ["1/3"]
    assert table.bold == {(0, "steps"), (0, "seconds")}
    assert "those steps times the cell's own step cost (time/step_s" in table.caption
    assert "the median of 10 steps after 3 warm-up steps" in table.caption
    assert "no validation or data loading" in table.caption
    old = optimizer_tables.time_to_target(
        summary.assign(steps=NAN, seconds=NAN), pd.Series({"p": 0.891}), "val/acc", "maximize"
    )
    assert "steps" not in old.shown and "seconds" not in old.shown  # a study before them
    assert "time/step_s" not in old.caption


def test_scores_table_ranks_by_the_first_measure() -> None:
    scored = pd.DataFrame({"seconds": [0.5, 0.9], "steps": [0.8, 0.7]}, index=["sgd", "adam"])
    table = optimizer_tables.scores(scored, pd.Series({"sgd": 3, "adam": 2}), 3)
    assert table.shown.values.tolist() == [
        ["adam", "1", "0.900", "0.700", "2/3"],
        ["sgd", "2", "0.500", "0.800", "3/3"],
    ]
    assert table.bold == {(0, "score (seconds)"), (1, "score (steps)")}
    assert "over tau from 1 to 4, divided by 4 - 1" in table.caption


def test_step_cost_table_is_in_milliseconds_and_says_how_it_was_timed() -> None:
    table = optimizer_tables.step_cost(optimizer_metrics.step_cost(cost_frame(), "sgd"), "sgd")
    assert list(table.shown.columns) == [
        "problem", "optimizer", "runs", "step ms", "optimizer ms", "optimizer ms beyond sgd",
    ]  # fmt: skip
    assert table.shown["step ms"].tolist() == ["12", "14", "-"]
    assert table.shown["optimizer ms"].tolist() == ["2", "3", "4"]
    assert table.shown["optimizer ms beyond sgd"].tolist() == ["+0", "+1", "-"]
    assert "timed alone on the cell's first training batch" in table.caption
    assert "the median of 10 steps after 3 warm-up steps" in table.caption
    assert "does not depend on how many cells it was stacked with" in table.caption
    assert "milliseconds" in table.caption and "time/optimizer_step_s" in table.caption
