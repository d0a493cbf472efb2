"""The report's "Optimizers across problems" section: a search study that tunes every
optimizer on every problem, judged the way optimizer benchmarks judge (report/optimizer_metrics.py).

It applies to a search study with a ``problem`` and an ``optimizer`` grid axis and at least
two problems. An "optimizer" here is an arm's labels on every axis but ``problem`` (just the
optimizer's label when those are the only two axes), so every recipe is compared on every
problem. What a study did not log is left out: the steps to target need ``train/steps``,
the seconds to target ``time/step_s`` and the per-step cost ``time/optimizer_step_s``
(one step of a cell timed alone), which studies recorded before them lack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from dlbench.records import STEPS
from dlbench.report import figures, optimizer_metrics, optimizer_tables
from dlbench.report.document import Heading, Paragraph

if TYPE_CHECKING:
    from dlbench.report.collect import StudyRuns
    from dlbench.report.render import Report

BASELINE = "sgd"  # the optimizer (its `optimizer` param) whose step cost the others add to


def applies(runs: StudyRuns) -> bool:
    """A search study over problems and optimizers, with at least two problems."""
    axes = runs.axes
    return (
        runs.is_search
        and {"problem", "optimizer"} <= set(axes)
        and len(runs.labels("problem")) >= 2
    )


def _keys(runs: StudyRuns) -> dict[str, tuple[str, str]]:
    """Each planned arm's (problem, optimizer): its problem label, and its labels on the
    other axes."""
    return {
        arm: (labels["problem"], " ".join(v for a, v in labels.items() if a != "problem"))
        for arm, labels in runs.plan.items()
    }


def _with_keys(data: pd.DataFrame, keys: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """``data`` with its arm's problem and optimizer; rows of arms outside the plan dropped."""
    known = data[data["arm"].isin(list(keys))]
    return known.assign(
        problem=known["arm"].map(lambda arm: keys[arm][0]),
        optimizer=known["arm"].map(lambda arm: keys[arm][1]),
    )


def _baseline(runs: StudyRuns, frame: pd.DataFrame, order: list[str]) -> str | None:
    """The first optimizer (study order) whose runs train with SGD, or None."""
    sgd = {r.info.run_id for r in runs.runs if r.data.params.get("optimizer") == BASELINE}
    found = set(frame.loc[frame["run_id"].isin(sgd), "optimizer"])
    return next((o for o in order if o in found), None)


def section(report: Report) -> None:
    """Append the section's tables and figures to ``report`` (nothing if it does not apply)."""
    runs = report.runs
    if not applies(runs) or not report.shown:
        return
    keys, problems = _keys(runs), runs.labels("problem")
    order = list(dict.fromkeys(optimizer for _, optimizer in keys.values()))
    frame = _with_keys(report.frame, keys)
    target = optimizer_metrics.targets(frame, report.direction).reindex(problems).dropna()
    ran = frame[frame["cell"].notna() & ~frame["outcome"].isin(["running", "missing"])]
    wanted = list(dict.fromkeys([runs.metric, STEPS]))
    curves = _with_keys(runs.curves(wanted, set(ran["cell"])), keys)
    logged = set(curves["metric"])
    seeds = ", ".join(map(str, runs.seeds))
    rule = (
        f"A problem's target is its best optimizer's median final {report.label} over seeds "
        "(for an even number of seeds, the better middle one), "
        f"{'times' if report.direction == 'maximize' else 'divided by'} "
        f"{optimizer_metrics.TARGET_FRACTION:g}"
    )
    report.blocks += [
        Heading("Optimizers across problems"),
        Paragraph(
            f"Every optimizer on every problem ({len(problems)} problems, {len(order)} "
            f"optimizers, seeds {seeds}), each cell its best of {max(runs.trials.values())} "
            f"search trials. {rule}: close to the best, with room for seed noise."
        ),
    ]
    if runs.metric in logged and len(target):
        times = optimizer_metrics.time_to_target(curves, ran, target, report.direction, runs.metric)
        summary = optimizer_metrics.time_summary(times)
        report.blocks.append(Heading("Time to target", 3))
        report.table(
            optimizer_tables.time_to_target(summary, target, runs.metric, report.direction)
        )
        _profiles(report, summary, problems, order, f"{rule}. Seeds {seeds}.")
    trials = _with_keys(runs.trial_frame(), keys)
    points = optimizer_metrics.lr_sensitivity(trials)
    best = optimizer_metrics.tuneability(trials, report.direction)
    if len(points):
        report.figure(
            figures.lr_sensitivity(points, problems, order, report.label),
            "lr_sensitivity",
            "Learning-rate sensitivity",
            f"{report.label} of every completed search trial against its learning rate (log "
            f"x), one panel per problem: how wide the good range of each optimizer is "
            f"(DeepOBS). Trials of all seeds ({seeds}); diverged trials have no point.",
        )
    if len(best):
        report.figure(
            figures.tuneability(best, problems, order, report.label),
            "tuneability",
            "Tuneability",
            f"Best {report.label} among a cell's first k search trials (trial order), mean "
            f"over seeds {seeds}; band: the worst to the best seed (min-max, not a "
            f"confidence interval). How much tuning an optimizer needs.",
        )
    baseline = _baseline(runs, frame, order)
    cost = optimizer_metrics.step_cost(trials, baseline)  # none before time/optimizer_step_s
    cost = cost.sort_values(  # study order (trial_frame sorts by arm label)
        ["problem", "optimizer"],
        key=lambda c: c.map(
            {v: i for i, v in enumerate(problems if c.name == "problem" else order)}
        ),
    )
    if len(cost):
        report.blocks.append(Heading("Per-step optimizer cost", 3))
        report.table(optimizer_tables.step_cost(cost, baseline))


def _profiles(
    report: Report, summary: pd.DataFrame, problems: list[str], order: list[str], rule: str
) -> None:
    """The integrated scores and the performance profiles, by each time measure logged for
    every (problem, optimizer)."""
    measures = [m for m in optimizer_metrics.MEASURES if summary[m].notna().all()]
    if not measures:
        return
    times = {
        m: summary.pivot(index="problem", columns="optimizer", values=m)
        .reindex(index=problems, columns=order)
        .dropna(how="all")
        .dropna(axis=1, how="all")
        for m in measures
    }
    scored = pd.DataFrame({m: optimizer_metrics.integrated_score(times[m]) for m in measures})
    scored_on = times[measures[0]].notna().sum()
    report.blocks.append(Heading("Benchmark score", 3))
    report.table(optimizer_tables.scores(scored, scored_on, len(times[measures[0]])))
    profiles = {
        m: optimizer_metrics.performance_profile(times[m], optimizer_metrics.profile_taus(times[m]))
        for m in measures
    }
    report.figure(
        figures.performance_profiles(profiles, order, optimizer_metrics.R_MAX),
        "profile",
        "Performance profiles",
        "rho(tau): the share of problems on which an optimizer's time to target (over seeds, "
        "as in the time-to-target table; never reached: within no tau) is within tau times "
        "the fastest "
        f"optimizer's on that problem, tau from 1 to {optimizer_metrics.R_MAX:g} on a log axis "
        f"(AlgoPerf, Dahl et al. 2023). Its normalized area is the score above. {rule}",
    )
