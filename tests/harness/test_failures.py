"""A cell's own crash is its result; an error in dlbench is not, and stops the sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.arguments import EXIT_CELLS_FAILED
from dlbench.cli import main
from dlbench.harness import mlflow_logger, status, sweep
from dlbench.harness.failures import CellFailed, cell_training
from dlbench.harness.mlflow_logger import BufferedMLFlowLogger
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.records import ERROR, ROLE


def test_an_error_in_a_component_is_the_cells_failure() -> None:
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(CellFailed, match=r"^RuntimeError: .*mat1 and mat2"), cell_training():
        layer(torch.ones(3, 5))  # a shape bug in the model, raised by torch


def test_cuda_out_of_memory_is_the_cells_failure_in_one_line() -> None:
    with pytest.raises(CellFailed, match=r"^CUDA out of memory: Tried"), cell_training():
        raise torch.cuda.OutOfMemoryError("Tried to allocate 20.00 GiB\nmore details")


def test_errors_of_the_stores_and_of_harness_code_propagate_as_they_are(tmp_path: Path) -> None:
    with pytest.raises(MlflowException), cell_training():
        raise MlflowException("the tracking server went away")
    logger = BufferedMLFlowLogger(tracking_uri=uri_of(tmp_path), run_id="x")
    with pytest.raises(AttributeError), cell_training():
        logger.log_metrics(None, step=0)  # type: ignore[arg-type]  # harness code's own bug


def _runs(folder: Path, study: str) -> list:
    client = MlflowClient(uri_of(folder))
    experiment = client.get_experiment_by_name(study)
    return [
        r for r in client.search_runs([experiment.experiment_id]) if r.data.tags[ROLE] == "cell"
    ]


def test_an_error_in_dlbench_stops_the_sweep_and_leaves_its_cells_to_run(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_study(write_study(workdir, TINY_STUDY), smoke=True)
    real = mlflow_logger.Metric

    def broken(*args):  # as if the harness's logger (called inside the fit) had a bug
        raise KeyError("dlbench bug")

    monkeypatch.setattr(mlflow_logger, "Metric", broken)
    with pytest.raises(KeyError, match="dlbench bug"):
        sweep.run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu", stack=1))
    assert {state for _, state in status.states(spec)} == {"missing"}  # no cell result
    (run,) = _runs(workdir, "tiny_smoke")  # the first cell's attempt, closed as killed
    assert run.info.status == "KILLED"
    assert run.data.tags[ERROR].startswith("stopped by an error in dlbench, not in the cell")

    monkeypatch.setattr(mlflow_logger, "Metric", real)
    done = sweep.run_study(spec, RunOptions(tracking=uri_of(workdir), devices="cpu", stack=1))
    assert [d.outcome for d in done] == ["completed", "completed"]


def test_dlbench_run_exits_with_its_own_status_when_cells_failed(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(workdir, TINY_STUDY)

    def boom(self, closure=None):
        raise RuntimeError("boom")

    real = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", boom)
    args = ["run", str(path), "--smoke", "--devices", "cpu", "--tracking-uri", uri_of(workdir)]
    assert main(args) == EXIT_CELLS_FAILED
    # Stacked with sgd, adam's crash stopped the stack; trained again alone, sgd completes
    # (test_stacking checks the runs).
    assert "1 of the study's cells failed" in capsys.readouterr().err
    assert main(args) == EXIT_CELLS_FAILED  # still failed: nothing ran, nothing changed
    states = {cell.arm_label: state for cell, state in status.states(load_study(path, smoke=True))}
    assert states == {"sgd": "done", "adam": "failed"}

    monkeypatch.setattr(torch.optim.Adam, "step", real)
    assert main([*args, "--retry-failed"]) == 0
