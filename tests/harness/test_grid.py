"""Grid expansion: full factorial x seeds, stable ids, every default resolved."""

from __future__ import annotations

from pathlib import Path

from conftest import TINY_STUDY, write_study
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study


def test_full_factorial_times_seeds_with_seeds_outermost(workdir: Path) -> None:
    text = TINY_STUDY.replace("grid:\n", "grid:\n  width: [8, 16]\n").replace("width: 16, ", "")
    cells = expand(load_study(write_study(workdir, text)))
    assert len(cells) == 2 * 2 * 2
    assert len({c.id for c in cells}) == 8
    assert [c.seed for c in cells] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {(c.arm["width"], c.arm["optimizer"]) for c in cells[:4]} == {
        ("8", "sgd"),
        ("8", "adam"),
        ("16", "sgd"),
        ("16", "adam"),
    }


def test_cell_settings_resolve_every_default_and_drop_foreign_hyperparameters(
    workdir: Path,
) -> None:
    text = TINY_STUDY.replace("batch_size: 128}", "batch_size: 128, momentum: 0.5}")
    text = text.replace("- {name: sgd, lr: 0.1}", "- {name: momentum, lr: 0.1}")
    momentum, adam = expand(load_study(write_study(workdir, text)))[:2]
    assert momentum.settings["momentum"] == 0.5 and momentum.optimizer_hparams == {
        "momentum": 0.5,
        "weight_decay": 0.0,
    }
    assert "momentum" not in adam.settings  # adam takes no momentum
    assert adam.optimizer_hparams == {
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.0,
    }
    assert adam.settings["lr"] == 0.01 and adam.settings["norm"] == "none"  # problem default
    assert adam.problem_kwargs == {
        "width": 16,
        "depth": 1,
        "activation": "relu",
        "norm": "none",
        "init": "he_normal",
        "preprocessing": "standardize",
    }


def test_ids_are_stable_under_labels_and_order_but_not_settings(workdir: Path) -> None:
    ids = {c.id for c in expand(load_study(write_study(workdir, TINY_STUDY)))}
    relabelled = TINY_STUDY.replace("{name: adam, lr: 0.01}", "{name: adam, lr: 0.01, label: fast}")
    assert {c.id for c in expand(load_study(write_study(workdir, relabelled)))} == ids
    reordered = TINY_STUDY.replace("seeds: [0, 1]", "seeds: [1, 0]")
    assert {c.id for c in expand(load_study(write_study(workdir, reordered)))} == ids
    changed = TINY_STUDY.replace("lr: 0.01", "lr: 0.02")
    new = {c.id for c in expand(load_study(write_study(workdir, changed)))}
    assert len(new & ids) == 2 and len(new - ids) == 2  # the sgd cells keep theirs
