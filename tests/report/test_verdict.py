"""Verdict logic on synthetic result frames: supported, contradicted and inconclusive each reached."""

from __future__ import annotations

import pandas as pd
import pytest

from dlbench.claim import Claim, Expectation
from dlbench.report.verdict import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    arms_of,
    judge,
    judge_claim,
    overall,
)

PLAN = {  # two axes, as StudyRuns.plan gives them
    f"{init} {act}": {"init": init, "act": act}
    for init in ("zero", "he")
    for act in ("relu", "tanh")
}
ZERO, HE = (("init", "zero"),), (("init", "he"),)


def frame(
    values: dict[str, list[float]], outcomes: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """Cells for seeds 0, 1, ... per arm; outcome completed unless ``outcomes`` says otherwise."""
    rows = []
    for arm, per_seed in values.items():
        states = (outcomes or {}).get(arm, ["completed"] * len(per_seed))
        for seed, (value, state) in enumerate(zip(per_seed, states, strict=True)):
            rows.append((arm, seed, state, value if state == "completed" else float("nan")))
    return pd.DataFrame(rows, columns=["arm", "seed", "outcome", "objective"])


def test_selectors_find_arms_in_study_order() -> None:
    assert arms_of(HE, PLAN) == ["he relu", "he tanh"]
    assert arms_of((("init", "he"), ("act", "tanh")), PLAN) == ["he tanh"]


@pytest.mark.parametrize(
    ("he", "direction", "expected"),
    [
        ([0.9, 0.92, 0.91], "maximize", SUPPORTED),  # he clearly above zero's 0.1
        ([0.05, 0.06, 0.04], "maximize", CONTRADICTED),  # clearly below
        ([0.3, -0.1, 0.2], "maximize", INCONCLUSIVE),  # differences straddle 0
        ([0.05, 0.06, 0.04], "minimize", SUPPORTED),  # lower is better for a loss
    ],
)
def test_better_pairs_over_seed_and_the_free_axis(
    he: list[float], direction: str, expected: str
) -> None:
    results = frame({"zero relu": [0.1] * 3, "zero tanh": [0.1] * 3, "he relu": he, "he tanh": he})
    verdict = judge(Expectation("better", HE, ZERO), results, PLAN, direction)
    assert verdict.verdict == expected
    # The two activations of a seed are averaged: seeds, not cells, are the evidence.
    assert "3 seeds, each the mean over 2 settings of the free axes" in verdict.evidence


def test_free_axes_are_averaged_within_a_seed_before_the_interval() -> None:
    # Per seed, relu and tanh differences (0.1, 0.3), (0.2, 0.4), (0.3, 0.5): means 0.2, 0.3, 0.4.
    results = frame(
        {
            "zero relu": [0.0] * 3,
            "zero tanh": [0.0] * 3,
            "he relu": [0.1, 0.2, 0.3],
            "he tanh": [0.3, 0.4, 0.5],
        }
    )
    verdict = judge(Expectation("better", HE, ZERO), results, PLAN, "maximize")
    # t interval of (0.2, 0.3, 0.4): 0.3 +- 4.3027 * 0.1 / sqrt(3) = 0.3 +- 0.2484
    assert "+0.3000 (95% CI +0.0516 to +0.5484; 3 seeds" in verdict.evidence
    assert verdict.verdict == SUPPORTED


def test_better_with_one_pair_is_inconclusive_however_large_the_gap() -> None:
    results = frame({"zero relu": [0.1], "he relu": [0.99]})
    verdict = judge(Expectation("better", HE, ZERO), results, PLAN, "maximize")
    assert verdict.verdict == INCONCLUSIVE
    assert verdict.evidence == "1 seed(s) with results: too few to judge"


def test_better_uses_a_t_interval_of_the_paired_differences() -> None:
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t(0.975, 2) = 4.3027 -> 0.2 +- 0.2484
    results = frame({"zero relu": [0.0, 0.0, 0.0], "he relu": [0.1, 0.2, 0.3]})
    exp = Expectation(
        "better", (("init", "he"), ("act", "relu")), (("init", "zero"), ("act", "relu"))
    )
    verdict = judge(exp, results, PLAN, "maximize")
    assert verdict.verdict == INCONCLUSIVE
    # Inconclusive: what the study could detect. At 4 seeds t(0.975, 3) * 0.1 / 2 = 0.159
    # < 0.2, so an effect of the observed size would be told from none at 4 seeds.
    assert verdict.evidence == (
        "a - b = +0.2000 (95% CI -0.0484 to +0.4484; 3 seeds); detectable at 3 seeds: an "
        "effect beyond 0.2484 (the CI's half-width); an effect of the observed size "
        "(0.2000) would need about 4 seeds"
    )


def test_diverged_cells_count_as_the_worst_result_of_the_study() -> None:
    # zero relu diverges in seeds 0 and 1: scored as the worst completed result (0.5), it loses.
    results = frame(
        {"zero relu": [0.0, 0.0, 0.90], "he relu": [0.91, 0.92, 0.93], "he tanh": [0.5, 0.6, 0.7]},
        {"zero relu": ["diverged", "diverged", "completed"]},
    )
    exp = Expectation(
        "better", (("init", "he"), ("act", "relu")), (("init", "zero"), ("act", "relu"))
    )
    verdict = judge(exp, results, PLAN, "maximize")
    assert verdict.verdict == INCONCLUSIVE  # +0.41, +0.42, +0.03: wide, but no longer "too few"
    assert "3 seeds" in verdict.evidence
    assert "2 diverged cells scored as the study's worst result 0.5000" in verdict.evidence
    threshold = judge(
        Expectation("below", (("init", "zero"), ("act", "relu")), (), 0.95),
        results,
        PLAN,
        "maximize",
    )
    assert (
        threshold.verdict == INCONCLUSIVE and "mean +0.6333 (95% CI +0.0596" in threshold.evidence
    )


def test_a_selector_on_an_axis_the_plan_lacks_finds_no_arms() -> None:
    # --set lr=0.1 removes the lr axis a claim names: no data, an inconclusive verdict, no crash.
    assert arms_of((("lr", "10"),), PLAN) == []
    verdict = judge(
        Expectation("diverges", (("lr", "10"),)), frame({"he relu": [0.9] * 3}), PLAN, "maximize"
    )
    assert verdict.verdict == INCONCLUSIVE and "too few" in verdict.evidence


@pytest.mark.parametrize(
    ("he", "expected"),
    [
        ([0.50, 0.51, 0.49], SUPPORTED),  # CI of the difference well inside +-0.05
        ([0.80, 0.82, 0.81], CONTRADICTED),  # difference ~0.3, CI wholly outside
        ([0.50, 0.60, 0.40], INCONCLUSIVE),  # CI wider than the margin
    ],
)
def test_equivalent_needs_the_whole_interval_inside_the_margin(
    he: list[float], expected: str
) -> None:
    results = frame({"zero relu": [0.5, 0.5, 0.5], "he relu": he})
    exp = Expectation(
        "equivalent", (("init", "he"), ("act", "relu")), (("init", "zero"), ("act", "relu")), 0.05
    )
    assert judge(exp, results, PLAN, "maximize").verdict == expected


@pytest.mark.parametrize(
    ("states", "expected", "evidence"),
    [
        (["diverged", "diverged", "completed"], SUPPORTED, "diverged in 2 of 3"),
        (["completed", "completed", "completed"], CONTRADICTED, "diverged in 0 of 3"),
        (["diverged", "completed", "completed"], INCONCLUSIVE, "diverged in 1 of 3"),
        (
            ["diverged", "failed", "missing"],
            INCONCLUSIVE,
            "too few",
        ),  # failed/missing never trained
    ],
)
def test_diverges_counts_trained_cells_only(
    states: list[str], expected: str, evidence: str
) -> None:
    results = frame({"he relu": [0.9, 0.9, 0.9]}, {"he relu": states})
    verdict = judge(
        Expectation("diverges", (("init", "he"), ("act", "relu"))), results, PLAN, "maximize"
    )
    assert verdict.verdict == expected and evidence in verdict.evidence


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        ("below", [0.1, 0.1, 0.1], SUPPORTED),  # zero-width interval at chance
        ("below", [0.5, 0.52, 0.51], CONTRADICTED),
        ("below", [0.1, 0.3, 0.2], INCONCLUSIVE),  # CI 0.2 +- 0.25 straddles 0.2
        ("above", [0.5, 0.52, 0.51], SUPPORTED),
        ("above", [0.1, 0.1, 0.1], CONTRADICTED),
    ],
)
def test_thresholds_judge_the_interval_of_the_mean(
    kind: str, values: list[float], expected: str
) -> None:
    results = frame({"zero relu": values, "zero tanh": [0.9, 0.9, 0.9]})
    exp = Expectation(kind, (("init", "zero"), ("act", "relu")), (), 0.2)
    assert judge(exp, results, PLAN, "maximize").verdict == expected


