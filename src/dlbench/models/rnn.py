"""Recurrent sequence models: read (N, T, F), predict from the last state or from every step."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dlbench.errors import ConfigError, unknown_message

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


READOUTS = ("last", "all")


class SequenceModel(nn.Module):
    """A ``layers``-deep RNN, LSTM or GRU (batch first) and a Linear head on its states.

    With ``readout="last"`` the head reads the top layer's hidden state after the last
    time step, ``h_T``; with ``"all"`` it reads the top layer's states at all ``steps``
    time steps, concatenated (the MNIST-1D paper's GRU: bidirectional, hidden 6, 40
    steps, a 480 -> 10 head). ``bidirectional`` runs a second RNN backwards in time and
    concatenates both directions' states (for ``"last"``: each direction's state at
    step T). The head returns ``output_size`` values: logits for classification,
    predictions for regression. ``cell="rnn"`` is the Elman RNN with tanh. The recurrent weights keep
    PyTorch's initialization (uniform in +-1/sqrt(hidden)) and both bias vectors
    (``b_ih`` and ``b_hh``), so per layer the parameter count is
    ``gates * (hidden * (fan_in + hidden) + 2 * hidden)`` with gates = 1, 4, 3, per
    direction.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        cell: str = "rnn",
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        readout: str = "last",
        steps: int | None = None,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(unknown_message("cell", cell, sorted(CELLS)))
        if readout not in READOUTS:
            raise ConfigError(unknown_message("readout", readout, list(READOUTS)))
        if readout == "all" and not steps:
            raise ConfigError("readout 'all' needs the number of time steps (steps)")
        self.rnn = CELLS[cell](
            input_size, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional
        )
        self.readout = readout
        states = hidden * (2 if bidirectional else 1)
        self.head = nn.Linear(states * (steps if readout == "all" else 1), output_size)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (N, T, directions * hidden): the top layer's states
        if self.readout == "all":
            return self.head(out.flatten(1))
        if not self.rnn.bidirectional:
            return self.head(out[:, -1])
        # The forward direction has read the whole sequence at step T, the backward one at step 1.
        hidden = self.rnn.hidden_size
        return self.head(torch.cat([out[:, -1, :hidden], out[:, 0, hidden:]], dim=1))
