"""Stacking in the sweep: which cells go together, same results as alone, tags that say so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.harness import stacking
from dlbench.harness.grid import expand
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.records import ARM, OUTCOME, ROLE, SECONDS, STACK_SECONDS, STACKED
from dlbench.report.collect import results


def _runs(folder: Path, study: str) -> list:
    client = MlflowClient(uri_of(folder))
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if r.data.tags[ROLE] == "cell"]


def test_cells_that_differ_in_seed_init_lr_or_optimizer_share_a_key(tmp_path: Path) -> None:
    study = TINY_STUDY.replace("grid:\n", "grid:\n  batch_size: [64, 128]\n").replace(
        ", batch_size: 128}", "}"
    )
    cells = expand(load_study(write_study(tmp_path, study)))
    groups = stacking.groups(cells)
    assert len(cells) == 8 and len(groups) == 2  # one per batch size
    for group in groups:
        assert len({c.settings["batch_size"] for c in group}) == 1
        assert {c.settings["optimizer"] for c in group} == {"sgd", "adam"}
        # one run per optimizer (the stack steps each run with one torch optimizer),
        # the expanded (claim) order kept within a run
        names = [c.settings["optimizer"] for c in group]
        assert names == sorted(names)
        for name in ("adam", "sgd"):
            run = [c for c in group if c.settings["optimizer"] == name]
            assert run == [c for c in cells if c in run]


@pytest.mark.parametrize(
    ("stack", "pending", "workers", "expected"),
    [
        (0, stacking.AUTO, 1, stacking.AUTO),
        (0, stacking.AUTO + 6, 1, stacking.AUTO // 2 + 3),  # two equal stacks, not AUTO + 6
        (0, 10, 2, 5),
        (1, 100, 1, 1),
        (4, 3, 1, 3),
        (8, 100, 4, 8),
    ],
)
def test_limit_leaves_every_worker_a_share(
    stack: int, pending: int, workers: int, expected: int
) -> None:
    assert stacking.limit(stack, pending, workers) == expected


def test_the_grid_trains_as_one_stack_and_the_hot_arm_still_diverges(grid_run: Path) -> None:
    runs = _runs(grid_run, "grid2")
    assert len(runs) == 12
    assert {r.data.tags[STACKED] for r in runs} == {"12"}
    hot = [r for r in runs if r.data.tags[ARM + "optimizer"] == "sgd-hot"]
    assert {r.data.tags[OUTCOME] for r in hot} == {"diverged"}
    rest = [r for r in runs if r not in hot]
    assert {r.data.tags[OUTCOME] for r in rest} == {"completed"}
    assert all(r.data.metrics["val/acc"] > 0.5 for r in rest)


def test_a_stacked_cell_costs_its_share_of_the_stack_not_the_stack(grid_run: Path) -> None:
    """Every run of a stack spans the whole stack; its recorded cost is its share, and the
    cells' seconds add up to the stack's wall time (not 12 times it)."""
    runs = _runs(grid_run, "grid2")
    walls = {float(r.data.tags[STACK_SECONDS]) for r in runs}
    assert len(walls) == 1
    (wall,) = walls
    shares = [float(r.data.tags[SECONDS]) for r in runs]
    assert sum(shares) == pytest.approx(wall, abs=1e-3 * len(runs))  # tags keep 3 decimals
    spans = [(r.info.end_time - r.info.start_time) / 1000 for r in runs]
    assert all(share < span for share, span in zip(shares, spans, strict=True))
    assert wall <= max(spans) + 0.01  # the stack trained inside every one of its runs
    frame = results("grid2", uri_of(grid_run))  # what reports and notebooks read
    assert frame["seconds"].sum() == pytest.approx(wall, abs=1e-3 * len(runs))


def test_stacked_cells_log_what_they_log_alone(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_study(workdir, TINY_STUDY)
    curves = {}
    for stack, folder in ((0, workdir / "stacked"), (1, workdir / "alone")):
        folder.mkdir()
        monkeypatch.chdir(folder)  # each its own Optuna journal (runs/) too
        run_study(load_study(path), RunOptions(tracking=uri_of(folder), devices="cpu", stack=stack))
        client = MlflowClient(uri_of(folder))
        for run in _runs(folder, "tiny"):
            history = client.get_metric_history(run.info.run_id, "val/loss")
            curves.setdefault(run.info.run_name, []).append([m.value for m in history])
            assert run.data.tags[STACKED] == ("4" if stack == 0 else "1")
            assert run.data.params["lr_effective"] and run.data.metrics["test/acc"] > 0.1
    assert len(curves) == 4
    for stacked, alone in curves.values():
        assert len(stacked) == 2 and stacked == pytest.approx(alone, abs=1e-5)


def test_cells_that_cannot_stack_train_alone_and_say_why(workdir: Path) -> None:
    # Two batch sizes, one seed: no cell has a partner that differs only in the optimizer.
    study = TINY_STUDY.replace("grid:\n", "grid:\n  batch_size: [64, 128]\n")
    study = study.replace(", batch_size: 128}", "}").replace("seeds: [0, 1]", "seeds: [0]")
    study = study.replace("    - {name: adam, lr: 0.01}\n", "")
    run_study(
        load_study(write_study(workdir, study)), RunOptions(tracking=uri_of(workdir), devices="cpu")
    )
    runs = _runs(workdir, "tiny")
    assert len(runs) == 2
    for run in runs:
        assert run.data.tags[STACKED] == "1"
        assert "differed only in seed, init, lr or optimizer" in run.data.tags[stacking.NOTE]
        assert run.data.tags[OUTCOME] == "completed"


def test_regularized_cells_stack_too(workdir: Path) -> None:
    """A regularizer's hooks act per member (systems.training): such cells stack."""
    study = TINY_STUDY.replace("batch_size: 128}", "batch_size: 128, regularizer: l2}")
    run_study(
        load_study(write_study(workdir, study)), RunOptions(tracking=uri_of(workdir), devices="cpu")
    )
    runs = _runs(workdir, "tiny")
    assert {r.data.tags[STACKED] for r in runs} == {"4"}
    assert {r.data.tags[OUTCOME] for r in runs} == {"completed"}


def test_a_crashed_stack_trains_its_cells_again_alone_so_only_the_crashing_ones_fail(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: object, closure: object = None) -> None:  # a component's bug
        raise RuntimeError("boom")

    monkeypatch.setattr(torch.optim.Adam, "step", boom)
    spec = load_study(write_study(workdir, TINY_STUDY))
    done = run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu"))
    outcomes = sorted((d.cell.arm_label, d.outcome) for d in done)
    assert outcomes == [("adam", "failed")] * 2 + [("sgd", "completed")] * 2
    runs = _runs(workdir, "tiny")
    stacked = [r for r in runs if r.data.tags[STACKED] == "4"]
    assert len(stacked) == 4 and {r.info.status for r in stacked} == {"KILLED"}
    alone = [r for r in runs if r.data.tags[STACKED] == "1"]
    assert {r.data.tags[stacking.NOTE] for r in alone} == {
        "its stack of 4 crashed: RuntimeError: boom"
    }
    failed = [r for r in alone if r.data.tags[OUTCOME] == "failed"]
    assert {r.data.params["optimizer"] for r in failed} == {"adam"}
    assert {r.data.tags["dlbench.error"] for r in failed} == {"RuntimeError: boom"}
    assert {r.info.status for r in failed} == {"FAILED"}
    frame = results("tiny", uri_of(workdir))  # the lone attempt is each cell's result
    assert sorted(frame["outcome"]) == ["completed"] * 2 + ["failed"] * 2
    assert set(frame["attempts"]) == {2}
