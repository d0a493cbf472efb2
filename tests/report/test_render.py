"""The rendered report: every part present, reproducible to the byte, opened in Chromium."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

import dlbench
from browser import Browser
from conftest import GRID_STUDY, uri_of, write_study
from dlbench.errors import ConfigError
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.report import figures
from dlbench.report.render import render

TABLE_FORMATS = ("md", "html", "tex", "csv")


@pytest.fixture(scope="module")
def grid_report(grid_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "grid2"
    render("grid2", out=out, tracking=uri_of(grid_run))
    return out


def test_two_axis_report_has_tables_heatmaps_and_divergence(grid_report: Path) -> None:
    text = (grid_report / "index.md").read_text()
    assert text.startswith("# grid2\n")
    assert "**Provenance.** Study file `" in text and "grid2.yaml` (sha256 `" in text
    assert "12 cells: 8 completed, 4 diverged. Newest run started 20" in text
    assert "torch " in text and "git `" in text and "device " in text
    assert (
        "**Setup.** Problem `digits_mlp`, 2 epochs, seeds 0, 1; varies: optimizer (3), init (2)."
        in text
    )
    assert "**Best:** adam " in text
    for stem in ("results", "comparisons", "unfinished"):
        for fmt in TABLE_FORMATS:
            assert (grid_report / "tables" / f"{stem}.{fmt}").stat().st_size > 100, (stem, fmt)
    for stem in ("curves", "final", "heatmap-optimizer-init", "divergence-optimizer-init", "cost"):
        assert f"](figures/{stem}.png)" in text, stem
        for fmt in figures.FORMATS:
            assert (grid_report / "figures" / f"{stem}.{fmt}").stat().st_size > 1000, (stem, fmt)
    # Diverged cells are shown as such: in the results table and listed with their reason.
    assert "| sgd-hot he_normal | - | - | - | 0 | - | no data | 1.00 | 2 diverged |" in text
    assert text.count("| diverged | 1 | non-finite training loss at step") == 4
    assert "sensitivity.png" not in text and "Search budget" not in text


def test_a_claim_study_report_gives_the_verdict_with_its_evidence(grid_report: Path) -> None:
    text = (grid_report / "index.md").read_text()
    assert "## Claim 3: " in text
    assert (
        "**Claim.** Too large a learning rate fails to descend; it diverges. **Source:** lecture notes 002."
        in text
    )
    assert "**In the literature.** Goyal et al. 2017" in text
    assert (
        "| optimizer=sgd-hot diverges in most seeds | **supported** | diverged in 4 of 4 trained cells |"
        in text
    )
    # sgd-hot never completed: its cells count as the study's worst result, 2 seeds each
    # averaged over the two inits; two epochs leave sgd itself close to that.
    compared = "| optimizer=sgd beats optimizer=sgd-hot on val/acc | **inconclusive** | a - b = +"
    assert compared in text and "2 seeds, each the mean over 2 settings" in text
    assert "4 diverged cells scored as the study's worst result 0." in text
    assert "**Verdict: inconclusive.**" in text and "**Caveat:** Two epochs" in text
    for fmt in TABLE_FORMATS:
        assert (grid_report / "tables" / f"verdicts.{fmt}").is_file()


def test_claims_page_collects_every_claim_study_and_skips_smoke_tiers(
    grid_run: Path, tmp_path: Path
) -> None:
    from dlbench.report.claims import render_claims

    index = render_claims(tmp_path / "claims", uri_of(grid_run))
    text = index.read_text()
    assert text.startswith("# Claims from the lecture notes, put to the test\n")
    assert (
        "| 3 | Too large a learning rate fails to descend; it diverges. | **inconclusive** | grid2 |"
        in text
    )
    assert "Full report: [grid2](grid2/index.md)." in text
    assert "![Claim 3: final result per seed](grid2/figures/final.png)" in text
    assert (tmp_path / "claims" / "grid2" / "figures" / "final.png").is_file()
    assert (tmp_path / "claims" / "tables" / "grid2-verdicts.tex").is_file()
    page = (tmp_path / "claims" / "index.html").read_text()
    assert '<a href="grid2/index.html">grid2</a>' in page
    with Browser() as browser:
        browser.open((tmp_path / "claims" / "index.html").as_uri())
        assert browser.broken_images() == []


def test_rendering_twice_gives_the_same_bytes(
    grid_run: Path, grid_report: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    render("grid2", out=again, tracking=uri_of(grid_run))
    compared = filecmp.dircmp(grid_report, again)
    files = sorted(str(p.relative_to(grid_report)) for p in grid_report.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(grid_report, again, files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) >= 29
    assert compared.left_only == compared.right_only == []


def test_a_failed_render_keeps_the_previous_report(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "tiny"
    render("tiny", out=out, tracking=uri_of(tiny_run))
    before = (out / "index.md").read_text()

    def broken(*args: object) -> None:
        raise RuntimeError("figure failed")

    monkeypatch.setattr(figures, "cost", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        render("tiny", out=out, tracking=uri_of(tiny_run))
    assert (out / "index.md").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no scratch folder left


def test_html_report_opens_in_chromium_with_every_image(grid_report: Path, tmp_path: Path) -> None:
    with Browser() as browser:
        browser.open((grid_report / "index.html").as_uri())
        assert browser.broken_images() == []
        assert browser.evaluate("document.images.length") == 5
        rows = browser.evaluate("document.querySelectorAll('#results tbody tr').length")
        assert rows == 6  # every arm, the diverged ones included
        first = browser.evaluate(
            "document.querySelector('#results tbody td:nth-child(2)').textContent"
        )
        assert first.startswith("adam ")
        shot = browser.screenshot(tmp_path / "screenshot.png")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000


SCALING_STUDY = """\
name: scaling
description: Batch size x lr scaling, one seed, one epoch.
problem: digits_mlp
fixed: {optimizer: sgd, lr: 0.05, base_batch_size: 32, width: 16, depth: 1, epochs: 1}
grid:
  batch_size: [32, full]
  lr_scaling: [none, linear]
