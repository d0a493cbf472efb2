"""The multilayer perceptron: ``depth`` hidden blocks of Linear -> norm -> activation.

With ``residual=True`` every hidden block after the first adds its input back,
``h + block(h)`` (all hidden widths are equal, so the shapes match): the MNIST-1D
paper's MLP (Greydanus & Kobak) is ``MLP(40, 10, width=100, depth=2, residual=True)``.

Gated activations (glu, swiglu, geglu; ``ACTIVATIONS`` flag ``gated``) replace the
Linear and the activation of a block by one gated unit ``act(xW) * (xV)``, which has
two projections. To compare like with like, a gated MLP gets a smaller hidden width,
``gated_width``: the width whose parameter count is closest to the ungated MLP's of
the same nominal ``width`` and ``depth``. This is Shazeer's (2020) "hidden width
x 2/3" rule made exact for any shape: for one hidden layer with in = out it gives
2/3 of the width; for the default digits MLP (64 -> 64 -> 64 -> 10) it gives 40
(8,890 parameters against 8,970), where 2/3 (43) would give 9,814 (+9%).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dlbench.components import ACTIVATIONS, INITIALIZERS, NORMS
from dlbench.components.activations import is_gated
from dlbench.components.initializers import initialize
from dlbench.errors import ConfigError
from dlbench.models.common import check_dropout
from dlbench.registry import Named


def linear_params(in_features: int, out_features: int, widths: Sequence[int], gated: bool) -> int:
    """Weights and biases of the Linear layers of an MLP with hidden ``widths``.

    A gated hidden layer has two projections, so twice an ungated one's parameters.
    Norm parameters (at most 2 per hidden unit) are not counted.
    """
    total, fan_in = 0, in_features
    for width in widths:
        total += (2 if gated else 1) * (fan_in * width + width)
        fan_in = width
    return total + fan_in * out_features + out_features


def gated_width(in_features: int, out_features: int, width: int, depth: int) -> int:
    """The gated hidden width with the parameter count closest to the ungated MLP's.

    ``argmin over 1 <= h <= width of |P_gated(h) - P(width)|`` (ties: the smaller h),
    ``P`` counting Linear weights and biases (``linear_params``). For depth 0 there is
    no hidden layer and the width is returned unchanged.
    """
    if depth == 0:
        return width
    target = linear_params(in_features, out_features, [width] * depth, gated=False)
    return min(
        range(1, width + 1),
        key=lambda h: (
            abs(linear_params(in_features, out_features, [h] * depth, gated=True) - target),
            h,
        ),
    )


def hidden_blocks(
    in_features: int,
    widths: Sequence[int],
    *,
    activation: Named,
    norm: Named,
    dropout: float = 0.0,
) -> list[nn.Module]:
    """The hidden layers: per width, Linear -> norm -> activation [-> Dropout].

    With a gated activation a block is gated unit -> norm [-> Dropout]: the unit holds
    the projection and the nonlinearity, so the norm acts on its output. Dropout is
    only inserted for ``dropout > 0``.
    """
    gated = is_gated(activation)
    check_dropout(dropout)
    layers: list[nn.Module] = []
    fan_in = in_features
    for width in widths:
        if gated:
            layers += [ACTIVATIONS.create(activation, fan_in, width), NORMS.create(norm, width, 1)]
        else:
            layers += [
                nn.Linear(fan_in, width),
                NORMS.create(norm, width, 1),
                ACTIVATIONS.create(activation),
            ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        fan_in = width
    return layers


class Residual(nn.Sequential):
    """``x + f(x)`` for the layers ``f`` it holds: a skip connection around a block."""

    def forward(self, x: Tensor) -> Tensor:
        return x + super().forward(x)


class MLP(nn.Module):
    """An MLP whose every training choice is a component name.

    ``depth`` counts hidden layers (0 gives a linear/softmax model). The norm sits
    between the linear map and the activation, as in Ioffe & Szegedy (2015).
    ``dropout`` adds ``nn.Dropout`` after each hidden activation. With a gated
    activation the hidden width is ``gated_width(...)`` (see the module docstring);
    ``hidden_width`` holds the width actually used.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        width: int = 64,
        depth: int = 2,
        activation: Named = "relu",
        norm: Named = "none",
        init: Named = "default",
        dropout: float = 0.0,
        residual: bool = False,
    ):
        super().__init__()
        gated = is_gated(activation)
        self.hidden_width = gated_width(in_features, out_features, width, depth) if gated else width
        try:
            hidden = hidden_blocks(
                in_features,
                [self.hidden_width] * depth,
                activation=activation,
                norm=norm,
                dropout=dropout,
            )
        except ConfigError as err:
            if not gated or self.hidden_width == width:
                raise
            raise ConfigError(
                f"{err.message} (gated activation {activation!r}: hidden width "
                f"{self.hidden_width} is parameter-matched to width={width})"
            ) from None
        if residual and depth > 1:
            per_block = len(hidden) // depth
            blocks = [hidden[i : i + per_block] for i in range(0, len(hidden), per_block)]
            hidden = [*blocks[0], *(Residual(*block) for block in blocks[1:])]
        fan_in = self.hidden_width if depth else in_features
        self.net = nn.Sequential(nn.Flatten(), *hidden, nn.Linear(fan_in, out_features))
        initialize(self, INITIALIZERS.create(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
