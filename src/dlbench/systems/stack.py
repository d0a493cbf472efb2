"""K plain ``nn.Module``s of one architecture as one: (K, ...) parameters and buffers.

Any model a problem builds stacks, without a stacked twin of it: its parameters and
buffers are stacked along a new leading dimension (member k's slice is its own), and
one call evaluates every member with ``torch.func.functional_call``:

- *vectorized* (``torch.func.vmap``): one batched call for all K (K > 1), for models
  whose forward draws nothing at random and whose layers have a batching rule (Linear
  and Conv layers, norms with per-member running statistics);
- *looped*: member by member, on views of its slices, for everything else (dropout,
  a pretext task's draws, GRU/LSTM, which have no batching rule). The members still
  share one optimizer step, one epoch loop and one Lightning fit.

A stack of one (a cell alone) is its member's own module, called as it is.

Each member keeps its own random stream (``Streams``): the global RNG is swapped to
member k's state around whatever it draws (dropout masks, weight noise, augmentation),
so member k draws exactly what it would draw trained alone (K = 1 is the same code).

The members' own modules are re-pointed at views of their slices (``bind``), so what
reads or updates a member's weights in place (a regularizer's hook, saving an encoder)
acts on the stack, and after training each member's module holds its trained weights.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

RNNS = (nn.RNNBase,)  # no vmap batching rule for aten::gru/lstm/rnn


def _signature(model: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype, bool]]:
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [(n, tuple(t.shape), t.dtype, t.requires_grad) for n, t in tensors]


def refusal(models: Sequence[nn.Module]) -> str | None:
    """Why ``models`` cannot be one stack, or None when they can."""
    first = _signature(models[0])
    if any(_signature(m) != first or type(m) is not type(models[0]) for m in models[1:]):
        return "the models' architectures differ"
    return None


def draws(model: nn.Module) -> bool:
    """Whether ``model``'s forward draws at random (a dropout layer that drops)."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def vectorizable(model: nn.Module) -> bool:
    """Whether one ``vmap`` call can evaluate a stack of ``model``: its forward draws
    nothing at random and every layer has a batching rule."""
    return not draws(model) and not any(isinstance(m, RNNS) for m in model.modules())


def _set(module: nn.Module, name: str, value: Tensor, kind: str) -> None:
    """Replace parameter or buffer ``name`` (a dotted path) of ``module`` by ``value``."""
    *path, leaf = name.split(".")
    owner = module.get_submodule(".".join(path)) if path else module
    getattr(owner, f"_{kind}")[leaf] = value


