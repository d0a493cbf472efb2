"""``reports/claims/``: every claim study's report, and one page that collects the verdicts.

The page is meant for a lecture: per claim, the claim in the notes' words, where it comes
from (and a paper's headline number where there is one), the setup, the verdict with the
numbers behind it, and the figure of the final result per seed. Everything comes from MLflow:
a claim study is any study whose parent run carries a claim (``records.CLAIM``); smoke tiers
(``<name>_smoke``) are left out, they are too small to judge by.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from dlbench.errors import ConfigError
from dlbench.report import collect, tables
from dlbench.report.collect import StudyRuns
from dlbench.report.document import Block, Figure, Heading, Paragraph, TableBlock, markdown, to_html
from dlbench.report.render import REPORTS_DIR, Report, write

CLAIMS_DIR = REPORTS_DIR / "claims"
HOW_TO_READ = (
    "Each claim from the lecture notes is a study: arms that the claim says should differ, "
    "several seeds each, on an embedded dataset small enough to run on a laptop CPU. A claim "
    "states expectations over its arms, each judged by a Student-t 95% interval over seeds "
    "(one value per seed; a diverged cell counts as the study's worst result). "
    "**supported**: every interval lies on the claimed side (a comparison's excludes 0 in "
    "the claimed direction; for 'diverges', most seeds diverged). **contradicted**: some "
    "interval lies wholly on the other side. **inconclusive**: an interval straddles the "
    "line: this setting and these seeds cannot tell. A verdict is about this small setting; "
    "where it cannot show an effect the papers report at scale, the caveat says so."
)


def claim_studies(tracking: str | None = None) -> list[StudyRuns]:
    """The studies with a claim and runs in MLflow, smoke tiers left out, by claim number."""
    found = [StudyRuns(name, tracking) for name in collect.studies(tracking)]
    claimed = [r for r in found if r.claim and not r.study.endswith("_smoke")]
    return sorted(claimed, key=lambda r: (r.claim.number, r.study))  # type: ignore[union-attr]


def _section(report: Report, folder: Path) -> list[Block]:
    """One claim's part of the index, pointing into its own report in ``folder``."""
    claim, study = report.runs.claim, report.runs.study
    assert claim is not None
    verdicts = tables.verdicts(report.verdicts, report.label)
    table = dataclasses.replace(verdicts, name=f"{study}-verdicts")
    table.write(folder / "tables", table.name)
    blocks: list[Block] = [
        Heading(f"Claim {claim.number}: {report.verdict}"),
        Paragraph(f"**{claim.text}** Source: {claim.source}."),
        Paragraph(f"**Setup.** {report.setup()} Full report: [{study}]({study}/index.md)."),
        TableBlock(table, "tables"),
    ]
    if claim.paper:
        blocks.append(Paragraph(f"**In the literature.** {claim.paper}"))
    if claim.caveat:
        blocks.append(Paragraph(f"**Caveat.** {claim.caveat}"))
    if report.shown:
        blocks.append(
            Figure(
                f"{study}/figures/final.png",
                f"{report.label} per arm, one dot per seed, bar: mean with 95% bootstrap CI.",
                f"Claim {claim.number}: final result per seed",
            )
        )
    return blocks


def render_claims(out: Path = CLAIMS_DIR, tracking: str | None = None) -> Path:
    """Render every claim study into ``out/<study>/`` and the index; returns ``index.md``."""
    reports = [write(runs, out / runs.study) for runs in claim_studies(tracking)]
    if not reports:
        raise ConfigError(
            "no claim study has runs in the tracking store yet; run them with `make bench-claims`"
        )
    data = pd.DataFrame(
        [(r.runs.claim.number, r.runs.claim.text, r.verdict, r.runs.study) for r in reports],  # type: ignore[union-attr]
        columns=["claim", "statement", "verdict", "study"],
    )
    summary = tables.Table(
        "summary",
        "Every claim and its verdict on the embedded data.",
        data,
        data.astype(str),
        bold=frozenset((i, "verdict") for i in range(len(data))),
        right=frozenset({"claim"}),
    )
    summary.write(out / "tables", "claims-summary")
    blocks: list[Block] = [
        Heading("Claims from the lecture notes, put to the test", 1),
        Paragraph(HOW_TO_READ),
        TableBlock(summary, "tables"),
    ]
    for report in reports:
        blocks += _section(report, out)
    (out / "index.md").write_text(markdown(blocks))
    (out / "index.html").write_text(to_html(blocks, "dlbench claims"))
    return out / "index.md"
