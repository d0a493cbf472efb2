"""Every study file in ``studies/``: its smoke tier trains end to end and renders a report.

Validation of every file (parse, names, every cell built) is in the default run
(``test_cli.py``); running them is ``slow`` (``make test-slow``), and the GPU tier, which
downloads MNIST / Fashion-MNIST / CIFAR-10, is ``gpu`` (``make test-gpu``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import uri_of
from dlbench.harness.grid import expand
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import StudySpec, load_study
from dlbench.harness.sweep import run_study
from dlbench.report import collect
from dlbench.report.render import render

STUDIES = Path(__file__).resolve().parents[1] / "studies"
EMBEDDED = sorted(p for p in STUDIES.rglob("*.yaml") if "gpu" not in p.parts)
GPU_TIER = sorted((STUDIES / "gpu").glob("*.yaml"))


def _smoke(path: Path, folder: Path, devices: str) -> None:
    spec = load_study(path, smoke=True)
    for source in _encoder_studies(spec):  # transfer studies load a pretext study's encoders
        pretext = load_study(STUDIES / f"{source.removesuffix('_smoke')}.yaml", smoke=True)
        assert pretext.name == source, f"{path.name} reads encoders of {source}"
        run_study(pretext, RunOptions(tracking=uri_of(folder), devices=devices))
    run_study(spec, RunOptions(tracking=uri_of(folder), devices=devices))
    frame = collect.results(spec.name, uri_of(folder))
    unfinished = frame[~frame["outcome"].isin(["completed", "diverged"])]
    assert unfinished.empty, unfinished[["arm", "seed", "outcome", "error"]].to_string()
    index = render(spec.name, out=folder / "report", tracking=uri_of(folder))
    assert index.read_text().startswith(f"# {spec.name}\n")
    if spec.claim:
        assert f"## Claim {spec.claim.number}: " in index.read_text()


def _encoder_studies(spec: StudySpec) -> set[str]:
    return {
        cell.settings["encoder_study"]
        for cell in expand(spec)
        if cell.settings.get("encoder", "random") != "random"
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", EMBEDDED, ids=lambda p: str(p.relative_to(STUDIES)))
def test_smoke_tier_runs_and_reports(path: Path, workdir: Path) -> None:
    _smoke(path, workdir, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("path", GPU_TIER, ids=lambda p: str(p.relative_to(STUDIES)))
def test_gpu_tier_smoke_runs_and_reports(path: Path, workdir: Path) -> None:
    _smoke(path, workdir, "auto")
