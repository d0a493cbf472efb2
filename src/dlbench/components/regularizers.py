"""Regularizers: what a training system adds to plain loss minimisation.

A regularizer is a set of hooks, all of which do nothing by default, so a training
system calls every hook of whichever regularizer a study names:

  penalty(model)        added to the training loss (a 0-dim tensor; zero by default)
  after_step(model, lr) called after each optimizer step, with the lr of that step
  perturb(model)        a context manager around forward *and* backward of a
                        training step; it must be left before the optimizer step
  dropout               the rate model builders put into their dropout layers
  stops(history)        whether training should stop after this epoch, given the
                        run's metrics so far (metric -> one value per epoch)

Which parameters count is defined once, in ``regularized_weights``: the weight
matrices and kernels of Linear and Conv layers. Biases are left alone: a bias only
offsets a unit's input and does not set how strongly the output reacts to the input,
so shrinking it makes the function no smoother; it only pulls decision boundaries
towards the origin (and there are too few biases to overfit with). Norm layers' gain
and shift are left alone too: they restore the scale the normalization just removed,
and shrinking them fights that layer.

L2 is ``strength/2 * sum w^2``, so its gradient is exactly ``strength * w``: under
plain SGD it is the same as ``weight_decay`` in the optimizer. ``weight_decay`` here
is the decoupled (AdamW) form, applied to the weights after the optimizer's step and
independent of its gradient statistics: ``w <- w - lr * strength * w``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from dlbench.errors import ConfigError
from dlbench.registry import Registry

LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def regularized_weights(model: nn.Module) -> list[nn.Parameter]:
    """The trainable weights of every Linear/Conv layer in ``model``, each once."""
    weights: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, LAYERS) and module.weight.requires_grad:
            weights.setdefault(id(module.weight), module.weight)  # tied weights count once
    return list(weights.values())


def _zero(model: nn.Module) -> torch.Tensor:
    p = next(model.parameters(), None)
    return torch.zeros((), device=p.device, dtype=p.dtype) if p is not None else torch.zeros(())


def _non_negative(name: str, value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise ConfigError(f"{name} must be >= 0, got {value}")


class Regularizer:
    """No regularization; subclasses override the hooks they need."""

    dropout: float = 0.0

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return _zero(model)

    def after_step(self, model: nn.Module, lr: float) -> None:
        return None

    def perturb(self, model: nn.Module) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def stops(self, history: dict[str, list[float]]) -> bool:
        return False


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


class L1(Regularizer):
    def __init__(self, strength: float):
        _non_negative("l1 strength", strength)
        self.strength = strength

    def penalty(self, model: nn.Module) -> torch.Tensor:
        total = sum((w.abs().sum() for w in regularized_weights(model)), _zero(model))
        return self.strength * total


class L2(Regularizer):
    def __init__(self, strength: float):
        _non_negative("l2 strength", strength)
        self.strength = strength

    def penalty(self, model: nn.Module) -> torch.Tensor:
        total = sum((w.pow(2).sum() for w in regularized_weights(model)), _zero(model))
        return self.strength / 2 * total


class WeightDecay(Regularizer):
    def __init__(self, strength: float):
        _non_negative("weight_decay strength", strength)
        self.strength = strength

    @torch.no_grad()
    def after_step(self, model: nn.Module, lr: float) -> None:
        for w in regularized_weights(model):
            w.mul_(1 - lr * self.strength)


class Dropout(Regularizer):
    def __init__(self, rate: float):
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"dropout rate must be in [0, 1), got {rate}")
        self.dropout = rate


class WeightNoise(Regularizer):
    """Forward and backward run at noisy weights; the optimizer then steps the originals.

    Leaving the context before backward breaks autograd: the weights it saved were
    overwritten in place (torch raises "modified by an inplace operation").
    """

    def __init__(self, std: float):
        _non_negative("weight_noise std", std)
        self.std = std

    @contextlib.contextmanager
    def perturb(self, model: nn.Module) -> Iterator[None]:
        weights = regularized_weights(model)
        saved = [w.detach().clone() for w in weights]
        with torch.no_grad():
            for w in weights:
                w.add_(torch.randn_like(w), alpha=self.std)
        try:
            yield
        finally:
            with torch.no_grad():  # copy back, not subtract: restored bit for bit
                for w, original in zip(weights, saved, strict=True):
                    w.copy_(original)


class EarlyStopping(Regularizer):
    def __init__(self, patience: int, metric: str):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ConfigError(f"early_stopping patience must be an integer >= 0, got {patience!r}")
        self.patience, self.metric, self.mode = patience, metric, metric_mode(metric)

    def stops(self, history: dict[str, list[float]]) -> bool:
        """Lightning's EarlyStopping rule, per run: stop once ``patience`` epochs in a row
        failed to strictly beat the best value so far, or the value is not finite."""
        values = history.get(self.metric)
        if not values:
            raise KeyError(f"early stopping watches {self.metric!r}, which this run does not log")
        if not math.isfinite(values[-1]):
            return True
        better = (lambda a, b: a < b) if self.mode == "min" else (lambda a, b: a > b)
        best, since = values[0], 0
        for value in values[1:]:
            if better(value, best):
                best, since = value, 0
            else:
                since += 1
        return since > 0 and since >= self.patience


def metric_mode(metric: str) -> str:
    """'min' for a loss, 'max' for an accuracy, judged by the metric's last path part."""
    last = str(metric).rsplit("/", 1)[-1]
    if "loss" in last:
        return "min"
    if "acc" in last:
        return "max"
    raise ConfigError(
        f"cannot tell whether to minimize or maximize metric {metric!r}: "
        f"its name must contain 'loss' (min) or 'acc' (max)"
    )


@REGULARIZERS.register("none", description="No regularization")
def none() -> Regularizer:
    return Regularizer()


@REGULARIZERS.register(
    "l1", description="L1 penalty strength * sum |w| on Linear/Conv weights (sparse weights)"
)
def l1(*, strength: float = 1e-5) -> Regularizer:
    return L1(strength)


@REGULARIZERS.register(
    "l2", description="L2 penalty strength/2 * sum w^2 on Linear/Conv weights (gradient strength*w)"
)
def l2(*, strength: float = 1e-4) -> Regularizer:
    return L2(strength)


@REGULARIZERS.register(
    "weight_decay",
    description="Decoupled weight decay (AdamW-style): w -= lr*strength*w after each step",
)
def weight_decay(*, strength: float = 0.01) -> Regularizer:
    return WeightDecay(strength)


@REGULARIZERS.register(
    "dropout", description="Dropout: zero each activation with probability rate in training"
)
def dropout(*, rate: float = 0.5) -> Regularizer:
    return Dropout(rate)


@REGULARIZERS.register(
    "weight_noise",
    description="Weight noise: train each step at w + N(0, std^2) noise, then restore w",
)
def weight_noise(*, std: float = 0.01) -> Regularizer:
    return WeightNoise(std)


@REGULARIZERS.register(
    "early_stopping",
    description="Early stopping: stop when metric has not improved for patience epochs",
)
def early_stopping(*, patience: int = 3, metric: str = "val/loss") -> Regularizer:
    return EarlyStopping(patience, metric)
