"""Optimizers the lecture notes walk through, from plain gradient descent to AdamW.

Every entry wraps the well-tested ``torch.optim`` implementation and exposes its
hyperparameters under the names the notes use (``beta1``/``beta2`` rather than a
``betas`` tuple), so a study file can sweep each one on its own.

Full-batch GD, SGD (batch 1) and mini-batch SGD are one optimizer, ``sgd``: they
differ only in the batch size (``batch_size: full`` is the whole training set).

A note on momentum: torch keeps the velocity as ``v <- mu*v + g`` and steps
``p <- p - lr*v``. The notes' form ``v <- mu*v - lr*g; p <- p + v`` is the same
trajectory while the learning rate is constant, and differs only in how a schedule
rescales past velocity.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import Optimizer

from dlbench.registry import Registry

# torch's fused kernels (one per tensor, on CPU and CUDA) step a small model 2-3x faster
# than the default per-tensor loop and give the same update to float rounding
# (benchmarks/RESULTS.md). RMSprop has no fused kernel and keeps torch's default.
FUSED = True

Params = Iterable[torch.nn.Parameter] | Iterable[dict]

OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")


@OPTIMIZERS.register(
    "sgd",
    description="(Stochastic) gradient descent: p -= lr*g; full-batch GD, SGD or mini-batch by batch_size",
)
def sgd(params: Params, /, *, lr: float, weight_decay: float = 0.0) -> Optimizer:
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, fused=FUSED)


@OPTIMIZERS.register(
    "momentum",
    description="SGD with heavy-ball momentum: v = mu*v + g; p -= lr*v",
)
def momentum(
    params: Params, /, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
) -> Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=FUSED)


@OPTIMIZERS.register(
    "nesterov",
    description="Nesterov accelerated gradient (NAG): look-ahead momentum, p -= lr*(g + mu*v)",
)
def nesterov(
    params: Params, /, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
) -> Optimizer:
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay, fused=FUSED
    )


@OPTIMIZERS.register(
    "adagrad",
    description="AdaGrad: per-parameter lr / sqrt(sum of squared gradients); the lr only shrinks",
)
def adagrad(
    params: Params,
    /,
    *,
    lr: float,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
    weight_decay: float = 0.0,
) -> Optimizer:
    return torch.optim.Adagrad(
        params,
        lr=lr,
        eps=eps,
        initial_accumulator_value=initial_accumulator_value,
        weight_decay=weight_decay,
        fused=FUSED,
    )


@OPTIMIZERS.register(
    "rmsprop",
    description="RMSProp: lr / sqrt(moving average of squared gradients), so the lr can recover",
)
def rmsprop(
    params: Params,
    /,
    *,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> Optimizer:
    return torch.optim.RMSprop(
        params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay
    )


@OPTIMIZERS.register(
    "adam",
    description="Adam: momentum (beta1) + RMSProp (beta2) with bias correction; L2 weight_decay",
)
def adam(
    params: Params,
    /,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    return torch.optim.Adam(
        params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, fused=FUSED
    )


@OPTIMIZERS.register(
    "adamw",
    description="AdamW: Adam with decoupled weight decay, p -= lr*weight_decay*p beside the step",
)
def adamw(
    params: Params,
    /,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> Optimizer:
    return torch.optim.AdamW(
        params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, fused=FUSED
    )
