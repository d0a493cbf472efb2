"""Losses, and which task each one fits.

Every model ends in raw scores (logits), never in a sigmoid or softmax: each loss
applies the link it needs itself, in the numerically stable fused form
(``log_softmax`` rather than ``log(softmax)``, BCE *with logits*). So ``nll`` is
``-mean log_softmax(logits)[y]`` and equals ``cross_entropy`` on the same logits;
it is kept because the notes introduce it as its own formula.

Each entry has a flag ``target=`` naming the targets it needs (``TARGETS`` says what
each kind looks like) and ``soft_targets=True`` where it also takes soft labels, the
(N, C) probability rows that mixup and cutmix produce. ``TASK_TARGETS`` is the one
place that says which target kinds a task's data provide; ``check_pairing`` refuses
a loss that does not fit the task before anything runs.

A loss module also checks its inputs on every call, on shapes and dtypes only (no
host-device synchronisation): a wrong pairing that torch would accept silently
(mse broadcasting (N, 1) against (N,)) or report cryptically is a ValueError naming
the loss and the targets it expects. Values are not checked (that a soft label row
sums to 1, that a class index is < C).

Reductions: every loss is a mean over the batch, so its size does not change the
scale of the gradient. mse averages over every element as well; kl_div uses
``batchmean`` (sum over classes, mean over the batch), the true KL divergence per
example; torch's elementwise ``mean`` would also divide by the number of classes.
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlbench.errors import ConfigError, unknown_message
from dlbench.registry import Registry

TARGETS: dict[str, str] = {
    "real": "float targets of the output's shape",
    "binary": "0/1 targets of shape (N,) or (N, 1) for one logit per example, output (N,) or (N, 1)",
    "class": "integer class indices (N,) with logits (N, C >= 2)",
    "distribution": "float probability rows (N, C) with logits (N, C >= 2)",
}

# Task -> the target kinds its data provide. Classification data give class indices,
# or probability rows once mixup/cutmix mixes them.
TASK_TARGETS: dict[str, tuple[str, ...]] = {
    "regression": ("real",),
    "binary": ("binary",),
    "classification": ("class", "distribution"),
}

LOSSES: Registry[nn.Module] = Registry("loss")


class Loss(nn.Module, abc.ABC):
    """``loss(output, target) -> scalar``; checks the pairing, then computes."""

    name: str = ""
    target: str = ""

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return self.per_sample(*self.check(output, target)).mean()

    def stacked(self, output: Tensor, target: Tensor) -> Tensor:
        """Each of K models' loss, from outputs (K, N, ...) and targets (K, N, ...): (K,).

        One call over all K*N samples (``systems.training``), not K calls; every model's
        value is the mean over its own N samples, as ``forward`` gives it alone.
        """
        k = output.shape[0]
        flat = self.check(output.flatten(0, 1), target.flatten(0, 1))
        return self.per_sample(*flat).view(k, -1).mean(dim=1)

    @abc.abstractmethod
    def check(self, output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """The pair, shapes and dtypes checked (and cast) for ``per_sample``."""

    @abc.abstractmethod
    def per_sample(self, output: Tensor, target: Tensor) -> Tensor:
        """Each sample's loss (N,) of a checked pair; the loss is their mean."""

    def expects(self) -> str:
        return TARGETS[self.target]

    def refuse(self, output: Tensor, target: Tensor) -> ValueError:
        return ValueError(
            f"loss {self.name!r} expects {self.expects()}; got output "
            f"{tuple(output.shape)} {output.dtype} and target {tuple(target.shape)} {target.dtype}"
        )


