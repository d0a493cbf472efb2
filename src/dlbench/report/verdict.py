"""Verdicts: does a claim study's evidence support its claim?

Seeds are the unit of evidence. For each expectation (``dlbench.claim``) the cells an
arm selector stands for are reduced to one value per seed (the mean over the axes the
selector leaves free, so those cells are not counted as independent), and:

* ``better``: the per-seed difference a - b has a Student-t 95% CI wholly on a's good
  side of 0 (above for maximize, below for minimize) -> supported; wholly on the other
  side -> contradicted; straddling 0 -> inconclusive.
* ``equivalent``: the CI of a - b lies inside (-within, +within) -> supported; wholly
  outside it -> contradicted; otherwise inconclusive (two one-sided tests, each at 97.5%).
* ``above`` / ``below``: the t CI of a's per-seed mean lies beyond the threshold ->
  supported; wholly on the wrong side -> contradicted; straddling it -> inconclusive.
* ``diverges``: a count, not an interval: most trained cells (completed + diverged) of a
  diverged -> supported; none did -> contradicted; a minority -> inconclusive.

A diverged cell is evidence too: in the first three kinds it is scored as the worst
completed result of the whole study (a conservative stand-in for "did not learn"), and
the evidence says how many were. Failed, pruned, running and missing cells say nothing.
Fewer than two seeds is always inconclusive. A claim is supported when every expectation
is, contradicted when any is, and inconclusive otherwise.

An inconclusive interval says what the study could have detected: the interval's
half-width at these seeds (a smaller effect cannot be told from none), and the seeds an
effect of the observed size would need (``stats.seeds_needed``, from the seeds' spread).

Frames have columns ``arm``, ``seed``, ``outcome`` and ``objective``; ``plan`` maps each
arm to its labels per axis (``StudyRuns.plan``), which is how selectors find arms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlbench.claim import Claim, Expectation, Selector
from dlbench.records import OBJECTIVE_METRIC
from dlbench.report import stats

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    verdict: str
    evidence: str  # the numbers behind it, in words


def arms_of(selector: Selector, plan: dict[str, dict[str, str]]) -> list[str]:
    """The planned arms a selector stands for, in study order (none if an axis is not planned)."""
    return [arm for arm, labels in plan.items() if all(labels.get(a) == v for a, v in selector)]


def _side(low: float, high: float, bound_low: float, bound_high: float) -> str:
    """Supported if [low, high] lies in (bound_low, bound_high), contradicted if wholly outside."""
    if bound_low < low and high < bound_high:
        return SUPPORTED
    if high < bound_low or low > bound_high:
        return CONTRADICTED
    return INCONCLUSIVE


def _scored(frame: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Completed cells with a finite result, and diverged ones scored as the study's worst."""
    values = frame[OBJECTIVE_METRIC].astype(float)
    completed = frame[(frame["outcome"] == "completed") & np.isfinite(values)]
    results = completed[OBJECTIVE_METRIC].astype(float)
    worst = results.min() if direction == "maximize" else results.max()
    diverged = frame[frame["outcome"] == "diverged"].assign(**{OBJECTIVE_METRIC: worst})
    return pd.concat([completed, diverged.dropna(subset=[OBJECTIVE_METRIC])])


def _cells(
    scored: pd.DataFrame, selector: Selector, plan: dict[str, dict[str, str]]
) -> pd.DataFrame:
    """The selector's cells, keyed by (the labels of the free axes, seed)."""
    named = {axis for axis, _ in selector}
    arms = arms_of(selector, plan)
    cells = scored[scored["arm"].isin(arms)]
    free = cells["arm"].map(
        lambda arm: tuple(v for axis, v in plan[arm].items() if axis not in named)
    )
    return cells.assign(free=free)


