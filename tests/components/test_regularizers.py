"""Each registered regularizer against its formula written out by hand.

The tiny model has Linear, Conv and BatchNorm layers, so every test also sees that
biases and norm parameters are left alone.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlbench.components.regularizers import (
    REGULARIZERS,
    Regularizer,
    metric_mode,
    regularized_weights,
)
from dlbench.errors import ConfigError


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, kernel_size=2)
        self.norm = nn.BatchNorm1d(2)
        self.fc = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 1, 3)
        return self.fc(self.norm(self.conv(x)).flatten(1))


def tiny() -> Tiny:
    torch.manual_seed(0)
    model = Tiny().double()
    with torch.no_grad():  # non-trivial norm parameters, so excluding them is visible
        model.norm.weight.fill_(1.5)
        model.norm.bias.fill_(-0.5)
    return model


def weights_of(model: Tiny) -> list[torch.Tensor]:
    return [model.conv.weight, model.fc.weight]


def others_of(model: Tiny) -> list[torch.Tensor]:
    return [model.conv.bias, model.norm.weight, model.norm.bias, model.fc.bias]


def assert_close(actual: torch.Tensor, expected: torch.Tensor | float) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_regularized_weights_are_linear_and_conv_weights_only() -> None:
    model = tiny()
    assert [id(w) for w in regularized_weights(model)] == [id(w) for w in weights_of(model)]
    tied = nn.Sequential(model.fc, nn.ReLU(), model.fc)  # a shared layer counts once
    assert len(regularized_weights(tied)) == 1
    model.fc.weight.requires_grad_(False)  # frozen weights are not trained, so not decayed
    assert [id(w) for w in regularized_weights(model)] == [id(model.conv.weight)]


# --- penalties ----------------------------------------------------------------------


def test_l1_penalty_and_gradient() -> None:
    model, strength = tiny(), 0.3
    penalty = REGULARIZERS.create("l1", strength=strength).penalty(model)
    by_hand = strength * sum(abs(v) for w in weights_of(model) for v in w.flatten().tolist())
    assert_close(penalty, by_hand)
    penalty.backward()
    for w in weights_of(model):
        assert_close(w.grad, strength * w.detach().sign())
    assert all(p.grad is None for p in others_of(model))


def test_l2_penalty_and_gradient() -> None:
    model, strength = tiny(), 0.3
    penalty = REGULARIZERS.create("l2", strength=strength).penalty(model)
    by_hand = strength / 2 * sum(v * v for w in weights_of(model) for v in w.flatten().tolist())
    assert_close(penalty, by_hand)
    penalty.backward()
    for w in weights_of(model):
        assert_close(w.grad, strength * w.detach())  # the 1/2 makes the gradient strength*w
    assert all(p.grad is None for p in others_of(model))


def test_l2_under_sgd_is_the_optimizers_weight_decay_on_the_weights() -> None:
    lr, strength = 0.1, 0.3
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    REGULARIZERS.create("l2", strength=strength).penalty(model).backward()
    before = [w.detach().clone() for w in weights_of(model)]
    opt.step()
    for w, w0 in zip(weights_of(model), before, strict=True):
        assert_close(w.detach(), w0 * (1 - lr * strength))


# --- hooks --------------------------------------------------------------------------


def test_weight_decay_after_step_shrinks_weights_only() -> None:
    lr, strength = 0.1, 0.05
    model = tiny()
    before = [w.detach().clone() for w in weights_of(model)]
    others = [p.detach().clone() for p in others_of(model)]
    reg = REGULARIZERS.create("weight_decay", strength=strength)
    reg.after_step(model, lr)
    for w, w0 in zip(weights_of(model), before, strict=True):
        assert_close(w.detach(), w0 * (1 - lr * strength))
    assert all(torch.equal(p, p0) for p, p0 in zip(others_of(model), others, strict=True))
    assert_close(reg.penalty(model), 0.0)  # decoupled: nothing goes through the gradient


def test_weight_noise_changes_outputs_and_restores_weights_bit_exactly() -> None:
    model = tiny()
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    clean = model(x).detach()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with REGULARIZERS.create("weight_noise", std=0.1).perturb(model):
        noisy_params = {name: p.detach().clone() for name, p in model.named_parameters()}
        noisy = model(x)
        noisy.sum().backward()  # backward inside the context, as a training step does
    assert not torch.allclose(noisy.detach(), clean)
    for name in ("conv.weight", "fc.weight"):
        assert not torch.equal(noisy_params[name], before[name])
    for name in ("conv.bias", "norm.weight", "norm.bias", "fc.bias"):
        assert torch.equal(noisy_params[name], before[name])
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name])
    assert torch.equal(model(x).detach(), clean)
    # The gradient is the one at the noisy weights (what the optimizer then applies).
    at_noise = tiny()
    at_noise.load_state_dict(noisy_params, strict=False)
    at_noise(x).sum().backward()
    for p, q in zip(model.parameters(), at_noise.parameters(), strict=True):
        assert_close(p.grad, q.grad)


def test_weight_noise_restores_on_error() -> None:
    model = tiny()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError), REGULARIZERS.create("weight_noise").perturb(model):
        raise RuntimeError("step failed")
    assert all(torch.equal(p, p0) for p, p0 in zip(model.parameters(), before, strict=True))


def test_weight_noise_has_the_requested_std() -> None:
    torch.manual_seed(0)
    layer, std = nn.Linear(500, 400), 0.05
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    with REGULARIZERS.create("weight_noise", std=std).perturb(layer):
        noise = layer.weight.detach().clone()
        bias = layer.bias.detach().clone()
    assert abs(noise.std().item() - std) < 0.01 * std  # 200,000 draws: ~0.16% error
    assert abs(noise.mean().item()) < 0.01 * std  # standard error 0.0022 * std
    assert torch.equal(bias, torch.zeros(400))  # biases get no noise


def test_dropout_rate_configures_torch_dropout() -> None:
    rate = 0.3
    reg = REGULARIZERS.create("dropout", rate=rate)
    assert reg.dropout == rate
    layer = nn.Dropout(reg.dropout)
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = layer.train()(x)
    assert abs((y == 0).float().mean().item() - rate) < 0.005
    survivors = y[y != 0]
    torch.testing.assert_close(survivors, torch.full_like(survivors, 1 / (1 - rate)))
    assert torch.equal(layer.eval()(x), x)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_0_1_is_refused(rate: float) -> None:
    with pytest.raises(ConfigError, match="dropout rate must be in \\[0, 1\\)"):
        REGULARIZERS.create("dropout", rate=rate)


@pytest.mark.parametrize(
    ("name", "key"),
    [("l1", "strength"), ("l2", "strength"), ("weight_decay", "strength"), ("weight_noise", "std")],
)
def test_negative_strength_is_refused(name: str, key: str) -> None:
    with pytest.raises(ConfigError, match=">= 0"):
        REGULARIZERS.create(name, **{key: -1.0})


# --- early stopping -----------------------------------------------------------------


def test_metric_mode() -> None:
    assert metric_mode("val/loss") == "min"
    assert metric_mode("train/loss") == "min"
    assert metric_mode("val/acc") == "max"
    with pytest.raises(ConfigError, match="cannot tell whether to minimize or maximize"):
        metric_mode("val/f1")
    with pytest.raises(ConfigError):
        REGULARIZERS.create("early_stopping", metric="val/f1")


@pytest.mark.parametrize("patience", [-1, 1.5, True])
def test_bad_patience_is_refused(patience: object) -> None:
    with pytest.raises(ConfigError, match="patience"):
        REGULARIZERS.create("early_stopping", patience=patience)


def lightning_epochs(metric: str, values: list[float], patience: int) -> int:
    """Epochs Lightning's own EarlyStopping lets a run validate, on scripted values."""
    module = Scripted(metric, values)
    data = DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=2)
    stop = EarlyStopping(monitor=metric, mode=metric_mode(metric), patience=patience)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=len(values),
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[stop],
    )
    trainer.fit(module, train_dataloaders=data, val_dataloaders=data)
    return module.epochs_validated


