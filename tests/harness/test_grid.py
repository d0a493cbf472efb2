"""Grid expansion: full factorial x seeds, stable ids, every default resolved."""

from __future__ import annotations

from pathlib import Path

from conftest import TINY_STUDY, write_study
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study
from dlbench.registry import Choice


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
        "activation": Choice("relu"),
        "norm": Choice("none"),
        "init": Choice("he_normal"),
        "preprocessing": Choice("standardize"),
        "train_size": "full",
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


def test_model_built_components_get_their_hyperparameters(workdir: Path) -> None:
    """``{name: groupnorm, groups: 4}`` reaches the GroupNorm deep inside the model."""
    from torch import nn

    from dlbench.harness.plan import build

    text = "name: g\nproblem: digits_mlp\nfixed: {epochs: 1, width: 32}\nseeds: [0]\n"
    text += "grid: {norm: [groupnorm, {name: groupnorm, groups: 4, label: g4}],"
    text += " init: [{name: normal, std: 0.5}]}\n"
    default, four = expand(load_study(write_study(workdir, text)))
    assert default.settings["norm.groups"] == 8 and four.settings["norm.groups"] == 4
    assert default.id != four.id
    for cell, groups in [(default, 8), (four, 4)]:
        model = build(cell).setup.model
        norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
        assert norms and {m.num_groups for m in norms} == {groups}
        weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
        assert abs(float(weights[0].detach().std()) - 0.5) < 0.02  # init.std = 0.5, not 0.01
