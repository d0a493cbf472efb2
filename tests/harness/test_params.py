"""Optuna params: a plain Optuna client sees each trial's grid axes and seed."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from conftest import TINY_STUDY, write_study
from dlbench.harness import params, storage
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study


def test_a_plain_optuna_client_sees_every_cells_axes_and_seed(tiny_run: Path) -> None:
    os.chdir(tiny_run)
    backend = JournalFileBackend(str(storage.journal_path("tiny")))
    study = optuna.load_study(study_name="tiny", storage=JournalStorage(backend))
    trials = study.get_trials()
    assert sorted((t.params["optimizer"], t.params["seed"]) for t in trials) == [
        ("adam", 0),
        ("adam", 1),
        ("sgd", 0),
        ("sgd", 1),
    ]
    assert trials[0].distributions["optimizer"] == CategoricalDistribution(["sgd", "adam"])
    assert trials[0].distributions["seed"] == IntDistribution(0, 1)
    frame = study.trials_dataframe()
    assert {"params_optimizer", "params_seed", "value"} <= set(frame.columns)
    assert set(optuna.importance.get_param_importances(study)) == {"optimizer", "seed"}


def test_numeric_axes_are_numeric_params_log_scaled_over_a_decade(tmp_path: Path) -> None:
    text = TINY_STUDY.replace(
        "grid:\n", "grid:\n  lr: [0.001, 0.01, 0.1]\n  width: [8, 16]\n"
    ).replace("width: 16, ", "")
    cells = expand(load_study(write_study(tmp_path, text)))
    space = params.space(optuna.create_study(), cells)
    assert space["lr"][0] == FloatDistribution(0.001, 0.1, log=True)
    assert space["width"][0] == IntDistribution(8, 16)
    found = params.of(cells[0], space)
    assert found["lr"][0] == float(cells[0].arm["lr"]) and found["seed"][0] == cells[0].seed


def test_a_param_whose_labels_no_longer_fit_the_recorded_one_is_left_off(tmp_path: Path) -> None:
    cells = expand(load_study(write_study(tmp_path, TINY_STUDY)))
    study = optuna.create_study()
    storage.pending(study, cells)
    renamed = TINY_STUDY.replace("{name: adam, lr: 0.01}", "{name: adam, lr: 0.01, label: a2}")
    space = params.space(study, expand(load_study(write_study(tmp_path, renamed, "b.yaml"))))
    assert "optimizer" not in space and "seed" in space  # Optuna would refuse new choices