class Scripted(L.LightningModule):
    """Logs a scripted val/loss (or val/acc), one value per epoch."""

    def __init__(self, metric: str, values: list[float]):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.metric, self.values = metric, values
        self.epochs_validated = 0

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return (self.p - batch[0]).pow(2).mean()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        self.log(self.metric, self.values[self.current_epoch])
        self.epochs_validated += 1

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def epochs_until_stop(metric: str, values: list[float], patience: int) -> int:
    """Epochs a run validates under ``stops``, asked after each epoch as the engine does."""
    reg = REGULARIZERS.create("early_stopping", patience=patience, metric=metric)
    for epoch in range(len(values)):
        if reg.stops({metric: values[: epoch + 1]}):
            return epoch + 1
    return len(values)


SCRIPTS = [
    # improves in epochs 0-2, flat from epoch 3 (flat is no improvement with min_delta 0)
    ("val/loss", [1.0, 0.8, 0.6] + [0.6] * 17, 2, 5),
    # an accuracy is maximized: rising for 4 epochs, then falling, patience 3 -> 4 + 3
    ("val/acc", [0.1, 0.2, 0.3, 0.4] + [0.35] * 16, 3, 7),
    ("val/loss", [1.0, 1.1, 0.9, 1.0, 1.2, 1.3], 0, 2),  # patience 0: the first miss
    ("val/loss", [1.0, 0.9, float("nan"), 0.5], 5, 3),  # a non-finite value stops
    ("val/loss", [1.0, 1.1, 0.9, 1.0, 0.8, 0.85, 0.7], 2, 7),  # never 2 misses in a row
]


@pytest.mark.parametrize(("metric", "values", "patience", "epochs"), SCRIPTS)
def test_early_stopping_stops_as_lightnings_early_stopping_does(
    metric: str, values: list[float], patience: int, epochs: int
) -> None:
    assert epochs_until_stop(metric, values, patience) == epochs
    assert lightning_epochs(metric, values, patience) == epochs


def test_early_stopping_needs_its_metric_logged() -> None:
    reg = REGULARIZERS.create("early_stopping", metric="val/acc")
    with pytest.raises(KeyError, match="val/acc"):
        reg.stops({"val/loss": [1.0]})


# --- contract over the whole registry -------------------------------------------------


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_every_regularizer_contract(name: str) -> None:
    entry = REGULARIZERS.get(name)
    assert entry.description.strip()
    reg = REGULARIZERS.create(name)
    assert isinstance(reg, Regularizer)
    model = tiny()
    penalty = reg.penalty(model)
    assert isinstance(penalty, torch.Tensor) and penalty.shape == ()
    assert torch.isfinite(penalty) and penalty >= 0
    assert penalty.dtype == torch.float64  # the model's dtype, so it adds to its loss
    with reg.perturb(model):
        model(torch.randn(3, 1, 3, dtype=torch.float64)).sum().backward()
    reg.after_step(model, 0.1)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert 0.0 <= reg.dropout < 1.0
    assert reg.stops({"val/loss": [1.0, 0.9, 0.8]}) is False  # improving: never stops
    assert_close(reg.penalty(nn.ReLU()), 0.0)  # a model without weights costs nothing


def test_registry_is_what_the_tests_cover() -> None:
    assert set(REGULARIZERS.names()) == {
        "none",
        "l1",
        "l2",
        "weight_decay",
        "dropout",
        "weight_noise",
        "early_stopping",
    }
