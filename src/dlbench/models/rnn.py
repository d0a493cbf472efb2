"""Recurrent sequence models: read (N, T, F), predict from the last hidden state."""

from __future__ import annotations

from torch import Tensor, nn

from dlbench.errors import ConfigError, unknown_message

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceModel(nn.Module):
    """A ``layers``-deep RNN, LSTM or GRU (batch first) and a Linear head on its last state.

    The head reads the top layer's hidden state after the last time step, ``h_T``,
    and returns ``output_size`` values: logits for classification, predictions for
    regression. ``cell="rnn"`` is the Elman RNN with tanh. The recurrent weights keep
    PyTorch's initialization (uniform in +-1/sqrt(hidden)) and both bias vectors
    (``b_ih`` and ``b_hh``), so per layer the parameter count is
    ``gates * (hidden * (fan_in + hidden) + 2 * hidden)`` with gates = 1, 4, 3.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        cell: str = "rnn",
        hidden: int = 64,
        layers: int = 1,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(unknown_message("cell", cell, sorted(CELLS)))
        self.rnn = CELLS[cell](input_size, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, output_size)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (N, T, hidden): the top layer's state at every step
        return self.head(out[:, -1])