class ModelStack(nn.Module):
    """``models`` stacked; ``forward(x)`` maps (K, B, ...) inputs to (K, B, ...) outputs."""

    def __init__(self, models: Sequence[nn.Module], *, vectorize: bool | None = None):
        super().__init__()
        if (reason := refusal(models)) is not None:
            raise ValueError(f"cannot stack these models: {reason}")
        self.k = len(models)
        self.members = list(models)  # a plain list: not submodules; re-pointed by bind()
        self.param_names = [n for n, _ in models[0].named_parameters()]
        self.buffer_names = [n for n, _ in models[0].named_buffers()]
        # A stack of one is its member's module itself: its tensors are the member's
        # (no leading dimension) and a call is a plain forward, so a cell alone costs
        # what its model costs (functional_call's swapping would add ~0.1 ms a step).
        self.single = self.k == 1
        # The structure every call runs (its own tensors are the stacked ones, below);
        # train/eval modes, frozen blocks' included, follow the system's.
        self.net = models[0] if self.single else copy.deepcopy(models[0])
        for name in [] if self.single else self.param_names:
            values = [dict(m.named_parameters())[name] for m in models]
            stacked = torch.stack([v.detach() for v in values])
            _set(self.net, name, nn.Parameter(stacked, values[0].requires_grad), "parameters")
        for name in [] if self.single else self.buffer_names:
            stacked = torch.stack([dict(m.named_buffers())[name] for m in models])
            _set(self.net, name, stacked, "buffers")
        # One member runs its module's own kernels: vmap only pays across members.
        self.vectorize = (
            (not self.single and vectorizable(models[0])) if vectorize is None else vectorize
        )
        # A stack of one's call: its module, or that module compiled (a plain list, so a
        # compiled wrapper is not registered as a second copy of the module).
        self._lone: list[Callable[..., Any]] = [self.net]
        self._batched = vmap(self._call, in_dims=(0, 0, 0), randomness="error")
        self._shared = vmap(self._call, in_dims=(0, 0, None), randomness="error")

    def compile(self) -> None:
        """Every call through ``torch.compile`` (for GPUs, where kernel fusion pays; the
        first call of each input shape compiles, tens of seconds on a CPU)."""
        self._batched, self._shared = torch.compile(self._batched), torch.compile(self._shared)
        self._call = torch.compile(self._call)  # type: ignore[method-assign]
        self._lone[0] = torch.compile(self.net)

    # -- the stacked tensors -------------------------------------------------------------
    def stacked_parameters(self) -> list[nn.Parameter]:
        return [self.net.get_parameter(n) for n in self.param_names]

    def stacked_buffers(self) -> list[Tensor]:
        return [self.net.get_buffer(n) for n in self.buffer_names]

    def bind(self) -> None:
        """Point each member's own module at views of its slices (after any device move)."""
        if self.single:
            return  # the member's module is the stack's
        for k, member in enumerate(self.members):
            for name, stacked in zip(self.param_names, self.stacked_parameters(), strict=True):
                _set(
                    member, name, nn.Parameter(stacked.data[k], stacked.requires_grad), "parameters"
                )
            for name, stacked in zip(self.buffer_names, self.stacked_buffers(), strict=True):
                _set(member, name, stacked[k], "buffers")
            member.train(self.training)

    def snapshot(self, k: int) -> list[Tensor]:
        """Member ``k``'s tensors, copied: ``restore`` freezes it at them."""
        tensors = [*self.stacked_parameters(), *self.stacked_buffers()]
        return [self._of(t.detach(), k).clone() for t in tensors]

    @torch.no_grad()
    def restore(self, k: int, saved: list[Tensor]) -> None:
        tensors = [*self.stacked_parameters(), *self.stacked_buffers()]
        for t, value in zip(tensors, saved, strict=True):
            self._of(t, k).copy_(value)

    def _of(self, stacked: Tensor, k: int) -> Tensor:
        """Member ``k``'s slice of a stack tensor (a stack of one has no leading dim)."""
        return stacked if self.single else stacked[k]

    # -- evaluation ----------------------------------------------------------------------
    def _call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], *args: Any) -> Any:
        return functional_call(self.net, (params, buffers), args)

    def _slices(self, k: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        params = {n: p[k] for n, p in zip(self.param_names, self.stacked_parameters(), strict=True)}
        buffers = {n: b[k] for n, b in zip(self.buffer_names, self.stacked_buffers(), strict=True)}
        return params, buffers

    def forward(self, x: Tensor, *, shared: bool = False, streams: Streams | None = None) -> Tensor:
        """Every member's output on its own inputs ``x`` (K, B, ...), or on the same
        inputs (B, ...) when ``shared``; looped members draw from ``streams``."""
        if self.single:
            with streams.of(0) if streams is not None else contextlib.nullcontext():
                return self._lone[0](x if shared else x[0])[None]
        if self.vectorize:
            params = dict(zip(self.param_names, self.stacked_parameters(), strict=True))
            buffers = dict(zip(self.buffer_names, self.stacked_buffers(), strict=True))
            return (self._shared if shared else self._batched)(params, buffers, x)
        return torch.stack(self.each(lambda k, call: call(x if shared else x[k]), streams))

    def each(
        self, fn: Callable[[int, Callable[..., Any]], Any], streams: Streams | None = None
    ) -> list[Any]:
        """``fn(k, call)`` for each member, ``call(*args)`` being member k's forward on its
        own slices; inside member k's random stream when ``streams`` is given."""
        out = []
        for k in range(self.k):
            if self.single:
                call: Callable[..., Any] = self._lone[0]
            else:
                params, buffers = self._slices(k)
                call = lambda *args, p=params, b=buffers: self._call(p, b, *args)  # noqa: E731
            with streams.of(k) if streams is not None else contextlib.nullcontext():
                out.append(fn(k, call))
        return out


class Streams:
    """One global-RNG state per member (CPU, and the current CUDA device's when used).

    ``of(k)`` swaps member k's state in, and its advanced state back out: everything a
    member draws with torch's global generator (dropout, ``randn_like``, augmentations)
    comes from its own stream, as if it trained alone.
    """

    def __init__(self, states: Sequence[Tensor]):
        self._cpu = [s.clone() for s in states]
        self._cuda: list[Tensor | None] = [None] * len(states)

    @staticmethod
    def current() -> Tensor:
        """The global CPU state now: a member's stream starts where its build left it."""
        return torch.get_rng_state()

    @contextlib.contextmanager
    def of(self, k: int) -> Iterator[None]:
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        outer = torch.get_rng_state()
        outer_cuda = torch.cuda.get_rng_state() if cuda else None
        torch.set_rng_state(self._cpu[k])
        if cuda:
            own = self._cuda[k]
            if own is None:  # first draw on the GPU: seeded from the member's CPU stream
                torch.cuda.manual_seed(int(torch.randint(2**62, ()).item()))
            else:
                torch.cuda.set_rng_state(own)
        try:
            yield
        finally:
            self._cpu[k] = torch.get_rng_state()
            torch.set_rng_state(outer)
            if cuda:
                self._cuda[k] = torch.cuda.get_rng_state()
                torch.cuda.set_rng_state(outer_cuda)