def test_overall_is_supported_only_if_every_expectation_is() -> None:
    assert overall([]) == INCONCLUSIVE
    made = lambda *vs: [type("V", (), {"verdict": v})() for v in vs]  # noqa: E731
    assert overall(made(SUPPORTED, SUPPORTED)) == SUPPORTED
    assert overall(made(SUPPORTED, INCONCLUSIVE)) == INCONCLUSIVE
    assert overall(made(SUPPORTED, INCONCLUSIVE, CONTRADICTED)) == CONTRADICTED


def test_judge_claim_reaches_each_overall_verdict() -> None:
    claim = Claim(
        number=5,
        text="Zero init does not learn.",
        source="notes",
        expect=(Expectation("better", HE, ZERO), Expectation("below", ZERO, (), 0.2)),
    )
    learns = {
        "zero relu": [0.1] * 3,
        "zero tanh": [0.1] * 3,
        "he relu": [0.9] * 3,
        "he tanh": [0.8, 0.9, 0.85],
    }
    assert judge_claim(claim, frame(learns), PLAN, "maximize")[0] == SUPPORTED
    zero_learns = {**learns, "zero relu": [0.95] * 3, "zero tanh": [0.95] * 3}
    assert judge_claim(claim, frame(zero_learns), PLAN, "maximize")[0] == CONTRADICTED
    noisy = {
        **learns,
        "zero relu": [0.1, 0.35, 0.2],
        "he relu": [0.1, 0.9, 0.2],
        "he tanh": [0.1, 0.9, 0.2],
    }
    verdict, parts = judge_claim(claim, frame(noisy), PLAN, "maximize")
    assert verdict == INCONCLUSIVE and [p.verdict for p in parts] == [INCONCLUSIVE, INCONCLUSIVE]
