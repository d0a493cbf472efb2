"""Claim blocks: parsed against the grid, refused in one line when they name what is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_study
from dlbench.claim import Claim, Expectation
from dlbench.cli import main
from dlbench.harness.spec import load_study

STUDY = """\
name: claimed
problem: digits_mlp
fixed: {epochs: 1}
grid:
  init: [zero, he_normal]
  lr: [0.1, 10]
seeds: [0, 1]
smoke: {grid: {init: [he_normal]}}
claim:
  number: 5
  text: Zero   initialization does not learn.
  source: notes 004
  expect:
%s
"""
GOOD = """\
    - {better: {init: he_normal}, than: {init: zero}}
    - {arm: {init: zero, lr: 0.1}, below: 0.2}
    - {diverges: {lr: 10}}
    - {equivalent: {lr: 0.1, init: he_normal}, to: {init: he_normal, lr: 10}, within: 0.05}
"""


def test_claim_parses_selectors_in_grid_order_and_round_trips_through_json(workdir: Path) -> None:
    spec = load_study(write_study(workdir, STUDY % GOOD))
    claim = spec.claim
    assert (
        claim is not None
        and claim.number == 5
        and claim.text == "Zero initialization does not learn."
    )
    assert claim.expect == (
        Expectation("better", (("init", "he_normal"),), (("init", "zero"),)),
        Expectation("below", (("init", "zero"), ("lr", "0.1")), (), 0.2),
        Expectation("diverges", (("lr", "10"),)),
        Expectation(
            "equivalent",
            (("init", "he_normal"), ("lr", "0.1")),
            (("init", "he_normal"), ("lr", "10")),
            0.05,
        ),
    )
    assert Claim.from_json(claim.to_json()) == claim
    assert claim.expect[0].describe("val/acc") == "init=he_normal beats init=zero on val/acc"


def test_smoke_tier_and_set_keep_the_claim_of_the_full_grid(workdir: Path) -> None:
    path = write_study(workdir, STUDY % GOOD)
    full = load_study(path).claim
    assert load_study(path, smoke=True).claim == full  # the smoke grid lacks init=zero
    assert load_study(path, overrides=["lr=0.1"]).claim == full  # --set removed the lr axis


BAD = {
    "unknown axis": (
        "    - {better: {optim: sgd}, than: {init: zero}}",
        ["claim.expect[0].better.optim", "unknown grid axis", "allowed: init, lr"],
    ),
    "unknown label": (
        "    - {diverges: {lr: 100}}",
        ["claim.expect[0].diverges.lr", "unknown label '100'", "allowed: 0.1, 10"],
    ),
    "different axes": (
        "    - {better: {init: he_normal}, than: {lr: 10}}",
        ["claim.expect[0].than", "same axes"],
    ),
    "self comparison": (
        "    - {better: {lr: 10}, than: {lr: 10}}",
        ["claim.expect[0].than", "with itself"],
    ),
    "two bounds": (
        "    - {arm: {lr: 10}, above: 0.1, below: 0.5}",
        ["claim.expect[0]", "exactly one of `above:` or `below:`"],
    ),
    "two kinds": (
        "    - {diverges: {lr: 10}, better: {lr: 10}}",
        ["claim.expect[0]", "must be exactly one of"],
    ),
    "missing than": ("    - {better: {lr: 10}}", ["claim.expect[0]", "better needs `than:`"]),
    "missing margin": (
        "    - {equivalent: {lr: 10}, to: {lr: 0.1}}",
        ["claim.expect[0]", "equivalent needs `within:`"],
    ),
    "arm without a bound": (
        "    - {arm: {lr: 10}}",
        ["claim.expect[0]", "exactly one of `above:`"],
    ),
    "infinite threshold": (
        "    - {arm: {lr: 10}, above: .inf}",
        ["claim.expect[0].above", "finite"],
    ),
    "stray key": (
        "    - {diverges: {lr: 10}, than: {lr: 0.1}}",
        ["claim.expect[0]", "diverges takes diverges", "'than'"],
    ),
    "margin not positive": (
        "    - {equivalent: {lr: 10}, to: {lr: 0.1}, within: 0}",
        ["claim.expect[0].within", "> 0"],
    ),
    "threshold not a number": (
        "    - {arm: {lr: 10}, above: high}",
        ["claim.expect[0].above", "number"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_claim_is_refused_in_one_line_with_exit_2(
    case: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line, expected = BAD[case]
    path = write_study(workdir, STUDY % line, "bad.yaml")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    for fragment in expected:
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("  nmber: 5", ["claim.nmber", "did you mean number"]),
        ("  number: 0", ["claim.number", ">= 1"]),
        ("  text: ''", ["claim.text", "non-empty"]),
        ("  expect: []", ["claim.expect", "non-empty list", "better, equivalent, diverges"]),
    ],
)
def test_bad_claim_fields_are_refused(
    block: str, expected: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (STUDY % GOOD) + block + "\n"  # a later key overrides or adds one
    assert main(["validate", str(write_study(workdir, text, "bad.yaml"))]) == 2
    err = capsys.readouterr().err
    for fragment in expected:
        assert fragment in err, (fragment, err)
