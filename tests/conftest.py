"""Shared fixtures: a scratch working directory and a tiny study trained once per session."""

from __future__ import annotations

import os
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from postgres_server import postgres_url  # noqa: F401  (a session fixture, registered here)
from slurm_cluster import slurm_env  # noqa: F401  (likewise)

TINY_STUDY = """\
name: tiny
description: Two optimizers, two seeds, two epochs on the digits MLP.
problem: digits_mlp
fixed: {init: he_normal, width: 16, depth: 1, epochs: 2, batch_size: 128}
grid:
  optimizer:
    - {name: sgd, lr: 0.1}
    - {name: adam, lr: 0.01}
seeds: [0, 1]
smoke: {epochs: 1, seeds: [0]}
"""


GRID_STUDY = """\
name: grid2
description: Optimizer x initializer on the digits MLP, with one learning rate that diverges.
problem: digits_mlp
fixed: {width: 16, depth: 1, epochs: 2, batch_size: 128}
grid:
  optimizer:
    - {name: sgd, lr: 0.1}
    - {name: sgd, lr: 50.0, label: sgd-hot}
    - {name: adam, lr: 0.01}
  init: [he_normal, xavier_normal]
seeds: [0, 1]
claim:
  number: 3
  text: Too large a learning rate fails to descend; it diverges.
  source: lecture notes 002
  paper: "Goyal et al. 2017: without warmup, large scaled learning rates diverge early."
  caveat: Two epochs of a one-layer network.
  expect:
    - {diverges: {optimizer: sgd-hot}}
    - {better: {optimizer: sgd}, than: {optimizer: sgd-hot}}
"""

ACROSS_STUDY = """\
name: across
description: Optimizers tuned per problem on two digits problems; one arm only the MLP takes.
grid:
  problem:
    - {name: digits_mlp, width: 16, depth: 1, label: mlp}
    - {name: digits_cnn, channels: 4, label: cnn}
  optimizer:
    - sgd
    - {name: momentum, momentum: 0.9}
    - adam
    - {name: adam, label: adam-wide, width: 32}
fixed: {epochs: 2, batch_size: 128}
search: {trials: 2, params: {lr: {low: 0.001, high: 0.3, log: true}}}
seeds: [0, 1]
"""


def write_study(folder: Path, text: str, name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so runs/, mlflow.db and reports/ land in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny study run once to completion with the real harness; yields its folder."""
    yield from _trained(tmp_path_factory, TINY_STUDY, "tiny")


@pytest.fixture(scope="session")
def grid_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A two-axis study (3 optimizers x 2 inits x 2 seeds) whose sgd-hot arm diverges."""
    yield from _trained(tmp_path_factory, GRID_STUDY, "grid2")


@pytest.fixture(scope="session")
def across_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A search study across two problems (4 optimizers x 2 seeds x 2 trials each), whose
    adam-wide arm sets a width the CNN does not take: those cells are refused."""
    yield from _trained(tmp_path_factory, ACROSS_STUDY, "across")


def _trained(factory: pytest.TempPathFactory, text: str, name: str) -> Iterator[Path]:
    from dlbench.harness.options import RunOptions
    from dlbench.harness.spec import load_study
    from dlbench.harness.sweep import run_study

    folder = factory.mktemp(name)
    old = Path.cwd()
    os.chdir(folder)
    try:
        spec = load_study(write_study(folder, text, f"{name}.yaml"))
        run_study(spec, RunOptions(tracking=uri_of(folder), devices="cpu"))
        yield folder
    finally:
        os.chdir(old)


def copy_store(source: Path, target: Path) -> None:
    """Copy ``source``'s MLflow store into ``target`` with SQLite's backup, which sees
    what the write-ahead log still holds (a file copy may not)."""
    origin, copy = sqlite3.connect(source / "mlflow.db"), sqlite3.connect(target / "mlflow.db")
    try:
        origin.backup(copy)
    finally:
        origin.close()
        copy.close()


def uri_of(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"
