"""Plugins: a user's optimizer in a file outside dlbench, named by a study, trained by one
and by two worker processes, recorded with its sha256; a broken plugin is one line.

Each run is a real `dlbench` process, so the plugin's registration never leaks into the
registries this test process shares with the contract tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import write_study
from dlbench import plugins
from dlbench.errors import ConfigError

SIGN_SGD = """\
import torch

from dlbench.components.optimizers import OPTIMIZERS


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


@OPTIMIZERS.register("signsgd", description="p -= lr * sign(g)")
def signsgd(params, /, *, lr: float):
    return SignSGD(params, lr)
"""

STUDY = """\
name: mine
problem: moons_mlp
plugins: [plugins/sign_sgd.py]
fixed: {epochs: 2, lr: 0.01, width: 8}
grid:
  optimizer: [sgd, signsgd]
seeds: [0, 1]
"""


def dlbench(
    folder: Path, *argv: str, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A `dlbench` process in ``folder``, its store the folder's own mlflow.db (and
    ``pythonpath`` first on its import path)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "dlbench.cli", *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture
def study(tmp_path: Path) -> Path:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "sign_sgd.py").write_text(SIGN_SGD)
    return write_study(tmp_path, STUDY, "mine.yaml")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_plugin_optimizer_runs_and_is_recorded(study: Path, workers: int) -> None:
    folder = study.parent
    done = dlbench(folder, "run", "mine.yaml", "--workers", str(workers))
    assert done.returncode == 0, done.stderr[-2000:]
    sha = hashlib.sha256((folder / "plugins" / "sign_sgd.py").read_bytes()).hexdigest()
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mine")
    runs = client.search_runs([experiment.experiment_id], "tags.`dlbench.role` = 'cell'")
    optimizers = sorted(run.data.params["optimizer"] for run in runs)
    assert optimizers == ["sgd", "sgd", "signsgd", "signsgd"]
    assert {run.data.tags["dlbench.outcome"] for run in runs} == {"completed"}
    recorded = [json.loads(run.data.tags["dlbench.plugins"]) for run in runs]
    assert recorded == [[{"path": "plugins/sign_sgd.py", "sha256": sha}]] * 4
    # sign descent is not SGD: the two optimizers end at different losses
    loss = {run.data.params["optimizer"]: run.data.metrics["train/loss"] for run in runs}
    assert loss["sgd"] != pytest.approx(loss["signsgd"])
    report = dlbench(folder, "report", "mine")
    assert report.returncode == 0, report.stderr[-2000:]
    page = (folder / "reports" / "mine" / "index.md").read_text()
    assert f"Plugins: `plugins/sign_sgd.py` (sha256 `{sha[:12]}`)." in page
    assert "| signsgd |" in page


@pytest.mark.parametrize(
    ("plugin", "words"),
    [
        ("def broken(:\n", "sign_sgd.py: plugin failed to load at line 1: SyntaxError"),
        (
            "import torch\nraise RuntimeError('no')\n",
            "sign_sgd.py: plugin failed to load at line 2: RuntimeError: no",
        ),
        (
            "from dlbench.components.optimizers import OPTIMIZERS\n"
            "OPTIMIZERS.register('sgd', description='x')(lambda params, /, *, lr: None)\n",
            "ValueError: optimizer 'sgd' is registered twice",
        ),
    ],
)
def test_a_broken_plugin_is_one_line_exit_2_and_writes_nothing(
    study: Path, plugin: str, words: str
) -> None:
    folder = study.parent
    (folder / "plugins" / "sign_sgd.py").write_text(plugin)
    before = sorted(folder.rglob("*"))
    done = dlbench(folder, "run", "mine.yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("dlbench: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert words in done.stderr, done.stderr
    assert sorted(p for p in folder.rglob("*") if "__pycache__" not in p.parts) == before


def test_a_missing_plugin_file_names_the_key(study: Path) -> None:
    (study.parent / "plugins" / "sign_sgd.py").unlink()
    done = dlbench(study.parent, "validate", "mine.yaml")
    assert done.returncode == 2
    assert "mine.yaml: plugins: no such Python file" in done.stderr, done.stderr


def test_an_installed_package_registers_through_its_entry_point(study: Path) -> None:
    """A package's `dlbench.plugins` entry point is imported when a study is read."""
    site = study.parent / "site"
    (site / "sign_sgd_pkg-1.0.dist-info").mkdir(parents=True)
    (site / "sign_sgd_pkg-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sign-sgd-pkg\nVersion: 1.0\n"
    )
    (site / "sign_sgd_pkg-1.0.dist-info" / "entry_points.txt").write_text(
        "[dlbench.plugins]\nsign_sgd = sign_sgd_pkg\n"
    )
    (site / "sign_sgd_pkg.py").write_text(SIGN_SGD)
    text = study.read_text().replace("plugins: [plugins/sign_sgd.py]\n", "")
    study.write_text(text)
    done = dlbench(study.parent, "validate", "mine.yaml")
    assert done.returncode == 2 and "unknown optimizer 'signsgd'" in done.stderr, done.stderr
    done = dlbench(study.parent, "validate", "mine.yaml", pythonpath=site)
    assert done.returncode == 0, done.stderr
    assert "study 'mine', 4 cells" in done.stdout


