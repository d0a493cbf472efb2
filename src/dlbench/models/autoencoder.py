"""An MLP autoencoder: encoder -> code -> decoder, trained to reproduce its input."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dlbench.components import INITIALIZERS
from dlbench.components.initializers import initialize
from dlbench.models.common import elementwise_activation
from dlbench.models.mlp import hidden_blocks
from dlbench.registry import Named


class AutoEncoder(nn.Module):
    """``encoder``: flatten -> hidden blocks -> Linear to ``code``; ``decoder`` mirrors it.

    Hidden blocks are the MLP's (Linear -> norm -> activation) with widths ``hidden``
    in the encoder and ``reversed(hidden)`` in the decoder. The code and the output
    are linear (no activation), so with ``activation="identity"`` and MSE the model
    is a linear autoencoder, which learns the PCA subspace. ``forward`` returns the
    reconstruction in the input's shape (e.g. (N, 1, 8, 8)); ``encoder`` alone maps
    inputs to (N, code) features, for reuse in transfer learning. Gated activations
    are refused (a ConfigError): ``hidden`` lists exact widths, and a gated unit
    would double each layer's parameters.
    """

    def __init__(
        self,
        in_features: int,
        *,
        hidden: Sequence[int] = (32,),
        code: int = 8,
        activation: Named = "relu",
        norm: Named = "none",
        init: Named = "default",
    ):
        super().__init__()
        elementwise_activation(activation, "AutoEncoder")
        hidden = list(hidden)
        options = {"activation": activation, "norm": norm}
        self.encoder = nn.Sequential(
            nn.Flatten(),
            *hidden_blocks(in_features, hidden, **options),
            nn.Linear(hidden[-1] if hidden else in_features, code),
        )
        self.decoder = nn.Sequential(
            *hidden_blocks(code, hidden[::-1], **options),
            nn.Linear(hidden[0] if hidden else code, in_features),
        )
        self.code = code
        initialize(self, INITIALIZERS.create(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x)).reshape(x.shape)
