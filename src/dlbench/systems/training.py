"""The one training engine: K >= 1 cells trained as members of one stack.

A LightningModule built from plain parts: each member's model (stacked by
``ModelStack``), its optimizer, its training batches and its random stream, and what
the members share (the stack key guarantees it): the loss, a regularizer, an
augmentation, the schedule, a pretext task. K = 1, a cell trained alone, is the same
code with one member.

Each member keeps what training alone gives it: its init (built from its seed), its
batch order (its loader's own generator), its optimizer state, lr and schedule
position, its draws (dropout, weight noise, augmentation: ``stack.Streams``), its
penalty (the stacked penalty is the sum of the members', so each gradient is its
own), and its end: a member whose training loss stops being finite (*diverged*),
whose early stopping fires (*stopped*) or whose trial the search prunes (*pruned*) is
frozen at that epoch's weights and logs nothing more, while the others train on.

One Lightning training step is one whole epoch (the data module hands over the
epoch's ``InMemoryLoader``): the system runs the epoch's optimizer steps itself, so
Lightning's per-step machinery runs once an epoch. Metrics are per epoch, per member:
``train/loss``, ``val/loss``, ``val/acc`` (classification), ``time/epoch_s`` (the
member's share of the epoch's wall time), ``train/steps`` (optimizer steps so far), then
``test/*``; the runner adds what one step of the cell costs alone (``lone_step_seconds``). Per-step values stay on
the device and are read once an epoch (one host-device sync for all members).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from dlbench.components.augmentations import Augmentation
from dlbench.components.losses import Loss
from dlbench.components.regularizers import Regularizer
from dlbench.components.schedules import Multiplier
from dlbench.data.memory import InMemoryLoader
from dlbench.records import STEPS, TIMED_STEPS, WARMUP_STEPS
from dlbench.systems.optimizer import CellOptimizer, StackOptimizer
from dlbench.systems.stack import ModelStack, Streams, draws

# (steps_per_epoch, epochs) -> the lr multiplier of each step (schedule x warmup)
MultiplierFactory = Callable[[int, int], Multiplier]
# One batch's losses (K,), size and correct predictions (K,) (None unless classifying),
# left on the device.
Batch = tuple[Tensor, int, Tensor | None]
# A search trial's pruner: (epoch, the member's history) -> whether to stop it.
Prune = Callable[[int, dict[str, list[float]]], bool]

TRAINING, STOPPED, DIVERGED, PRUNED = "training", "stopped", "diverged", "pruned"


@dataclass
class Member:
    """One cell in a stack: what is its own."""

    model: nn.Module  # as built from the cell's seed; a pretext cell's: models.PretextNet
    optimizer: CellOptimizer
    seed: int  # also its batch order's
    rng: Tensor = field(default_factory=Streams.current)  # its global-RNG stream's start
    prune: Prune | None = None
    # filled in by training
    history: dict[str, list[float]] = field(default_factory=dict)
    status: str = TRAINING
    ended: tuple[int, int] | None = None  # (epoch, step) where it diverged / stopped


def summarize_epoch(stage: str, batches: list[Batch]) -> list[tuple[dict[str, float], int | None]]:
    """Per member: the stage's epoch metrics, and the index of its first batch whose
    loss was not finite (None if none). One host-device sync for all."""
    losses = torch.stack([loss for loss, _, _ in batches]).float().reshape(len(batches), -1)
    sizes = torch.tensor([n for _, n, _ in batches], device=losses.device)[:, None]
    at = torch.arange(len(batches), device=losses.device)[:, None]
    parts = [(losses * sizes).sum(0), torch.where(losses.isfinite(), len(batches), at).amin(0)]
    classification = batches[0][2] is not None
    if classification:
        parts.append(torch.stack([c for _, _, c in batches]).reshape(len(batches), -1).sum(0))
    got = torch.stack([part.float() for part in parts]).tolist()
    n = sum(n for _, n, _ in batches)
    summary = []
    for i in range(losses.shape[1]):
        metrics = {f"{stage}/loss": got[0][i] / n}
        if classification:
            metrics[f"{stage}/acc"] = got[2][i] / n
        first_bad = int(got[1][i])
        summary.append((metrics, first_bad if first_bad < len(batches) else None))
    return summary


class TrainingSystem(L.LightningModule):
    """K members (K >= 1) of one architecture, trained together."""

    automatic_optimization = False  # training_step runs a whole epoch of steps itself

    def __init__(
        self,
        members: Sequence[Member],
        loss: Loss,
        *,
        multiplier: MultiplierFactory,
        regularizer: Regularizer | None = None,
        augmentation: Augmentation | None = None,
        classification: bool = True,
        reconstruct: bool = False,
        pretext: bool = False,
        loggers: Sequence[Any] = (),
    ):
        super().__init__()
        self.members = list(members)
        self.stack = ModelStack([m.model for m in self.members])
        self.loss, self.multiplier_factory = loss, multiplier
        self.regularizer = regularizer or Regularizer()
        self.augmentation = augmentation
        self.classification, self.reconstruct, self.pretext = classification, reconstruct, pretext
        self.loggers_per_member = list(loggers)  # one MLflow logger per member, if logging
        self.streams = Streams([m.rng for m in self.members])
        hooks = lambda name: getattr(type(self.regularizer), name) is not getattr(Regularizer, name)  # noqa: E731
        self._penalized, self._decays, self._perturbs = (
            hooks(h) for h in ("penalty", "after_step", "perturb")
        )
        # Members swap in their own streams only where something draws (not every step of
        # a deterministic model, nor a GRU's, which is looped but draws nothing).
        self._random = (
            pretext or augmentation is not None or self._perturbs or draws(self.members[0].model)
        )
        self._draws = [torch.Generator().manual_seed(m.seed) for m in self.members]  # pretext
        self._batches: dict[str, list[Batch]] = {}
        self._frozen: dict[int, list[Tensor]] = {}
        self._optimizer: StackOptimizer | None = None
        self._multiplier: Multiplier | None = None
        self._steps, self._epoch_start = 0, 0.0
        self._orders: list[InMemoryLoader] = []  # each member's batch order, from its seed

    @property
    def k(self) -> int:
        return len(self.members)

    def configure_optimizers(self) -> list[Optimizer]:
        # Called once the stack is on its device: members and optimizers get views of it.
        self.stack.bind()
        self._optimizer = StackOptimizer(
            self.stack.stacked_parameters(), [m.optimizer for m in self.members]
        )
        return self._optimizer.optimizers

    # -- training: one Lightning step per epoch ------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def training_step(self, epoch: InMemoryLoader, batch_idx: int) -> None:
        if self._multiplier is None:
            self._multiplier = self.multiplier_factory(len(epoch), self.trainer.max_epochs)
        # Every member's data is the same (a seed decides the order, never the data):
        # each draws its order as its own data module's loader would.
        x, y = epoch.x, epoch.y
        if not self._orders:
            self._orders = [
                InMemoryLoader(x, y, epoch.batch_size, shuffle=epoch.shuffle, seed=m.seed)
                for m in self.members
            ]
        ids = torch.arange(len(x), device=x.device)
        orders = [o.order() for o in self._orders]
        order = torch.stack([ids if o is None else o for o in orders])
        for sl in epoch.slices():
            idx = order[:, sl]  # (K, B): each member's own batch
            self._train_step(x[idx], y[idx])

    def _train_step(self, x: Tensor, y: Tensor) -> None:
        """One optimizer step of every member, on inputs (K, B, ...), targets (K, B, ...)."""
        self._gradients(x, y)
        self._update()

    def _gradients(self, x: Tensor, y: Tensor) -> None:
        """Forward and backward: every member's gradient of its own loss (and penalty)."""
        assert self._optimizer is not None
        with contextlib.ExitStack() as noisy:
            if self._perturbs:  # weight noise: on through forward and backward
                for k, member in enumerate(self.members):
                    with self.streams.of(k):
                        noisy.enter_context(self.regularizer.perturb(member.model))
            losses = self._losses("train", x, y)
            total = losses.sum()  # each member's gradient is its own loss's
            if self._penalized:
                total = total + self.regularizer.penalty(self.stack.net)
            self._optimizer.zero_grad()
            total.backward()

    def _update(self) -> None:
        """The update: every member's optimizer step, then what follows a step (decoupled
        weight decay, frozen members put back)."""
        assert self._optimizer is not None and self._multiplier is not None
        multiplier = self._multiplier(self._steps)
        self._optimizer.step(multiplier)
        if self._decays:
            for member, lr in zip(self.members, self._optimizer.lrs(multiplier), strict=True):
                self.regularizer.after_step(member.model, lr)
        for k, saved in self._frozen.items():
            self.stack.restore(k, saved)
        self._steps += 1

    def _losses(self, stage: str, x: Tensor, y: Tensor, shared: bool = False) -> Tensor:
        """Every member's loss (K,) on its batch; the batch's metrics accumulated."""
        if self.pretext:
            return self._pretext_losses(stage, x, shared)
        if self.reconstruct:
            y = x
        elif stage == "train" and self.augmentation is not None:
            pairs = self.stack.each(lambda k, _: self.augmentation(x[k], y[k]), self.streams)
            x, y = torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])
        out = self.stack(x, shared=shared, streams=self.streams if self._random else None)
        if shared:
            y = y.expand(self.k, *y.shape)
        losses = self.loss.stacked(out, y)
        self._accumulate(stage, out, y, losses)
        return losses

    def _pretext_losses(self, stage: str, images: Tensor, shared: bool) -> Tensor:
        view = self._view()

        def one(k: int, call: Callable[..., Any]) -> tuple[Tensor, Tensor]:
            return call(images if shared else images[k], view, self._draws[k])

        pairs = self.stack.each(one, self.streams)
        logits, targets = torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])
        losses = self.loss.stacked(logits, targets)
        self._accumulate(stage, logits, targets, losses)
        return losses

    def _view(self) -> Callable[[Tensor], Tensor] | None:
        """The study's augmentation as an image -> image map (a pretext has no labels)."""
        if self.augmentation is None:
            return None
        augment = self.augmentation
        return lambda x: augment(x, torch.zeros(len(x), dtype=torch.long, device=x.device))[0]

    # -- what a step costs alone ---------------------------------------------------------
    def lone_step_seconds(
        self, k: int, net: nn.Module, x: Tensor, y: Tensor, *, bf16: bool = False
    ) -> tuple[float, float]:
        """Member ``k``'s training step timed alone on the batch (x, y): the median seconds
        of a whole step (forward, backward, update) and of its update (``_update``), over
        ``TIMED_STEPS`` after ``WARMUP_STEPS`` (which also create the optimizer's state).

        A stacked member's share of the stack's time depends on how many cells it was
        stacked with; these do not, so seconds to a target (steps x step) and the cost of
        an optimizer step beyond SGD's are the cell's own. ``net`` is an untrained copy of
        the member's model (the timing steps train it, not the member); ``bf16``: the
        cell trains in bf16-mixed, so the forward pass is autocast as Lightning does.
        """
        member = self.members[k]
        lone = TrainingSystem(
            [Member(net, member.optimizer, member.seed, member.rng)],
            self.loss,
            multiplier=self.multiplier_factory,
            regularizer=self.regularizer,
            augmentation=self.augmentation,
            classification=self.classification,
            reconstruct=self.reconstruct,
            pretext=self.pretext,
        ).to(self.device)
        lone.configure_optimizers()
        lone._multiplier = lambda step: 1.0
        cuda = self.device if self.device.type == "cuda" else None

        def clock() -> float:
            if cuda is not None:  # kernels run asynchronously: wait for them
                torch.cuda.synchronize(cuda)
            return time.perf_counter()

        autocast = torch.autocast(self.device.type, torch.bfloat16) if bf16 else None
        steps, updates = [], []
        x, y = x.to(self.device)[None], y.to(self.device)[None]
        for i in range(WARMUP_STEPS + TIMED_STEPS):
            start = clock()
            with autocast or contextlib.nullcontext():
                lone._gradients(x, y)
            middle = clock()
            lone._update()
            end = clock()
            if i >= WARMUP_STEPS:
                steps.append(end - start)
                updates.append(end - middle)
        return statistics.median(steps), statistics.median(updates)

    # -- evaluation: every member on the same batches ------------------------------------
    @contextlib.contextmanager
    def _fixed_draws(self, batch_idx: int) -> Any:
        """A pretext's held-out batch ``batch_idx`` gets the same patches and views at every
        epoch, and training's streams are left where they were: val/acc moves with the
        weights only."""
        if not self.pretext:
            yield
            return
        saved_draws, saved_streams = self._draws, self.streams
        fixed = [m.seed * 100_003 + batch_idx for m in self.members]  # per (seed, batch)
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            self._draws = [torch.Generator().manual_seed(f) for f in fixed]
            self.streams = Streams([torch.manual_seed(f).get_state() for f in fixed])
            try:
                yield
            finally:
                self._draws, self.streams = saved_draws, saved_streams

    def _evaluate(self, stage: str, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        with self._fixed_draws(batch_idx):
            self._losses(stage, x, y, shared=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch, batch_idx)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch, batch_idx)

    # -- per-epoch metrics, per member ---------------------------------------------------
    def _accumulate(self, stage: str, out: Tensor, y: Tensor, losses: Tensor) -> None:
        correct = None
        if self.classification:
            labels = y.argmax(dim=-1) if y.is_floating_point() else y  # soft labels (mixup)
            correct = (out.argmax(dim=-1) == labels).sum(dim=1)
        self._batches.setdefault(stage, []).append((losses.detach(), out.shape[1], correct))

    def _epoch_metrics(self, stage: str) -> list[tuple[dict[str, float], int | None]]:
        batches = self._batches.pop(stage, [])
        return summarize_epoch(stage, batches) if batches else []

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log([metrics for metrics, _ in self._epoch_metrics("val")])

    def on_train_epoch_end(self) -> None:
        share = (time.perf_counter() - self._epoch_start) / self.k
        steps = len(self._batches.get("train", []))
        summary = self._epoch_metrics("train")
        # Optimizer steps so far: how many steps it took to reach a target.
        self._log(
            [{**metrics, "time/epoch_s": share, STEPS: self._steps} for metrics, _ in summary]
        )
        epoch = self.current_epoch
        for k, (member, (_, first_bad)) in enumerate(zip(self.members, summary, strict=True)):
            if member.status != TRAINING:
                continue
            if first_bad is not None:
                self._end(k, DIVERGED, (epoch, self._steps - steps + first_bad))
            elif self.regularizer.stops(member.history):
                self._end(k, STOPPED, (epoch, self._steps))
            elif member.prune is not None and member.prune(epoch, member.history):
                self._end(k, PRUNED, (epoch, self._steps))
        if all(m.status != TRAINING for m in self.members):
            self.trainer.should_stop = True

    def _end(self, k: int, status: str, where: tuple[int, int]) -> None:
        """Member ``k`` ends here: frozen at its current weights, silent from now on."""
        self.members[k].status, self.members[k].ended = status, where
        self._frozen[k] = self.stack.snapshot(k)

    def on_test_epoch_end(self) -> None:
        self._log([metrics for metrics, _ in self._epoch_metrics("test")], test=True)

    def _log(self, per_member: list[dict[str, float]], test: bool = False) -> None:
        """Into each member's history and logger (MLflow: step = epoch). A member that
        ended logs nothing more; one that diverged or was pruned is not tested."""
        for k, (member, metrics) in enumerate(zip(self.members, per_member, strict=True)):
            if member.status in (DIVERGED, PRUNED) or (member.status == STOPPED and not test):
                continue
            for key, value in metrics.items():
                member.history.setdefault(key, []).append(value)
            if self.loggers_per_member:
                self.loggers_per_member[k].log_metrics(metrics, step=self.current_epoch)
