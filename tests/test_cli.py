"""The `dlbench` command: help that teaches, list, validate, and the end-to-end spine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY_STUDY, uri_of, write_study
from dlbench.arguments import build_parser
from dlbench.cli import main
from dlbench.components import FAMILIES
from dlbench.problems import PROBLEMS

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_command_with_examples() -> None:
    text = build_parser().format_help()
    for command in ("run", "report", "list", "validate", "ui"):
        assert command in text
    assert "examples:" in text and "dlbench run optimizers" in text


def test_help_starts_without_importing_torch() -> None:
    code = "import sys; from dlbench.arguments import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_prints_every_registered_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for registry in [*FAMILIES.values(), PROBLEMS]:
        for name in registry.names():
            assert f"  {name} " in out
    assert main(["list", "optimizers"]) == 0
    assert "adamw" in capsys.readouterr().out
    assert main(["list", "optimiser"]) == 2
    assert "did you mean optimizer" in capsys.readouterr().err


def test_validate_every_study_in_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    studies = sorted(str(p) for p in (REPO / "studies").rglob("*.yaml"))
    assert studies
    assert main(["validate", *studies]) == 0
    assert main(["validate", "--smoke", *studies]) == 0
    assert capsys.readouterr().out.count("ok ") == 2 * len(studies)


def test_run_then_report_end_to_end(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(workdir, TINY_STUDY)
    uri = ["--tracking-uri", uri_of(workdir)]
    assert main(["run", str(path), "--smoke", "--devices", "cpu", *uri]) == 0
    err = capsys.readouterr().err
    assert "tiny_smoke: 2 cells" in err and "2/2" in err
    assert main(["report", "tiny_smoke", *uri]) == 0
    assert "reports/tiny_smoke/index.md" in capsys.readouterr().out
    assert (workdir / "reports" / "tiny_smoke" / "figures" / "curves.png").exists()
    assert (workdir / "reports" / "tiny_smoke" / "index.html").exists()
    assert main(["report", "--all", "--out", str(workdir / "all"), *uri]) == 0
    assert (workdir / "all" / "tiny_smoke" / "tables" / "results.tex").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["report"], "give study names, --all or --claims (one of them)"),
        (["report", "tiny", "--all"], "give study names, --all or --claims (one of them)"),
        (["report", "tiny", "--claims"], "--claims renders the claim studies; drop the rest"),
        (["report", "--claims"], "no claim study has runs in the tracking store yet"),
        (["report", "nosuch"], "unknown study 'nosuch'"),
        (["report", "--all"], "no study has runs in the tracking store yet"),
    ],
)
def test_report_refuses_bad_arguments_in_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    MlflowClient(uri_of(workdir)).search_experiments()  # an empty store, created
    assert main([*argv, "--tracking-uri", uri_of(workdir)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (workdir / "reports").exists()


NOT_UTF8 = b"name: tiny\ndescription: caf\xe9\nproblem: digits_mlp\n"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["validate", "latin1.yaml"], "latin1.yaml: not UTF-8 text: byte 0xe9 at line 2"),
        (["run", "latin1.yaml"], "latin1.yaml: not UTF-8 text: byte 0xe9 at line 2"),
        (["run", "study.yaml", "--storage", "foo://x"], "--storage: must be a database URL"),
        (["status", "study.yaml", "--storage", "redis://x"], "schemes: postgresql, mysql, sqlite"),
        (["run", "study.yaml", "--storage", "postgresql://u@127.0.0.1:1/x"], "cannot open"),
        (["report", "tiny"], "no MLflow store at mlflow.db (sqlite:///mlflow.db)"),
        (["report", "--all"], "no MLflow store at mlflow.db"),
        (["report", "--claims"], "no MLflow store at mlflow.db"),
        (["status", "nosuch"], "unknown study 'nosuch'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    (workdir / "latin1.yaml").write_bytes(NOT_UTF8)
    write_study(workdir, TINY_STUDY)
    before = sorted(workdir.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlbench: error: ") and words in err and err.count("\n") == 1, err
    assert sorted(workdir.rglob("*")) == before  # no mlflow.db, no runs/, no reports/
