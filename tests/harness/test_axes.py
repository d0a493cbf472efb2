"""Grid axes: a problem axis (each cell its own problem and budget) and labelled values."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_study
from dlbench.errors import ConfigError
from dlbench.harness.grid import expand, refused
from dlbench.harness.plan import checked_cells
from dlbench.harness.spec import load_study
from dlbench.problems import PROBLEMS

PROBLEM_AXIS = """\
name: across
grid:
  problem: [digits_mlp, {value: digits_cnn, label: cnn}]
  init: [default, he_normal]
fixed: {epochs: 1}
seeds: [0]
"""


def test_a_problem_axis_gives_each_cell_its_problem_and_its_budget(workdir: Path) -> None:
    spec = load_study(write_study(workdir, PROBLEM_AXIS))
    assert spec.problems == ("digits_mlp", "digits_cnn") and spec.problem == "digits_mlp"
    cells = expand(spec)
    assert [c.arm_label for c in cells] == [
        "digits_mlp default",
        "digits_mlp he_normal",
        "cnn default",
        "cnn he_normal",
    ]
    for cell in cells:
        budget = PROBLEMS.get(cell.problem).flags["budget"]
        assert cell.settings["lr"] == budget["lr"]  # each problem's own default lr
        assert cell.settings["epochs"] == 1  # fixed beats every budget
        assert "problem" not in cell.settings  # the cell's problem, not one of its settings
        assert set(PROBLEMS.get(cell.problem).hyperparameters) <= set(cell.settings)
    assert {c.problem for c in cells} == {"digits_mlp", "digits_cnn"}
    assert len({c.id for c in cells}) == 4


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (PROBLEM_AXIS + "problem: digits_mlp\n", ["problem", "is also a grid axis"]),
        (
            PROBLEM_AXIS.replace("{epochs: 1}", "{epochs: 1, hidden: 32}"),
            ["fixed.hidden", "setting of problem 'digits_mlp'"],  # no problem of it takes it
        ),
        (
            PROBLEM_AXIS.replace("digits_mlp, {", "{name: digits_mlp, channels: 4}, {"),
            ["grid.problem[0].channels", "setting of problem 'digits_mlp'"],
        ),
        (
            PROBLEM_AXIS.replace("digits_mlp, {", "{name: digits_mlp, width: {value: 4}}, {"),
            ["grid.problem[0].width", "plain values"],
        ),
        (
            PROBLEM_AXIS.replace("digits_mlp, {", "digits_mpl, {"),
            ["grid.problem[0]", "did you mean digits_mlp"],
        ),
        (
            PROBLEM_AXIS.replace("label: cnn}", "label: digits_mlp}"),
            ["grid.problem", "digits_mlp repeats"],
        ),
        ("name: x\nseeds: [0]\n", ["problem", "is required"]),
    ],
)
def test_bad_problem_axes_are_refused(workdir: Path, text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_study(write_study(workdir, text))
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


def test_a_plain_value_may_carry_a_label(workdir: Path) -> None:
    text = "name: w\nproblem: digits_mlp\ngrid: {width: [{value: 16, label: narrow}, 64]}\n"
    spec = load_study(write_study(workdir, text))
    assert [(a.label, dict(a.settings)) for a in spec.grid["width"]] == [
        ("narrow", {"width": 16}),
        ("64", {"width": 64}),
    ]
    bad = text.replace("label: narrow", "name: narrow")
    with pytest.raises(ConfigError, match=r"grid.width\[0\].*\{value: \.\.\., label: \.\.\.\}"):
        load_study(write_study(workdir, bad))
    with pytest.raises(ConfigError, match=r"grid.width\[0\].*integer"):
        load_study(write_study(workdir, text.replace("value: 16", "value: wide")))


def test_a_component_arm_may_set_a_problem_setting(workdir: Path) -> None:
    """Claim 10's "more data" arm: regularizer none on the full training set."""
    text = (
        "name: more\nproblem: mnist1d_mlp\nfixed: {train_size: 1000}\n"
        "grid:\n  regularizer: [none, {name: none, label: more-data, train_size: full}]\n"
    )
    spec = load_study(write_study(workdir, text))
    cells = {c.arm_label: c for c in expand(spec)}
    assert cells["none"].problem_kwargs["train_size"] == 1000
    assert cells["more-data"].problem_kwargs["train_size"] == "full"
    with pytest.raises(ConfigError, match=r"grid.regularizer\[1\].train_size: must be an integer"):
        load_study(write_study(workdir, text.replace("train_size: full}", "train_size: 1.5}")))
    with pytest.raises(ConfigError, match=r"regularizer 'none' takes no 'width_factor'"):
        load_study(write_study(workdir, text.replace("train_size: full}", "width_factor: 2}")))


def test_a_cell_whose_problem_does_not_take_a_setting_is_refused_that_cell_only(
    workdir: Path,
) -> None:
    """An MLP's width under ``fixed`` of a study that also trains a CNN: the CNN's cells
    are refused (they would train without it), the MLP's train."""
    spec = load_study(
        write_study(workdir, PROBLEM_AXIS.replace("{epochs: 1}", "{epochs: 1, width: 32}"))
    )
    assert [c.arm_label for c in checked_cells(spec)] == [
        "digits_mlp default",
        "digits_mlp he_normal",
    ]
    assert all(c.settings["width"] == 32 for c in expand(spec))
    why = "problem 'digits_cnn' takes no setting 'width'"
    assert refused(spec) == {"cnn default": why, "cnn he_normal": why}


def test_a_problem_arm_carries_its_own_settings(workdir: Path) -> None:
    text = PROBLEM_AXIS.replace("digits_mlp, {", "{name: digits_mlp, width: 16, label: mlp}, {")
    cells = {c.arm_label: c for c in expand(load_study(write_study(workdir, text)))}
    assert list(cells) == ["mlp default", "mlp he_normal", "cnn default", "cnn he_normal"]
    assert cells["mlp default"].problem_kwargs["width"] == 16
    assert "width" not in cells["cnn default"].settings  # the MLP's setting only
    # its defaults in this study: a fixed setting (a smoke tier's, --set's) beats them
    fixed = text.replace("{epochs: 1}", "{epochs: 1, width: 64}")
    cells = {c.arm_label: c for c in expand(load_study(write_study(workdir, fixed)))}
    assert cells["mlp default"].settings["width"] == 64


def test_an_arm_every_problem_refuses_refuses_the_study(workdir: Path) -> None:
    """A grid value meant for no problem of the study is a mistake, not a refused cell."""
    text = PROBLEM_AXIS.replace("init: [default, he_normal]", "width: [8, 16]").replace(
        "{epochs: 1}", "{epochs: 1, channels: 4}"
    )
    spec = load_study(write_study(workdir, text))  # each setting is some problem's
    with pytest.raises(ConfigError, match=r"grid cell '8'.*takes no setting .*nor does any other"):
        checked_cells(spec)
