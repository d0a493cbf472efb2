"""K MLPs of one architecture as one model: each Linear layer becomes one batched matmul.

A small MLP is overhead-bound: on a CPU core, a 64-wide digits MLP's training step
spends about five times its matmul time in Python and kernel launches. Stacking K
such models (same layer shapes; any initialization, seed, lr or optimizer) into
(K, ...) weight tensors turns K small matmuls into one ``baddbmm`` per layer. Every
model keeps its own slice: its own input batch (inputs are (K, B, ...)), outputs and
gradients, which never mix.

What stacks (``refusal`` says why anything else does not): a ``net`` of Linear layers
with biases and parameter-free, buffer-free modules between them (activations,
Identity, Dropout, Flatten). Those act on each element alone, so they take the
(K, B, features) tensor as they are. Norm layers with parameters or running
statistics (BatchNorm) and gated activations (they own projections) do not stack.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def refusal(models: Sequence[nn.Module]) -> str | None:
    """Why ``models`` cannot be stacked, or None when they can."""
    nets = [getattr(m, "net", None) for m in models]
    if not all(isinstance(n, nn.Sequential) for n in nets):
        return "only MLPs stack (a Sequential net of Linear layers)"
    shapes = {tuple((type(layer), _shape(layer)) for layer in net) for net in nets}
    if len(shapes) > 1:
        return "the models' architectures differ"
    for layer in nets[0]:
        if isinstance(layer, nn.Linear):
            if layer.bias is None:
                return "a Linear layer without bias"
        elif any(True for _ in layer.parameters()) or any(True for _ in layer.buffers()):
            return f"{type(layer).__name__} has its own parameters or running statistics"
    return None


def _shape(layer: nn.Module) -> tuple[int, ...]:
    return tuple(layer.weight.shape) if isinstance(layer, nn.Linear) else ()


class StackedMLP(nn.Module):
    """``models`` (MLPs with one architecture) as (K, ...) parameters; forward maps
    (K, B, ...) inputs to (K, B, out). The models themselves are only read."""

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        reason = refusal(models)
        if reason is not None:
            raise ValueError(f"cannot stack these models: {reason}")
        self.k = len(models)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        # Each step: an int is the index of a stacked Linear; a module is applied as is.
        self.steps: list[int | nn.Module] = []
        for i, layer in enumerate(models[0].net):
            if isinstance(layer, nn.Linear):
                self.steps.append(len(self.weights))
                # (K, out, in) and (K, 1, out): baddbmm's shapes, broadcast over the batch
                self.weights.append(torch.stack([m.net[i].weight.detach() for m in models]))
                self.biases.append(torch.stack([m.net[i].bias.detach() for m in models])[:, None])
            elif not isinstance(layer, nn.Flatten):  # flattening is done once, below
                self.steps.append(layer)
        self.extras = nn.ModuleList([s for s in self.steps if isinstance(s, nn.Module)])

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(2)
        for step in self.steps:
            if isinstance(step, int):
                h = torch.baddbmm(self.biases[step], h, self.weights[step].transpose(1, 2))
            else:
                h = step(h)
        return h
