"""The sweep end to end with real Optuna journal storage and a real MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import ACROSS_STUDY, TINY_STUDY, uri_of, write_study
from dlbench.cli import main
from dlbench.harness import runner, status, storage, sweep
from dlbench.harness.grid import expand
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.records import ARM, CELL, OUTCOME, PARENT, ROLE, STACKED


def _cell_runs(folder: Path, study: str) -> list:
    client = MlflowClient(uri_of(folder))
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if r.data.tags.get(ROLE) == "cell"]


def test_mlflow_records_follow_the_contract(tiny_run: Path) -> None:
    client = MlflowClient(uri_of(tiny_run))
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get(ROLE) == "study"]
    cells = [r for r in runs if r.data.tags.get(ROLE) == "cell"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(cells) == 4
    spec_ids = {c.id for c in expand(load_study(tiny_run / "tiny.yaml"))}
    assert {r.data.tags[CELL] for r in cells} == spec_ids
    for run in cells:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags[PARENT] == parents[0].info.run_id
        assert tags[OUTCOME] == "completed" and run.info.status == "FINISHED"
        assert tags[ARM + "optimizer"] == params["optimizer"]
        for key in ("dlbench.version", "dlbench.git_commit", "dlbench.torch", "dlbench.device"):
            assert tags[key]
        for key in ("problem", "seed", "optimizer", "lr", "batch_size", "epochs", "init", "width"):
            assert key in params
        assert {"train/loss", "val/loss", "val/acc", "test/acc", "objective"} <= set(metrics)
        assert metrics["objective"] == pytest.approx(metrics["val/acc"], rel=1e-6)  # last epoch
        history = client.get_metric_history(run.info.run_id, "val/acc")
        assert sorted(p.step for p in history) == [0, 1]  # one point per epoch, step = epoch
        assert 0.0 <= metrics["test/acc"] <= 1.0


def test_optuna_has_one_completed_trial_per_cell(tiny_run: Path) -> None:
    os.chdir(tiny_run)
    study = optuna.load_study(
        study_name="tiny",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(storage.journal_path("tiny")))
        ),
    )
    trials = study.get_trials()
    assert len(trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(0.0 <= t.value <= 1.0 for t in trials)


def test_running_a_finished_study_again_runs_nothing(tiny_run: Path) -> None:
    os.chdir(tiny_run)
    spec = load_study(tiny_run / "tiny.yaml")
    assert sweep.run_study(spec, RunOptions(tracking=uri_of(tiny_run), devices="cpu")) == []
    assert len(_cell_runs(tiny_run, "tiny")) == 4


def test_diverged_and_crashed_cells_are_results_and_the_sweep_goes_on(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_study(workdir, TINY_STUDY)
    spec = load_study(
        path, smoke=True, overrides=["grid.optimizer=[{name: sgd, lr: 1.0e+6}, adam]"]
    )
    real = torch.optim.Adam.step

    def boom(self, closure=None):  # a component's bug, inside the cell's own training
        raise RuntimeError("boom")

    monkeypatch.setattr(torch.optim.Adam, "step", boom)
    done = sweep.run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu", stack=1))
    assert [d.outcome for d in done] == ["diverged", "failed"]
    runs = {r.data.params["optimizer"]: r for r in _cell_runs(workdir, "tiny_smoke")}
    assert runs["sgd"].data.tags[OUTCOME] == "diverged" and runs["sgd"].info.status == "FINISHED"
    assert "non-finite" in runs["sgd"].data.tags["dlbench.error"]
    assert runs["adam"].data.tags[OUTCOME] == "failed" and runs["adam"].info.status == "FAILED"
    assert runs["adam"].data.tags["dlbench.error"] == "RuntimeError: boom"
    # Both are final: running again does not retry them.
    monkeypatch.setattr(torch.optim.Adam, "step", real)
    assert sweep.run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu", stack=1)) == []
    found = {cell.arm_label: state for cell, state in status.states(spec)}
    assert found == {"sgd": "diverged", "adam": "failed"}

    # --retry-failed runs the crashed cell once more (it now completes); diverged stays.
    again = sweep.run_study(
        spec, RunOptions(tracking=uri_of(workdir), devices="cpu", retry_failed=True, stack=1)
    )
    assert [(d.cell.arm_label, d.outcome) for d in again] == [("adam", "completed")]
    found = {cell.arm_label: state for cell, state in status.states(spec)}
    assert found == {"sgd": "diverged", "adam": "done"}
    adam = [r for r in _cell_runs(workdir, "tiny_smoke") if r.data.params["optimizer"] == "adam"]
    assert sorted(r.data.tags["dlbench.attempt"] for r in adam) == ["1", "2"]


def test_cuda_out_of_memory_fails_the_cell_and_the_worker_carries_on(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_study(write_study(workdir, TINY_STUDY), smoke=True)

    def oom(self, closure=None):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(torch.optim.SGD, "step", oom)
    done = sweep.run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu", stack=1))
    assert [(d.cell.arm_label, d.outcome) for d in done] == [
        ("sgd", "failed"),
        ("adam", "completed"),
    ]
    assert done[0].error.startswith("CUDA out of memory: ") and "20.00 GiB" in done[0].error


def test_sqlite_optuna_storage_is_refused_for_several_workers(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(workdir, TINY_STUDY)
    args = ["run", str(path), "--devices", "cpu", "--workers", "2", "--storage", "sqlite:///o.db"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dlbench: error: --storage: SQLite locks") and "postgresql://" in err
    assert not any(workdir.glob("*.db")) and not (workdir / "runs").exists()  # nothing written


def test_status_of_a_study_never_run_shows_every_cell_missing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(workdir, TINY_STUDY)
    assert main(["status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tiny: 4 cells" in out and "missing" in out and "sgd s0" in out
    assert not (workdir / "runs").exists()  # asking does not create the study


def test_status_names_the_refused_arms_and_why(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(workdir, ACROSS_STUDY)
    assert main(["status", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long cells
    assert "across: 32 cells" in out  # 7 arms x 2 seeds x 2 trials run, 1 arm refused
    assert "refused │ 4" in out and "cnn adam-wide (problem 'digits_cnn' takes no" in out


def test_a_killed_sweep_resumes_without_losing_or_repeating_cells(workdir: Path) -> None:
    """Kill a real `dlbench run` after its first cell, then run it again to completion."""
    path = write_study(workdir, TINY_STUDY.replace("epochs: 2", "epochs: 4"))
    command = [
        sys.executable,
        "-m",
        "dlbench.cli",
        "run",
        str(path),
        "--devices",
        "cpu",
        "--tracking-uri",
        uri_of(workdir),
        "--stack",
        "1",  # one cell at a time, so the kill can land between cells
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = storage.journal_path("tiny")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"dlbench.outcome"') >= 1:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = journal.read_text().count('"dlbench.outcome"')
    assert 1 <= finished_before < 4, "the kill should land mid-sweep"

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    runs = _cell_runs(workdir, "tiny")
    completed = [r for r in runs if r.data.tags.get(OUTCOME) == "completed"]
    assert sorted(r.data.tags[CELL] for r in completed) == sorted(
        c.id for c in expand(load_study(path))
    ), "every cell completed exactly once"
    assert all(r.info.status != "RUNNING" for r in runs), "no run may stay RUNNING"
    assert len(runs) - len(completed) <= 1  # at most the one attempt that was killed


def test_a_cell_with_every_training_component_runs_through_the_harness(workdir: Path) -> None:
    text = """\
    name: wired
    problem: digits_cnn
    fixed:
      epochs: 2
      batch_size: 128
      channels: 8
      norm: groupnorm
      augmentation: {name: cutout, size: 2}
      schedule: {name: cosine, min_factor: 0.1}
      warmup_epochs: 1
      lr_scaling: linear
      base_batch_size: 64
    grid:
      regularizer: [{name: l2, strength: 0.001}, {name: early_stopping, patience: 1}]
    seeds: [0]
    """
    spec = load_study(write_study(workdir, text))
    done = sweep.run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu"))
    assert [d.outcome for d in done] == ["completed", "completed"]
    run = next(r for r in _cell_runs(workdir, "wired") if r.data.params["regularizer"] == "l2")
    params = run.data.params
    assert params["regularizer.strength"] == "0.001" and params["augmentation.size"] == "2"
    assert params["schedule.min_factor"] == "0.1" and float(params["lr_effective"]) == 0.1


def test_precision_is_a_setting_bf16_trains_close_to_32_bit(workdir: Path) -> None:
    text = """\
    name: precision
    problem: digits_mlp
    fixed: {width: 32, depth: 1, epochs: 3, batch_size: 64, optimizer: sgd, lr: 0.1}
    grid:
      precision: [32-true, bf16-mixed]
    seeds: [0, 1]
    """
    spec = load_study(write_study(workdir, text))
    done = sweep.run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu"))
    assert {d.outcome for d in done} == {"completed"}
    runs = {
        (r.data.params["precision"], r.data.params["seed"]): r.data.metrics
        for r in _cell_runs(workdir, "precision")
    }
    for seed in ("0", "1"):
        full, half = runs["32-true", seed], runs["bf16-mixed", seed]
        assert half["val/loss"] != full["val/loss"]  # autocast did act
        assert half["val/acc"] == pytest.approx(full["val/acc"], abs=0.05)


def test_a_cell_that_leaves_precision_out_keeps_its_id(workdir: Path) -> None:
    cell = expand(load_study(write_study(workdir, TINY_STUDY)))[0]
    assert "precision" not in cell.settings  # so ids from before the setting still match


@pytest.mark.slow  # torch.compile takes tens of seconds per model on a CPU
@pytest.mark.parametrize("stack", [1, 0])  # each cell alone; the three as one stack
def test_compiled_models_train_as_eager_ones(
    workdir: Path, stack: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """\
    name: compiled
    problem: digits_mlp
    fixed: {width: 16, depth: 1, epochs: 2, batch_size: 128, optimizer: sgd, lr: 0.1}
    grid:
      init: [he_normal, xavier_uniform, lecun_normal]
    seeds: [0]
    """
    spec = load_study(write_study(workdir, text))
    metrics = {}
    for compile_models in (False, True):
        folder = workdir / str(compile_models)
        folder.mkdir()
        monkeypatch.chdir(folder)  # its own Optuna journal (runs/)
        sweep.run_study(
            spec,
            RunOptions(
                tracking=uri_of(folder), devices="cpu", stack=stack, compile_models=compile_models
            ),
        )
        runs = _cell_runs(folder, "compiled")
        assert {r.data.tags.get(runner.COMPILED) for r in runs} == {
            "true" if compile_models else None
        }
        assert {r.data.tags[STACKED] for r in runs} == {"1" if stack else "3"}
        metrics[compile_models] = {r.data.params["init"]: r.data.metrics for r in runs}
    for init, eager in metrics[False].items():
        assert metrics[True][init]["val/loss"] == pytest.approx(eager["val/loss"], rel=1e-4)
