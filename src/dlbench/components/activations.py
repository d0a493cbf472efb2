"""Activation functions: the nonlinearity between layers.

Without one, a stack of linear layers is one linear map (``identity`` is here to
show exactly that).

Two kinds of entries, told apart by the flag ``gated``:

* elementwise (``gated=False``): the factory takes no arguments, ``() -> nn.Module``,
  and the module has no parameters;
* gated linear units (``gated=True``): ``out = act(x W + b) * (x V + c)`` (Dauphin et
  al. 2017; Shazeer 2020). The unit owns its two projections ``W`` and ``V``, so it
  replaces the Linear layer before it and the factory takes the layer's shape,
  ``(in_features, out_features, /) -> nn.Module``. ``is_gated(name)`` says which.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dlbench.registry import Named, Registry

ACTIVATIONS: Registry[nn.Module] = Registry("activation")


def is_gated(name: Named) -> bool:
    """Whether activation ``name`` is a gated unit; an unknown name is a ConfigError."""
    return bool(ACTIVATIONS.get(name).flags["gated"])


# --- the perceptron's step ---------------------------------------------------------------


class _Step(torch.autograd.Function):
    """Heaviside forward; the true derivative (0 almost everywhere) backward.

    Written in the ``setup_context`` form, with a generated vmap rule, so a stack of
    models (``systems.stack``, ``torch.func.vmap``) can run it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return (x > 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: Tensor) -> None:
        return None

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return torch.zeros_like(grad)


class _StepSTE(_Step):
    """Heaviside forward; straight-through backward: the gradient passes unchanged."""

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


class Step(nn.Module):
    """Heaviside step ``1 if x > 0 else 0`` (so step(0) = 0), the perceptron's unit.

    Its derivative is 0 wherever it exists, so with ``straight_through=False`` no
    gradient reaches the layers below: a network of step units cannot be trained by
    gradient descent (the perceptron learning rule is not backpropagation). With
    ``straight_through=True`` the backward pass pretends the unit is the identity
    (the straight-through estimator, Hinton 2012; Bengio et al. 2013): a biased but
    useful gradient, the trick behind binarized and quantized networks.
    """

    def __init__(self, straight_through: bool = False):
        super().__init__()
        self.straight_through = straight_through

    def forward(self, x: Tensor) -> Tensor:
        return (_StepSTE if self.straight_through else _Step).apply(x)

    def extra_repr(self) -> str:
        return f"straight_through={self.straight_through}"


# --- gated linear units ---------------------------------------------------------------


class GatedLinearUnit(nn.Module):
    """``act(gate(x)) * value(x)``: two Linear projections ``in -> out``, one gated.

    Twice the parameters of ``nn.Linear(in_features, out_features)``: models that
    offer gated units shrink the hidden width to keep the parameter count (see
    ``dlbench.models.mlp.gated_width``). The two projections are separate Linear
    layers, so initializers see each one's own fan-in and fan-out.
    """

    def __init__(self, in_features: int, out_features: int, activation: nn.Module):
        super().__init__()
        self.gate = nn.Linear(in_features, out_features)
        self.value = nn.Linear(in_features, out_features)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.gate(x)) * self.value(x)


# --- registered members ---------------------------------------------------------------


@ACTIVATIONS.register(
    "identity",
    description="No nonlinearity: stacked layers collapse to one linear map",
    gated=False,
)
def identity() -> nn.Module:
    return nn.Identity()


@ACTIVATIONS.register(
    "step",
    description="Heaviside step 1[x > 0], the perceptron's unit; zero gradient: cannot train by backprop",
    gated=False,
)
def step() -> nn.Module:
    return Step(straight_through=False)


@ACTIVATIONS.register(
    "step_ste",
    description="Heaviside step with a straight-through (identity) gradient, so backprop reaches lower layers",
    gated=False,
)
def step_ste() -> nn.Module:
    return Step(straight_through=True)


@ACTIVATIONS.register(
    "sigmoid",
    description="Logistic sigmoid 1/(1+e^-x); saturates, gradient <= 1/4",
    gated=False,
)
def sigmoid() -> nn.Module:
    return nn.Sigmoid()


@ACTIVATIONS.register(
    "tanh", description="Hyperbolic tangent; zero-centred, saturates", gated=False
)
def tanh() -> nn.Module:
    return nn.Tanh()


@ACTIVATIONS.register("relu", description="ReLU max(0, x); no saturation for x > 0", gated=False)
def relu() -> nn.Module:
    return nn.ReLU()


@ACTIVATIONS.register(
    "gelu", description="GELU x*Phi(x): a smooth ReLU (exact erf form)", gated=False
)
def gelu() -> nn.Module:
    return nn.GELU()


@ACTIVATIONS.register("silu", description="Swish/SiLU x*sigmoid(x)", gated=False)
def silu() -> nn.Module:
    return nn.SiLU()


@ACTIVATIONS.register(
    "glu",
    description="Gated linear unit sigmoid(xW+b)*(xV+c) (Dauphin 2017); owns its projections",
    gated=True,
)
def glu(in_features: int, out_features: int, /) -> nn.Module:
    return GatedLinearUnit(in_features, out_features, nn.Sigmoid())


@ACTIVATIONS.register(
    "swiglu",
    description="SwiGLU silu(xW+b)*(xV+c) (Shazeer 2020); owns its projections",
    gated=True,
)
def swiglu(in_features: int, out_features: int, /) -> nn.Module:
    return GatedLinearUnit(in_features, out_features, nn.SiLU())


@ACTIVATIONS.register(
    "geglu",
    description="GEGLU gelu(xW+b)*(xV+c) (Shazeer 2020, exact erf GELU); owns its projections",
    gated=True,
)
def geglu(in_features: int, out_features: int, /) -> nn.Module:
    return GatedLinearUnit(in_features, out_features, nn.GELU())
