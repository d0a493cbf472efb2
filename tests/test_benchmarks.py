"""The GPU check's script runs every path on a CPU (--dry-run), so it works when a GPU comes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about a minute: three models, two stack sizes, two precisions, a sweep
def test_the_gpu_check_runs_every_path_on_a_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    script = ROOT / "benchmarks" / "gpu_check.sh"
    subprocess.run([str(script), "--dry-run"], cwd=tmp_path, env=env, check=True)
    table = (tmp_path / "gpu_results.md").read_text()
    for model in ("mnist1d_mlp", "mnist1d_cnn", "cifar10_resnet"):
        for precision in ("32-true", "bf16-mixed"):
            assert f"| {model} | 2 | {precision} | no |" in table
    assert "| mnist1d_mlp, --stack auto | 1 | 7 |" in table  # the sweep's smoke tier
