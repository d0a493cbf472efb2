"""Published reference values in a study file: checked against its arms and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_study
from dlbench.errors import ConfigError
from dlbench.harness.spec import load_study
from dlbench.records import Reference, references_json

STUDY = """\
name: refs
problem: digits_mlp
grid:
  optimizer: [sgd, adam]
  width: [{value: 16, label: narrow}, 64]
seeds: [0]
smoke: {grid: {width: [64]}}
reference:
  - {arm: adam narrow, value: 0.95, metric: test/acc, source: "A paper, Table 1"}
  - {arm: sgd 64, value: 0.5, metric: val/loss, source: "Lecture 3"}
"""


def test_references_name_arms_and_survive_the_smoke_tier(workdir: Path) -> None:
    path = write_study(workdir, STUDY)
    expected = (
        Reference("adam narrow", "test/acc", 0.95, "A paper, Table 1"),
        Reference("sgd 64", "val/loss", 0.5, "Lecture 3"),
    )
    assert load_study(path).references == expected
    # The smoke tier drops the narrow arm; the references still hold (that arm: no data).
    assert load_study(path, smoke=True).references == expected
    assert json.loads(references_json(expected))[0] == {
        "arm": "adam narrow",
        "metric": "test/acc",
        "value": 0.95,
        "source": "A paper, Table 1",
    }
    assert load_study(write_study(workdir, STUDY.split("reference:")[0])).references == ()


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        ("arm: adam narrow", "arm: adam wide", ["reference[0].arm", "unknown arm 'adam wide'"]),
        ("metric: test/acc", "metric: test/f1", ["reference[0].metric", "test/acc"]),
        ("value: 0.95", "value: high", ["reference[0].value", "must be a number"]),
        ('source: "Lecture 3"', 'source: " "', ["reference[1].source", "where the value"]),
        (
            'arm: sgd 64, value: 0.5, metric: val/loss, source: "Lecture 3"',
            'arm: adam narrow, value: 0.5, metric: test/acc, source: "A paper, Table 1"',
            ["reference[1]", "repeats arm 'adam narrow', metric 'test/acc' and source"],
        ),
        (', source: "Lecture 3"', "", ["reference[1]", "exactly arm, value, metric, source"]),
    ],
)
def test_bad_references_are_refused(
    workdir: Path, old: str, new: str, fragments: list[str]
) -> None:
    assert old in STUDY
    with pytest.raises(ConfigError) as err:
        load_study(write_study(workdir, STUDY.replace(old, new)))
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))