def test_a_broken_entry_point_fails_every_study_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported once per process, a broken entry point is not skipped on the next read."""

    class Broken:
        name, value = "broken", "no_such_module"

        def load(self) -> None:
            raise ModuleNotFoundError("No module named 'no_such_module'")

    monkeypatch.setattr(plugins, "entry_points", lambda group: [Broken()])
    monkeypatch.setattr(plugins, "_installed_loaded", False)
    monkeypatch.setattr(plugins, "_installed_error", None)
    for _ in range(2):
        with pytest.raises(ConfigError, match="entry point broken = no_such_module: plugin failed"):
            plugins.load_installed()


REPO = Path(__file__).resolve().parents[1]


def make(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The repository's Makefile run in ``folder`` (its own runs/, mlflow.db, reports/),
    with the repository's installed .venv."""
    for shared in ("pyproject.toml", "studies"):
        if not (folder / shared).exists():
            (folder / shared).symlink_to(REPO / shared)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MAKEFLAGS")}
    return subprocess.run(
        ["make", "-s", "-f", str(REPO / "Makefile"), f"VENV={REPO / '.venv'}", *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_make_bench_my_optimizer_adds_the_plugins_optimizers_to_the_benchmark(
    tmp_path: Path,
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "sign_sgd.py").write_text(SIGN_SGD)
    # The smoke tier with two of the seven built-ins: the four problems, one seed, two trials.
    small = "ARGS=--smoke --set grid.optimizer=[sgd,adam]"
    done = make(tmp_path, "bench-my-optimizer", "PLUGIN=mine/sign_sgd.py", small)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "with signsgd" in done.stdout
    import dlbench as api

    frame = api.results("optimizer_benchmark_smoke", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert list(frame["optimizer"].unique()) == ["sgd", "adam", "signsgd"]
    assert frame["problem"].nunique() == 4 and (frame["outcome"] == "completed").all()
    report = tmp_path / "reports" / "optimizer_benchmark_smoke"
    page = (report / "index.md").read_text()
    sha = hashlib.sha256(SIGN_SGD.encode()).hexdigest()
    assert "signsgd" in page and sha[:12] in page
    for figure in ("profile", "lr_sensitivity", "tuneability"):
        assert f"figures/{figure}.png" in page and (report / "figures" / f"{figure}.png").is_file()
    scores = (report / "tables" / "scores.csv").read_text()
    assert "signsgd" in scores


def test_make_bench_my_optimizer_without_a_plugin_says_how(tmp_path: Path) -> None:
    done = make(tmp_path, "bench-my-optimizer")
    assert done.returncode == 2 and "give PLUGIN=path/to/my_optim.py" in done.stderr
    (tmp_path / "empty.py").write_text("x = 1\n")
    done = make(tmp_path, "bench-my-optimizer", "PLUGIN=empty.py")
    assert done.returncode == 2 and "empty.py registers no optimizer" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing written
