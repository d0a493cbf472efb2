"""Named problems: data + model + default loss, metric and budget (DeepOBS "test problems").

One registry, ``PROBLEMS``; importing this package registers every problem, one module
per data source.
"""

from dlbench.problems import digits, mnist1d, synthetic, vision  # noqa: F401  (registers them)
from dlbench.problems.base import PROBLEMS, Setup

__all__ = ["PROBLEMS", "Setup"]