seeds: [0]
"""


def test_scaling_study_gets_the_sensitivity_figure(workdir: Path) -> None:
    from dlbench.harness.spec import load_study
    from dlbench.harness.sweep import run_study

    run_study(
        load_study(write_study(workdir, SCALING_STUDY)),
        RunOptions(tracking=uri_of(workdir), devices="cpu"),
    )
    index = render("scaling", out=workdir / "report", tracking=uri_of(workdir))
    text = index.read_text()
    assert (
        "](figures/sensitivity.png)" in text
        and "](figures/heatmap-batch_size-lr_scaling.png)" in text
    )
    frame = dlbench.results("scaling", uri_of(workdir))
    # "full" is resolved to the training set's size, and linear scaling grows lr with it.
    full = frame[frame["batch_size"] == "full"].set_index("lr_scaling")
    assert full["batch_size_effective"].iloc[0] > 32
    assert full.loc["linear", "lr_effective"] == pytest.approx(
        0.05 * full.loc["linear", "batch_size_effective"] / 32
    )


def test_a_study_where_nothing_completed_still_renders(workdir: Path) -> None:
    text = (
        GRID_STUDY.replace("name: grid2", "name: hot")
        .replace("    - {name: sgd, lr: 0.1}\n", "")
        .replace("    - {name: adam, lr: 0.01}\n", "")
        .replace("    - {better: {optimizer: sgd}, than: {optimizer: sgd-hot}}\n", "")
    )
    run_study(
        load_study(write_study(workdir, text)), RunOptions(tracking=uri_of(workdir), devices="cpu")
    )
    page = render("hot", out=workdir / "report", tracking=uri_of(workdir)).read_text()
    assert "4 cells: 4 diverged." in page and "No cell has completed yet." in page
    assert page.count("| diverged | 1 | non-finite training loss") == 4
    assert "## Figures" not in page  # nothing to draw but the table says why
    assert "| optimizer=sgd-hot diverges in most seeds | **supported** |" in page


def test_render_never_replaces_a_folder_that_is_not_a_report(
    tiny_run: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no report"):
        render("tiny", out=tmp_path, tracking=uri_of(tiny_run))
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


WIDTH_SWEEP = """\
name: widths
problem: moons_mlp
fixed: {epochs: 1}
grid:
  width: [2, 4, 8, 16, 32]
seeds: [0, 1]
"""


def test_a_sweep_of_one_numeric_axis_gets_the_along_figure(workdir: Path) -> None:
    """A width sweep (double descent's view): train, val and test accuracy against width."""
    run_study(
        load_study(write_study(workdir, WIDTH_SWEEP)),
        RunOptions(tracking=uri_of(workdir), devices="cpu"),
    )
    index = render("widths", out=workdir / "report", tracking=uri_of(workdir))
    text = index.read_text()
    assert "](figures/along.png)" in text
    assert "Final train/acc, val/acc, test/acc against width" in text
    assert (workdir / "report" / "figures" / "along.svg").is_file()
