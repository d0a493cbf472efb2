"""Verdicts: does a claim study's evidence support its claim?

Each expectation (``harness.claim``) gets one of three verdicts, from 95% intervals over
seeds, never from point estimates alone:

* ``better``: the paired difference (a - b, in the objective's good direction) has its
  Student-t CI above 0 -> supported; below 0 -> contradicted; straddling 0 -> inconclusive.
* ``equivalent``: the CI of a - b lies inside (-within, +within) -> supported; wholly
  outside it -> contradicted; otherwise inconclusive (the usual two-one-sided logic).
* ``diverges``: most trained cells (completed + diverged) of a diverged -> supported;
  none did -> contradicted; a minority -> inconclusive.
* ``above`` / ``below``: the t CI of a's mean lies beyond the threshold -> supported; wholly
  on the wrong side -> contradicted; straddling it -> inconclusive.

Fewer than two seeds (or pairs) is always inconclusive. A claim is supported when every
expectation is, contradicted when any is, and inconclusive otherwise.

Frames have columns ``arm``, ``seed``, ``outcome`` and ``objective``; ``plan`` maps each
arm to its labels per axis (``StudyRuns.plan``), which is how selectors find arms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlbench.harness.claim import Claim, Expectation, Selector
from dlbench.records import OBJECTIVE_METRIC
from dlbench.report import stats

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    verdict: str
    evidence: str  # the numbers behind it, in words


def arms_of(selector: Selector, plan: dict[str, dict[str, str]]) -> list[str]:
    """The planned arms a selector stands for, in study order."""
    return [arm for arm, labels in plan.items() if all(labels[a] == v for a, v in selector)]


def _side(low: float, high: float, bound_low: float, bound_high: float) -> str:
    """Supported if [low, high] lies in (bound_low, bound_high), contradicted if wholly outside."""
    if bound_low < low and high < bound_high:
        return SUPPORTED
    if high < bound_low or low > bound_high:
        return CONTRADICTED
    return INCONCLUSIVE


def _paired(
    exp: Expectation, frame: pd.DataFrame, plan: dict[str, dict[str, str]], direction: str
) -> stats.Comparison:
    """a against b over cells that share the seed and every axis the selectors leave free."""
    named = {axis for axis, _ in exp.a}
    rows = []
    for side, selector in (("a", exp.a), ("b", exp.b)):
        for arm in arms_of(selector, plan):
            free = " ".join(v for axis, v in plan[arm].items() if axis not in named)
            cells = frame[frame["arm"] == arm]
            rows.append(cells.assign(arm=side, seed=free + " seed " + cells["seed"].astype(str)))
    both = pd.concat(rows) if rows else frame.iloc[:0]
    return stats.paired(both, OBJECTIVE_METRIC, "a", "b", direction)


def judge(
    exp: Expectation, frame: pd.DataFrame, plan: dict[str, dict[str, str]], direction: str
) -> Verdict:
    """The verdict on one expectation from the study's result frame."""
    if exp.kind in ("better", "equivalent"):
        c = _paired(exp, frame, plan, direction)
        if c.n < 2:
            return Verdict(exp, INCONCLUSIVE, f"{c.n} completed pair(s): too few to judge")
        evidence = (
            f"a - b = {c.diff:+.4f} (95% CI {c.ci_low:+.4f} to {c.ci_high:+.4f}; {c.n} pairs)"
        )
        if exp.kind == "equivalent":
            assert exp.value is not None
            return Verdict(exp, _side(c.ci_low, c.ci_high, -exp.value, exp.value), evidence)
        sign = 1 if direction == "maximize" else -1
        low, high = sorted((sign * c.ci_low, sign * c.ci_high))
        return Verdict(exp, _side(low, high, 0.0, np.inf), evidence)
    cells = frame[frame["arm"].isin(arms_of(exp.a, plan))]
    if exp.kind == "diverges":
        diverged = int((cells["outcome"] == "diverged").sum())
        trained = diverged + int((cells["outcome"] == "completed").sum())
        evidence = f"diverged in {diverged} of {trained} trained cells"
        if trained < 2:
            return Verdict(exp, INCONCLUSIVE, evidence + ": too few to judge")
        verdict = (
            SUPPORTED if diverged > trained / 2 else CONTRADICTED if not diverged else INCONCLUSIVE
        )
        return Verdict(exp, verdict, evidence)
    completed = cells.loc[cells["outcome"] == "completed", OBJECTIVE_METRIC].astype(float)
    low, high = stats.t_interval(completed.to_numpy())
    finite = completed[np.isfinite(completed)]
    if len(finite) < 2:
        return Verdict(exp, INCONCLUSIVE, f"{len(finite)} completed cell(s): too few to judge")
    evidence = f"mean {finite.mean():.4f} (95% CI {low:.4f} to {high:.4f}; n={len(finite)})"
    assert exp.value is not None
    bounds = (exp.value, np.inf) if exp.kind == "above" else (-np.inf, exp.value)
    return Verdict(exp, _side(low, high, *bounds), evidence)


def overall(verdicts: list[Verdict]) -> str:
    """Supported if every expectation is, contradicted if any is, else inconclusive."""
    kinds = {v.verdict for v in verdicts}
    if CONTRADICTED in kinds:
        return CONTRADICTED
    return SUPPORTED if kinds == {SUPPORTED} else INCONCLUSIVE


def judge_claim(
    claim: Claim, frame: pd.DataFrame, plan: dict[str, dict[str, str]], direction: str
) -> tuple[str, list[Verdict]]:
    """The claim's overall verdict and one verdict per expectation."""
    verdicts = [judge(exp, frame, plan, direction) for exp in claim.expect]
    return overall(verdicts), verdicts
