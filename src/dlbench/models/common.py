"""Checks shared by the model families: activation names and dropout rates."""

from __future__ import annotations

from torch import nn

from dlbench.components import ACTIVATIONS
from dlbench.components.activations import is_gated
from dlbench.errors import ConfigError
from dlbench.registry import Named


def elementwise_activation(name: Named, model: str) -> nn.Module:
    """A fresh elementwise activation ``name``; gated units are refused for ``model``.

    Gated units (glu, swiglu, geglu) own their projections, so they only fit where a
    model has a Linear layer to replace: the MLP. Elsewhere (a convolution, a
    residual block, the autoencoder's explicit widths) they are a ConfigError.
    """
    if is_gated(name):
        allowed = [e.name for e in ACTIVATIONS if not e.flags["gated"]]
        raise ConfigError(
            f"{model} does not support the gated activation {name!r} (gated units own their "
            f"projections; only MLP takes them); allowed: {', '.join(allowed)}"
        )
    return ACTIVATIONS.create(name)


def check_dropout(p: float) -> float:
    """``p`` if it is a valid dropout rate, 0 <= p < 1; otherwise a ConfigError."""
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout={p} must be in [0, 1)")
    return p
