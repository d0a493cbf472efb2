"""dlbench: see how training choices behave, one study file at a time.

From Python, ``dlbench.results("optimizers")`` is a study's tidy frame (one row per
planned cell) and ``dlbench.curves("optimizers")`` its per-epoch curves, both read
from MLflow; importing dlbench itself stays light (``dlbench --help`` starts fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"


def results(study: str, tracking: str | None = None) -> pd.DataFrame:
    """A study's runs as one tidy frame; see ``dlbench.report.collect.StudyRuns.frame``."""
    from dlbench.report.collect import results

    return results(study, tracking)


def curves(
    study: str, metrics: list[str] | None = None, tracking: str | None = None
) -> pd.DataFrame:
    """A study's per-epoch curves (long format); see ``dlbench.report.collect.curves``."""
    from dlbench.report.collect import curves

    return curves(study, metrics, tracking)
