"""LightningModules: systems built from plain ``nn.Module``s (Lightning's rule)."""

from dlbench.systems.pretext import PretextSystem
from dlbench.systems.supervised import SupervisedSystem

__all__ = ["PretextSystem", "SupervisedSystem"]