def _is_index(t: Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype is not torch.bool


class MSE(Loss):
    name, target = "mse", "real"

    def check(self, output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if output.dim() == 2 and output.shape[1] == 1 and target.shape == output.shape[:1]:
            target = target.unsqueeze(1)  # (N,) targets for a one-column output
        if not target.is_floating_point() or target.shape != output.shape:
            raise self.refuse(output, target)
        return output, target

    def per_sample(self, output: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(output, target, reduction="none").flatten(1).mean(dim=1)


class BCE(Loss):
    name, target = "bce", "binary"

    def check(self, output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        one_logit = output.dim() == 1 or (output.dim() == 2 and output.shape[1] == 1)
        n = output.shape[0] if output.dim() else -1
        if not one_logit or target.shape not in ((n,), (n, 1)) or target.is_complex():
            raise self.refuse(output, target)
        # 0/1 labels may come as integers or booleans; the formula needs floats.
        return output.reshape(n), target.reshape(n).to(output.dtype)

    def per_sample(self, output: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")


class _OverClasses(Loss):
    """Logits (N, C); class indices (N,), or probability rows (N, C) where accepted."""

    soft_targets = False

    def check(self, output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if output.dim() == 2 and output.shape[1] >= 2:
            if _is_index(target) and target.shape == output.shape[:1]:
                return output, target.long()
            if self.soft_targets and target.is_floating_point() and target.shape == output.shape:
                return output, target
        raise self.refuse(output, target)

    def expects(self) -> str:
        kinds = ("class", "distribution") if self.soft_targets else ("class",)
        return " or ".join(TARGETS[kind] for kind in kinds)


class CrossEntropy(_OverClasses):
    name, target, soft_targets = "cross_entropy", "class", True

    def per_sample(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target, reduction="none")


class NLL(_OverClasses):
    name, target = "nll", "class"

    def per_sample(self, output: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(F.log_softmax(output, dim=1), target, reduction="none")


class KLDiv(_OverClasses):
    """KL(p || softmax(logits)); a class index is the one-hot row (KL then equals CE)."""

    name, target, soft_targets = "kl_div", "distribution", True

    def per_sample(self, output: Tensor, target: Tensor) -> Tensor:
        if not target.is_floating_point():
            target = F.one_hot(target, output.shape[1]).to(output.dtype)
        return F.kl_div(F.log_softmax(output, dim=1), target, reduction="none").sum(dim=1)


@LOSSES.register(
    "mse", description="Mean squared error, mean (y_hat - y)^2 (regression)", target="real"
)
def mse() -> nn.Module:
    return MSE()


@LOSSES.register(
    "bce",
    description="Binary cross-entropy on one logit: -mean(y log s + (1-y) log(1-s)), s = sigmoid",
    target="binary",
)
def bce() -> nn.Module:
    return BCE()


@LOSSES.register(
    "cross_entropy",
    description="Softmax cross-entropy: -mean log softmax(logits)[y]; takes soft labels too",
    target="class",
    soft_targets=True,
)
def cross_entropy() -> nn.Module:
    return CrossEntropy()


@LOSSES.register(
    "kl_div",
    description="KL(p || softmax(logits)), summed over classes, mean over the batch",
    target="distribution",
    soft_targets=True,
)
def kl_div() -> nn.Module:
    return KLDiv()


@LOSSES.register(
    "nll",
    description="Negative log-likelihood of log_softmax(logits)[y]; the same value as cross_entropy",
    target="class",
)
def nll() -> nn.Module:
    return NLL()


def losses_for(task: str) -> list[str]:
    """The losses whose targets the task's data provide, sorted by name."""
    if task not in TASK_TARGETS:
        raise ConfigError(unknown_message("task", task, sorted(TASK_TARGETS)))
    return [e.name for e in LOSSES if e.flags["target"] in TASK_TARGETS[task]]


def check_pairing(loss: str, task: str) -> None:
    """ConfigError unless ``loss`` is registered and fits ``task``."""
    allowed = losses_for(task)
    target = LOSSES.get(loss).flags["target"]
    if loss not in allowed:
        raise ConfigError(
            f"loss {loss!r} needs {target} targets and does not fit task {task!r}; "
            f"allowed for {task}: {', '.join(allowed)}"
        )
