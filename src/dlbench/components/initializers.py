"""Weight initializers: how the first step's landscape looks.

An initializer is applied to every Linear/Conv layer of a model. Weights follow the
named rule with fan-in/fan-out from the layer's shape; biases start at zero, the
usual choice and the one the notes assume, except for ``default``, which keeps
PyTorch's own scheme (weights and biases uniform in +-1/sqrt(fan_in)) as a baseline.

Formulas (n_in = fan-in, n_out = fan-out):
  lecun:  Var = 1/n_in              (normal std sqrt(1/n_in), uniform bound sqrt(3/n_in))
  xavier: Var = 2/(n_in + n_out)    (uniform bound sqrt(6/(n_in + n_out)))
  he:     Var = 2/n_in              (uniform bound sqrt(6/n_in)), for ReLU
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlbench.registry import Registry

Init = Callable[[nn.Module], None]
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)

INITIALIZERS: Registry[Init] = Registry("initializer")


def _weights(rule: Callable[[torch.Tensor], object]) -> Init:
    """An initializer that sets weights by ``rule`` and biases to zero."""

    @torch.no_grad()
    def apply(layer: nn.Module) -> None:
        rule(layer.weight)
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()

    return apply


@INITIALIZERS.register(
    "default", description="PyTorch's default: uniform +-1/sqrt(fan_in) (weights and biases)"
)
def default() -> Init:
    return lambda layer: layer.reset_parameters()


@INITIALIZERS.register(
    "zero", description="All weights and biases 0: every hidden unit stays identical"
)
def zero() -> Init:
    return _weights(nn.init.zeros_)


@INITIALIZERS.register("normal", description="Small random normal N(0, std^2), std=0.01 by default")
def normal(*, std: float = 0.01) -> Init:
    return _weights(lambda w: nn.init.normal_(w, 0.0, std))


@INITIALIZERS.register(
    "uniform", description="Small random uniform U(-bound, bound), bound=0.01 by default"
)
def uniform(*, bound: float = 0.01) -> Init:
    return _weights(lambda w: nn.init.uniform_(w, -bound, bound))


@INITIALIZERS.register(
    "lecun_normal", description="LeCun normal: std = sqrt(1/fan_in) (tanh/SELU-like units)"
)
def lecun_normal() -> Init:
    return _weights(lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear"))


@INITIALIZERS.register("lecun_uniform", description="LeCun uniform: bound = sqrt(3/fan_in)")
def lecun_uniform() -> Init:
    return _weights(lambda w: nn.init.kaiming_uniform_(w, nonlinearity="linear"))


@INITIALIZERS.register(
    "xavier_normal",
    description="Xavier/Glorot normal: std = sqrt(2/(fan_in+fan_out)) (sigmoid/tanh)",
)
def xavier_normal() -> Init:
    return _weights(nn.init.xavier_normal_)


@INITIALIZERS.register(
    "xavier_uniform", description="Xavier/Glorot uniform: bound = sqrt(6/(fan_in+fan_out))"
)
def xavier_uniform() -> Init:
    return _weights(nn.init.xavier_uniform_)


@INITIALIZERS.register("he_normal", description="He/Kaiming normal: std = sqrt(2/fan_in) (ReLU)")
def he_normal() -> Init:
    return _weights(lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))


@INITIALIZERS.register(
    "he_uniform", description="He/Kaiming uniform: bound = sqrt(6/fan_in) (ReLU)"
)
def he_uniform() -> Init:
    return _weights(lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"))


def initialize(model: nn.Module, init: Init) -> nn.Module:
    """Apply ``init`` to every Linear/Conv layer of ``model``; other layers keep theirs."""
    for module in model.modules():
        if isinstance(module, LAYERS):
            init(module)
    return model
