"""Plain ``nn.Module`` models assembled from components; no Lightning here."""

from dlbench.models.mlp import MLP

__all__ = ["MLP"]
