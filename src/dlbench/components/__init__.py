"""Component families, one module and one registry each.

Importing this package registers every member, so ``FAMILIES`` is the complete
catalogue that `dlbench list` prints and study files are validated against.
"""

from __future__ import annotations

from dlbench.components import signal_augmentations  # noqa: F401 (registers the 1-D entries)
from dlbench.components.activations import ACTIVATIONS
from dlbench.components.augmentations import AUGMENTATIONS
from dlbench.components.initializers import INITIALIZERS
from dlbench.components.losses import LOSSES
from dlbench.components.norms import NORMS
from dlbench.components.optimizers import OPTIMIZERS
from dlbench.components.preprocessing import PREPROCESSING
from dlbench.components.pretext import PRETEXTS
from dlbench.components.regularizers import REGULARIZERS
from dlbench.components.schedules import LR_SCALING, SCHEDULES
from dlbench.registry import Registry

# Study-file key -> registry. The key is what a study file writes (`init: he_normal`).
FAMILIES: dict[str, Registry] = {
    "optimizer": OPTIMIZERS,
    "init": INITIALIZERS,
    "norm": NORMS,
    "activation": ACTIVATIONS,
    "loss": LOSSES,
    "regularizer": REGULARIZERS,
    "schedule": SCHEDULES,
    "lr_scaling": LR_SCALING,
    "augmentation": AUGMENTATIONS,
    "preprocessing": PREPROCESSING,
    "pretext": PRETEXTS,
}

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATIONS",
    "FAMILIES",
    "INITIALIZERS",
    "LOSSES",
    "LR_SCALING",
    "NORMS",
    "OPTIMIZERS",
    "PREPROCESSING",
    "PRETEXTS",
    "REGULARIZERS",
    "SCHEDULES",
]
