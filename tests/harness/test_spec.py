"""Study files: the valid one loads, every kind of bad one is refused in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TINY_STUDY, write_study
from dlbench.cli import main
from dlbench.errors import ConfigError
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study

REPO = Path(__file__).resolve().parents[2]


def test_optimizer_study_loads_with_seven_optimizers_and_smoke_tier() -> None:
    spec = load_study(REPO / "studies" / "optimizers.yaml")
    labels = [arm.label for arm in spec.grid["optimizer"]]
    assert labels == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
    assert spec.seeds == tuple(range(10)) and spec.problem == "mnist1d_mlp"
    assert spec.fixed["epochs"] == 20
    smoke = load_study(REPO / "studies" / "optimizers.yaml", smoke=True)
    assert smoke.name == "optimizers_smoke"
    assert smoke.fixed["epochs"] == 2 and smoke.seeds == (0,)


def test_problem_budget_fills_missing_settings(workdir: Path) -> None:
    path = write_study(workdir, "name: bare\nproblem: digits_mlp\n")
    spec = load_study(path)
    assert dict(spec.fixed) == {}  # what the file says; each cell gets its problem's budget
    (cell,) = expand(spec)
    assert cell.settings["optimizer"] == "sgd" and cell.settings["epochs"] >= 1
    assert spec.objective.metric == "val/acc" and spec.objective.direction == "maximize"


def test_overrides_set_fields_and_settings(workdir: Path) -> None:
    path = write_study(workdir, TINY_STUDY)
    spec = load_study(
        path, overrides=["epochs=5", "seeds=[3]", "grid.optimizer=[sgd]", "objective.summary=best"]
    )
    assert spec.fixed["epochs"] == 5 and spec.seeds == (3,)
    assert [a.label for a in spec.grid["optimizer"]] == ["sgd"]
    assert spec.objective.summary == "best"
    # A setting that is a grid axis becomes fixed for every cell.
    assert "optimizer" not in load_study(path, overrides=["optimizer=adam"]).grid


def test_set_adds_to_a_list_and_names_plugins_from_the_current_directory(workdir: Path) -> None:
    path = (
        write_study(workdir / "studies", TINY_STUDY)
        if (workdir / "studies").mkdir() is None
        else None
    )
    spec = load_study(path, overrides=["grid.optimizer+=[nesterov]", "grid.optimizer+=adamw"])
    assert [a.label for a in spec.grid["optimizer"]] == ["sgd", "adam", "nesterov", "adamw"]
    (workdir / "mine.py").write_text("X = 1\n")  # here, not next to the study file
    spec = load_study(path, overrides=["plugins+=[mine.py]"])
    assert [p.path for p in spec.plugins] == [str(workdir / "mine.py")]
    for bad, message in [("epochs+=1", "a grid axis"), ("name+=x", "not one")]:
        with pytest.raises(ConfigError, match=message):
            load_study(path, overrides=[bad])


BAD = {
    "misspelt setting": (
        "fixed: {epoch: 3}",
        ["fixed.epoch", "did you mean epochs", "allowed:"],
    ),
    "misspelt top-level key": ("seed: [0]", ["seed", "did you mean seeds", "allowed:"]),
    "unknown optimizer": (
        "grid: {optimizer: [sgd, adamm]}",
        ["grid.optimizer[1]", "unknown optimizer 'adamm'", "adam", "rmsprop"],
    ),
    "list where a name belongs": (
        "fixed: {optimizer: [sgd]}",
        ["fixed.optimizer", "unknown optimizer ['sgd']", "allowed: adagrad"],
    ),
    "groupnorm groups not dividing the width": (
        "fixed: {norm: groupnorm, width: 12}",
        ["settings", "groups=8 must divide the width 12"],
    ),
    "norm for the wrong kind of input": (
        "grid: {norm: [batchnorm, instancenorm]}",
        ["grid cell 'instancenorm'", "needs 2-D feature maps", "allowed for MLPs"],
    ),
    "image augmentation on tabular input": (
        "fixed: {augmentation: crop}",
        ["settings", "augmentation 'crop' needs images (C, H, W)", "(64,)"],
    ),
    "loss that does not fit the task": (
        "fixed: {loss: bce}",
        ["loss 'bce'", "does not fit task 'classification'", "cross_entropy"],
    ),
    "label mixing with a hard-label loss": (
        "fixed: {augmentation: mixup, loss: nll}",
        ["augmentation 'mixup' mixes labels", "cross_entropy"],
    ),
    "misspelt component hyperparameter": (
        "fixed: {augmentation: {name: mixup, alpah: 0.2}}",
        ["fixed.augmentation.alpah", "takes no 'alpah'", "allowed: alpha"],
    ),
    "groupnorm groups set in the study not dividing the width": (
        "fixed: {norm: {name: groupnorm, groups: 5}, width: 32}",
        ["settings", "groups=5 must divide the width 32"],
    ),
    "misspelt hyperparameter of a model-built component": (
        "fixed: {norm: {name: groupnorm, grups: 4}}",
        ["fixed.norm.grups", "takes no 'grups'", "allowed: groups"],
    ),
    "wrong type": ("fixed: {epochs: ten}", ["fixed.epochs", "integer >= 1", "'ten'"]),
    "negative epochs": ("fixed: {epochs: -3}", ["fixed.epochs", "integer >= 1", "-3"]),
    "unknown problem": ("problem: digits_mpl", ["problem", "did you mean digits_mlp"]),
    "hyperparameter the optimizer lacks": (
        "grid: {optimizer: [{name: adam, momentum: 0.9}]}",
        ["grid.optimizer[0].momentum", "adam", "allowed: beta1, beta2"],
    ),
    "bad objective": (
        "objective: {metric: val/acc, direction: up}",
        ["objective.direction", "maximize"],
    ),
    "bad batch size": ("fixed: {batch_size: 0}", ["fixed.batch_size", "'full'"]),
    "repeated label": ("grid: {optimizer: [sgd, sgd]}", ["grid.optimizer", "sgd repeats"]),
    "pretext run given a pre-trained encoder": (
        "problem: digits_ssl\nfixed: {pretext: context, encoder: simclr}",
        ["a pretext run (pretext 'context')", "encoder must be random"],
    ),
    "simclr without an augmentation for its views": (
        "problem: digits_ssl\nfixed: {pretext: simclr}",
        ["pretext 'simclr' needs an augmentation", "allowed: ", "crop"],
    ),
    "pretext with another loss": (
        "problem: digits_ssl\nfixed: {pretext: context, loss: nll}",
        ["pretext 'context' trains with cross_entropy", "not loss 'nll'"],
    ),
    "context grid larger than the image": (
        "problem: digits_ssl\nfixed: {pretext: {name: context, patch: 8}}",
        ["needs 30x30 images (image_size is 24)"],
    ),
    "misspelt encoder": (
        "problem: digits_ssl\nfixed: {encoder: simclar}",
        ["fixed.encoder", "random, a pretext (context, simclr) or an MLflow run id"],
    ),
    "unknown transfer mode": (
        "problem: digits_ssl\nfixed: {transfer: probes}",
        ["fixed.transfer", "probe, finetune_last, finetune_all"],
    ),
    "a search judged on the test split": (
        "search: {trials: 2, params: {lr: {low: 0.001, high: 0.1}}}\n"
        "objective: {metric: test/acc, direction: maximize}",
        ["objective.metric", "train/loss, val/loss, val/acc", "'test/acc'"],
    ),
    "context prediction on 1-D signals": (
        "problem: mnist1d_ssl\nfixed: {pretext: context}",
        ["pretext 'context' cuts 2-D image patches", "simclr"],
    ),
    "a signal augmentation on images": (
        "problem: digits_cnn\nfixed: {augmentation: signal_negate}",
        ["augmentation 'signal_negate' needs 1-D signals (C, L)", "(1, 8, 8)"],
    ),
    "no labels at all": (
        "problem: digits_ssl\nfixed: {labelled: 0}",
        ["fixed.labelled", "(0.0, 1.0]"],
    ),
}


def test_a_grid_may_be_judged_on_the_test_split(workdir: Path) -> None:
    """Claim 10 is: nothing is tuned in a grid, and its early-stopping arm reads val."""
    text = "name: t\nproblem: digits_mlp\nobjective: {metric: test/loss, direction: minimize}\n"
    spec = load_study(write_study(workdir, text))
    assert spec.objective.metric == "test/loss" and spec.objective.summary == "last"


def _study_with(line: str) -> str:
    """A valid study with one line changed or added (later keys override earlier ones)."""
    base = {"name": "name: bad", "problem": "problem: digits_mlp", "seeds": "seeds: [0]"}
    key = line.split(":")[0]
    base[key] = line
    return "\n".join(base.values()) + "\n"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_study_is_refused_in_one_line_with_exit_2(
    case: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line, expected = BAD[case]
    path = write_study(workdir, _study_with(line), "bad.yaml")
    code = main(["run", str(path), "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err
    for fragment in expected:
        assert fragment in err, (fragment, err)
    assert not (workdir / "mlflow.db").exists(), "nothing may be logged for a bad study"
    assert not (workdir / "runs").exists()


def test_broken_yaml_names_the_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(workdir, "name: x\ngrid: {optimizer: [sgd\n", "broken.yaml")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml: broken YAML at line" in err and err.count("\n") == 1


def test_missing_study_lists_the_known_ones(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "studies").mkdir()
    write_study(workdir / "studies", TINY_STUDY, "tiny.yaml")
    assert main(["run", "tiyn"]) == 2
    err = capsys.readouterr().err
    assert "unknown study 'tiyn'" in err and "did you mean tiny" in err
    assert main(["run", "nowhere.yaml"]) == 2
    assert "nowhere.yaml: no such study file" in capsys.readouterr().err


def test_component_hyperparameters_resolve_per_cell(workdir: Path) -> None:
    from dlbench.harness.grid import expand

    text = "name: c\nproblem: digits_cnn\nfixed: {augmentation: {name: mixup, alpha: 0.2}}\n"
    text += "grid: {augmentation: [crop, {name: mixup, alpha: 0.4, label: mix4}]}\n"
    spec = load_study(
        write_study(workdir, text.replace("fixed: {augmentation: {name: mixup, alpha: 0.2}}\n", ""))
    )
    crop, mix = expand(spec)
    assert crop.component_kwargs("augmentation") == {"padding": 1}
    assert mix.component_kwargs("augmentation") == {"alpha": 0.4}
    assert mix.arm == {"augmentation": "mix4"}
    assert crop.settings["regularizer"] == "none" and crop.settings["schedule"] == "constant"


def test_errors_point_at_smoke_block_and_set(workdir: Path) -> None:
    path = write_study(workdir, TINY_STUDY.replace("smoke: {epochs: 1", "smoke: {epochs: 0"))
    with pytest.raises(ConfigError, match=r"study.yaml: smoke.epochs: must be an integer"):
        load_study(path, smoke=True)
    load_study(path)  # the full tier is fine
    with pytest.raises(ConfigError, match=r"^--set: lr: must be a number"):
        load_study(path, overrides=["lr=-1"])
    with pytest.raises(ConfigError, match=r"^--set: expected key=value"):
        load_study(path, overrides=["lr"])
