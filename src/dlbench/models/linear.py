"""Linear models: an MLP of depth 0, named for what they are fitted with.

Each is ``MLP(in_features, out_features, depth=0)``, i.e. ``Flatten -> Linear``, so
there is one way to build a linear layer; the classes only fix the output size and
say which loss they pair with. Outputs are always 2-D ``(N, out_features)``: a
regression or logistic target must be shaped ``(N, 1)`` (floating point).
"""

from __future__ import annotations

from torch import nn

from dlbench.models.mlp import MLP
from dlbench.registry import Named


class _LinearModel(MLP):
    def __init__(self, in_features: int, out_features: int, *, init: Named):
        super().__init__(in_features, out_features, depth=0, init=init)

    @property
    def linear(self) -> nn.Linear:
        """The model's only layer: ``y = x W^T + b``."""
        return self.net[-1]


class LinearRegression(_LinearModel):
    """``y = x W^T + b`` with ``out_features`` outputs; pairs with ``nn.MSELoss``."""

    def __init__(self, in_features: int, out_features: int = 1, *, init: Named = "default"):
        super().__init__(in_features, out_features, init=init)


class LogisticRegression(_LinearModel):
    """One logit ``z = x w + b``, ``P(y=1|x) = sigmoid(z)``; pairs with ``nn.BCEWithLogitsLoss``.

    The output is the logit, not the probability: BCE-with-logits applies the sigmoid
    inside the loss, which is numerically stable.
    """

    def __init__(self, in_features: int, *, init: Named = "default"):
        super().__init__(in_features, 1, init=init)


class SoftmaxRegression(_LinearModel):
    """``num_classes`` logits ``z = x W^T + b``, ``P(y|x) = softmax(z)``; pairs with ``nn.CrossEntropyLoss``.

    Multinomial logistic regression. As with ``LogisticRegression`` the output is the
    logits; cross-entropy applies the (log-)softmax.
    """

    def __init__(self, in_features: int, num_classes: int, *, init: Named = "default"):
        super().__init__(in_features, num_classes, init=init)
