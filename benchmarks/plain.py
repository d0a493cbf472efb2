"""The hand-written PyTorch loop the benchmarks compare dlbench with.

It trains a cell's model (built by the cell's own problem, from the cell's seed) on
tensors already in memory, with the batches dlbench would use (InMemoryLoader, the
cell's seed), the same number of steps, val loss and accuracy once per epoch and a
final test pass. No framework, no logging.
"""

from __future__ import annotations

import torch
from torch import nn

from dlbench.components import OPTIMIZERS
from dlbench.data.memory import InMemoryLoader
from dlbench.harness.grid import Cell
from dlbench.harness.plan import build

Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


def prepare(cell: Cell) -> tuple[nn.Module, Splits]:
    """The cell's initial model (as runner.train seeds and builds it) and its data tensors."""
    torch.manual_seed(cell.seed)
    setup = build(cell).setup
    setup.datamodule.setup("fit")
    return setup.model, setup.datamodule.tensors


def train(cell: Cell, model: nn.Module, tensors: Splits) -> float:
    """Train ``model`` (in place) as ``cell`` says; returns the last epoch's val accuracy."""
    settings = cell.settings
    # The registry entry is a one-line torch.optim constructor; used so any arm works.
    optimizer = OPTIMIZERS.create(
        settings["optimizer"], model.parameters(), lr=settings["lr"], **cell.optimizer_hparams
    )
    loss_fn = nn.CrossEntropyLoss()
    batches = InMemoryLoader(
        *tensors["train"], settings["batch_size"], shuffle=True, seed=cell.seed
    )

    def evaluate(split: str) -> tuple[float, float]:  # one full batch, as dlbench does
        x, y = tensors[split]
        model.eval()
        with torch.inference_mode():
            out = model(x)
            loss, acc = loss_fn(out, y).item(), (out.argmax(1) == y).float().mean().item()
        model.train()
        return loss, acc

    val_acc = float("nan")
    for _ in range(settings["epochs"]):
        total = torch.zeros(())  # train loss summed on the device, read once an epoch
        for x, y in batches:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(y)
        _train_loss = total.item() / len(batches.x)
        _val_loss, val_acc = evaluate("val")
    evaluate("test")
    return val_acc
