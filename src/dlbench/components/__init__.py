"""Component families, one module and one registry each.

Importing this package registers every member, so ``FAMILIES`` is the complete
catalogue that `dlbench list` prints and study files are validated against.
"""

from __future__ import annotations

from dlbench.components.activations import ACTIVATIONS
from dlbench.components.initializers import INITIALIZERS
from dlbench.components.norms import NORMS
from dlbench.components.optimizers import OPTIMIZERS
from dlbench.registry import Registry

# Study-file key -> registry. The key is what a study file writes (`init: he_normal`).
FAMILIES: dict[str, Registry] = {
    "optimizer": OPTIMIZERS,
    "init": INITIALIZERS,
    "norm": NORMS,
    "activation": ACTIVATIONS,
}

__all__ = ["ACTIVATIONS", "FAMILIES", "INITIALIZERS", "NORMS", "OPTIMIZERS"]
