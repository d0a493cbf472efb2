"""Sequence models: RNN, LSTM and GRU parameter counts and the last-state readout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.errors import ConfigError
from dlbench.models import SequenceModel

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks per layer: h, or i,f,g,o, or r,z,n


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def expected_params(cell: str, n_in: int, n_out: int, hidden: int, layers: int) -> int:
    """Per layer gates * (W_ih: h x fan_in, W_hh: h x h, b_ih and b_hh: 2h); then the head."""
    total, fan_in = 0, n_in
    for _ in range(layers):
        total += GATES[cell] * (hidden * (fan_in + hidden) + 2 * hidden)
        fan_in = hidden
    return total + hidden * n_out + n_out


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", sorted(GATES))
def test_parameter_count_matches_formula(cell: str, layers: int) -> None:
    model = SequenceModel(8, 10, cell=cell, hidden=16, layers=layers)
    assert n_params(model) == expected_params(cell, 8, 10, 16, layers)


def test_lstm_count_written_out() -> None:
    # 4 * (32*(8+32) + 2*32) = 4 * 1344 = 5376; head 32*10 + 10 = 330.
    assert n_params(SequenceModel(8, 10, cell="lstm", hidden=32)) == 5376 + 330


@pytest.mark.parametrize("cell", sorted(GATES))
def test_digits_as_sequences_of_rows(cell: str) -> None:
    """(N, T, F) = (N, 8, 8): eight rows of eight pixels."""
    model = SequenceModel(8, 10, cell=cell, hidden=16, layers=2)
    assert model(torch.randn(5, 8, 8)).shape == (5, 10)


@pytest.mark.parametrize("cell", sorted(GATES))
def test_prediction_reads_the_top_layers_last_state(cell: str) -> None:
    torch.manual_seed(0)
    model = SequenceModel(3, 2, cell=cell, hidden=6, layers=2)
    x = torch.randn(4, 7, 3)
    _, state = model.rnn(x)
    h_n = state[0] if cell == "lstm" else state
    torch.testing.assert_close(model(x), model.head(h_n[-1]))
    # The last state remembers the first step: changing it changes the prediction.
    y = x.clone()
    y[:, 0] += 1.0
    assert not torch.allclose(model(x), model(y))


def test_elman_rnn_step_by_hand() -> None:
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), h_0 = 0."""
    torch.manual_seed(0)
    model = SequenceModel(3, 1, cell="rnn", hidden=4)
    r = model.rnn
    x = torch.randn(2, 5, 3)
    h = torch.zeros(2, 4)
    for t in range(5):
        h = torch.tanh(
            x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0
        )
    torch.testing.assert_close(model(x), model.head(h))


def test_regression_output() -> None:
    model = SequenceModel(1, 1, cell="gru", hidden=8)
    assert model(torch.randn(3, 20, 1)).shape == (3, 1)


def test_unknown_cell_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown cell 'transformer'.*allowed: gru, lstm, rnn"):
        SequenceModel(8, 10, cell="transformer")


def test_mnist1d_gru_reads_every_step_of_both_directions() -> None:
    """The MNIST-1D paper's GRU: bidirectional, hidden 6, 40 steps -> Linear(480, 10); 5,134
    parameters, as the paper's notebook prints."""
    torch.manual_seed(0)
    model = SequenceModel(1, 10, cell="gru", hidden=6, bidirectional=True, readout="all", steps=40)
    assert sum(p.numel() for p in model.parameters()) == 5134
    x = torch.randn(3, 40, 1)
    out, _ = model.rnn(x)
    assert out.shape == (3, 40, 12)
    torch.testing.assert_close(
        model(x), out.reshape(3, 480) @ model.head.weight.T + model.head.bias
    )


def test_bidirectional_last_readout_uses_each_directions_final_state() -> None:
    torch.manual_seed(0)
    model = SequenceModel(2, 3, cell="gru", hidden=4, bidirectional=True)
    x = torch.randn(5, 7, 2)
    _, h_n = model.rnn(x)  # (directions, N, hidden): forward after step T, backward after step 1
    final = torch.cat([h_n[0], h_n[1]], dim=1)
    torch.testing.assert_close(model(x), final @ model.head.weight.T + model.head.bias)


def test_readout_all_needs_steps() -> None:
    with pytest.raises(ConfigError, match="steps"):
        SequenceModel(1, 10, cell="gru", readout="all")
    with pytest.raises(ConfigError, match="readout"):
        SequenceModel(1, 10, cell="gru", readout="mean")