def _evidence(
    low: float, high: float, mean: float, n: int, per_seed: int, cells: pd.DataFrame, what: str
) -> str:
    """The numbers of one judgement in words: estimate, CI, seeds, and how diverged cells counted."""
    text = f"{what} {mean:+.4f} (95% CI {low:+.4f} to {high:+.4f}; {n} seeds"
    text += f", each the mean over {per_seed} settings of the free axes)" if per_seed > 1 else ")"
    diverged = int((cells["outcome"] == "diverged").sum())
    if diverged:
        worst = cells.loc[cells["outcome"] == "diverged", OBJECTIVE_METRIC].iloc[0]
        text += f"; {diverged} diverged cells scored as the study's worst result {worst:.4f}"
    return text


def judge(
    exp: Expectation, frame: pd.DataFrame, plan: dict[str, dict[str, str]], direction: str
) -> Verdict:
    """The verdict on one expectation from the study's result frame."""
    if exp.kind == "diverges":
        cells = frame[frame["arm"].isin(arms_of(exp.a, plan))]
        diverged = int((cells["outcome"] == "diverged").sum())
        trained = diverged + int((cells["outcome"] == "completed").sum())
        evidence = f"diverged in {diverged} of {trained} trained cells"
        if trained < 2:
            return Verdict(exp, INCONCLUSIVE, evidence + ": too few to judge")
        verdict = (
            SUPPORTED if diverged > trained / 2 else CONTRADICTED if not diverged else INCONCLUSIVE
        )
        return Verdict(exp, verdict, evidence)
    scored = _scored(frame, direction)
    a = _cells(scored, exp.a, plan)
    if exp.kind in ("above", "below"):
        per_seed = a.groupby("seed")[OBJECTIVE_METRIC].mean()
        used, width = a, int(a.groupby("seed").size().max()) if len(a) else 0
        what = "mean"
    else:
        b = _cells(scored, exp.b, plan)
        keys = ["free", "seed"]
        both = (
            a.set_index(keys)[OBJECTIVE_METRIC]
            .to_frame("a")
            .join(b.set_index(keys)[OBJECTIVE_METRIC].to_frame("b"), how="inner")
        )
        differences = (both["a"] - both["b"]).groupby(level="seed")
        per_seed, width = differences.mean(), int(differences.size().max()) if len(both) else 0
        used = pd.concat([a, b])
        used = used[used.set_index(keys).index.isin(both.index)]
        what = "a - b ="
    if len(per_seed) < 2:
        return Verdict(exp, INCONCLUSIVE, f"{len(per_seed)} seed(s) with results: too few to judge")
    values = per_seed.to_numpy()
    low, high = stats.t_interval(values)
    mean = float(per_seed.mean())
    evidence = _evidence(low, high, mean, len(per_seed), width, used, what)
    if exp.kind == "equivalent":
        assert exp.value is not None
        verdict, distance = _side(low, high, -exp.value, exp.value), abs(exp.value - abs(mean))
    elif exp.kind == "better":
        sign = 1 if direction == "maximize" else -1
        verdict, distance = _side(*sorted((sign * low, sign * high)), 0.0, np.inf), abs(mean)
    else:
        assert exp.value is not None
        bounds = (exp.value, np.inf) if exp.kind == "above" else (-np.inf, exp.value)
        verdict, distance = _side(low, high, *bounds), abs(mean - exp.value)
    if verdict == INCONCLUSIVE:
        evidence += _detectable(values, low, high, distance, exp.kind)
    return Verdict(exp, verdict, evidence)


def _detectable(values: np.ndarray, low: float, high: float, distance: float, kind: str) -> str:
    """What the study could have told apart, for an inconclusive verdict."""
    half = (high - low) / 2
    gap = "a margin" if kind == "equivalent" else "an effect"
    text = f"; detectable at {len(values)} seeds: {gap} beyond {half:.4f} (the CI's half-width)"
    needed = stats.seeds_needed(values, distance)
    size = f"the observed size ({distance:.4f})"
    if needed is None:
        return text + f"; {gap} of {size} would need more than {stats.MOST_SEEDS} seeds"
    return text + f"; {gap} of {size} would need about {needed} seeds"


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
