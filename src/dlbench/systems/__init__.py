"""LightningModules: systems built from plain ``nn.Module``s (Lightning's rule).

One engine (``training.TrainingSystem``) trains K >= 1 cells as members of a stack.
"""

from dlbench.systems.training import Member, PretextNet, TrainingSystem

__all__ = ["Member", "PretextNet", "TrainingSystem"]
