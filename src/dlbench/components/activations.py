"""Activation functions: the nonlinearity between layers.

Without one, a stack of linear layers is one linear map (``identity`` is here to
show exactly that).
"""

from __future__ import annotations

from torch import nn

from dlbench.registry import Registry

ACTIVATIONS: Registry[nn.Module] = Registry("activation")


@ACTIVATIONS.register(
    "identity", description="No nonlinearity: stacked layers collapse to one linear map"
)
def identity() -> nn.Module:
    return nn.Identity()


@ACTIVATIONS.register(
    "sigmoid", description="Logistic sigmoid 1/(1+e^-x); saturates, gradient <= 1/4"
)
def sigmoid() -> nn.Module:
    return nn.Sigmoid()


@ACTIVATIONS.register("tanh", description="Hyperbolic tangent; zero-centred, saturates")
def tanh() -> nn.Module:
    return nn.Tanh()


@ACTIVATIONS.register("relu", description="ReLU max(0, x); no saturation for x > 0")
def relu() -> nn.Module:
    return nn.ReLU()


@ACTIVATIONS.register("gelu", description="GELU x*Phi(x): a smooth ReLU (exact erf form)")
def gelu() -> nn.Module:
    return nn.GELU()


@ACTIVATIONS.register("silu", description="Swish/SiLU x*sigmoid(x)")
def silu() -> nn.Module:
    return nn.SiLU()
