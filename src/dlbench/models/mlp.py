"""The multilayer perceptron: ``depth`` hidden blocks of Linear -> norm -> activation."""

from __future__ import annotations

from torch import Tensor, nn

from dlbench.components import ACTIVATIONS, INITIALIZERS, NORMS
from dlbench.components.initializers import initialize


class MLP(nn.Module):
    """An MLP whose every training choice is a component name.

    ``depth`` counts hidden layers (0 gives a linear/softmax model). The norm sits
    between the linear map and the activation, as in Ioffe & Szegedy (2015).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        width: int = 64,
        depth: int = 2,
        activation: str = "relu",
        norm: str = "none",
        init: str = "default",
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = in_features
        for _ in range(depth):
            layers += [
                nn.Linear(fan_in, width),
                NORMS.create(norm, width, 1),
                ACTIVATIONS.create(activation),
            ]
            fan_in = width
        layers.append(nn.Linear(fan_in, out_features))
        self.net = nn.Sequential(*layers)
        initialize(self, INITIALIZERS.create(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
