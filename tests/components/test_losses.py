"""Each registered loss against its formula written out by hand, and the pairing rules.

Batches are tiny and in float64, so the hand formulas (plain exp/log, no fused
kernels) must match to 1e-12.
"""

from __future__ import annotations

import math

import pytest
import torch

from dlbench.components.losses import LOSSES, TARGETS, TASK_TARGETS, check_pairing, losses_for
from dlbench.errors import ConfigError

D = torch.float64
LOGITS = torch.tensor(
    [[2.0, -1.0, 0.5], [0.0, 0.3, -0.7], [-1.2, 0.4, 1.1], [0.9, 0.9, -2.0]], dtype=D
)
LABELS = torch.tensor([0, 2, 1, 1])
SOFT = torch.tensor([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [0.25, 0.25, 0.5], [0.0, 1.0, 0.0]], dtype=D)
N, C = LOGITS.shape


def assert_close(actual: torch.Tensor, expected: torch.Tensor | float) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=D), rtol=1e-12, atol=1e-12)


def log_softmax_by_hand(z: torch.Tensor) -> list[list[float]]:
    rows = []
    for row in z.tolist():
        log_total = math.log(sum(math.exp(v) for v in row))
        rows.append([v - log_total for v in row])
    return rows


def loss(name: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return LOSSES.create(name)(output, target)


# --- values against the formulas ---------------------------------------------------


def test_mse_is_mean_squared_error() -> None:
    y_hat = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=D)
    y = torch.tensor([[0.0, 2.5], [0.5, 1.0]], dtype=D)
    assert_close(loss("mse", y_hat, y), (1.0 + 0.25 + 0.0 + 4.0) / 4)


def test_mse_one_column_output_takes_flat_targets_without_broadcasting() -> None:
    y_hat = torch.tensor([[1.0], [3.0], [0.0]], dtype=D)
    y = torch.tensor([0.0, 1.0, 0.0], dtype=D)  # (N,): broadcasting would give (N, N)
    assert_close(loss("mse", y_hat, y), (1.0 + 4.0 + 0.0) / 3)


def test_bce_is_logistic_loss_on_logits() -> None:
    z = torch.tensor([1.5, -0.3, 0.0, -4.0], dtype=D)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=D)
    by_hand = 0.0
    for zi, yi in zip(z.tolist(), y.tolist(), strict=True):
        s = 1 / (1 + math.exp(-zi))
        by_hand -= yi * math.log(s) + (1 - yi) * math.log(1 - s)
    assert_close(loss("bce", z, y), by_hand / len(z))
    # (N, 1) outputs and targets, and integer 0/1 labels, are the same loss.
    assert_close(loss("bce", z.unsqueeze(1), y.unsqueeze(1)), by_hand / len(z))
    assert_close(loss("bce", z.unsqueeze(1), y.long()), by_hand / len(z))


def test_cross_entropy_is_minus_mean_log_softmax_of_the_label() -> None:
    logp = log_softmax_by_hand(LOGITS)
    by_hand = -sum(logp[i][y] for i, y in enumerate(LABELS.tolist())) / N
    assert_close(loss("cross_entropy", LOGITS, LABELS), by_hand)


def test_cross_entropy_soft_labels() -> None:
    """-mean_i sum_c p_ic log softmax(z_i)_c; one-hot rows give the hard-label loss."""
    logp = log_softmax_by_hand(LOGITS)
    by_hand = (
        -sum(
            p * lp
            for P, LP in zip(SOFT.tolist(), logp, strict=True)
            for p, lp in zip(P, LP, strict=True)
        )
        / N
    )
    assert_close(loss("cross_entropy", LOGITS, SOFT), by_hand)
    one_hot = torch.nn.functional.one_hot(LABELS, C).to(D)
    assert_close(loss("cross_entropy", LOGITS, one_hot), loss("cross_entropy", LOGITS, LABELS))


def test_nll_applies_log_softmax_and_equals_cross_entropy() -> None:
    logp = log_softmax_by_hand(LOGITS)
    by_hand = -sum(logp[i][y] for i, y in enumerate(LABELS.tolist())) / N
    assert_close(loss("nll", LOGITS, LABELS), by_hand)
    assert_close(loss("nll", LOGITS, LABELS), loss("cross_entropy", LOGITS, LABELS))


def test_kl_div_is_batchmean_of_sum_p_log_p_over_q() -> None:
    logq = log_softmax_by_hand(LOGITS)
    by_hand = 0.0
    for P, LQ in zip(SOFT.tolist(), logq, strict=True):
        by_hand += sum(p * (math.log(p) - lq) for p, lq in zip(P, LQ, strict=True) if p > 0)
    assert_close(loss("kl_div", LOGITS, SOFT), by_hand / N)  # batchmean: / N, not / (N*C)


def test_kl_div_is_zero_at_the_target_and_ce_minus_entropy() -> None:
    assert_close(loss("kl_div", SOFT.clamp_min(1e-300).log(), SOFT), 0.0)
    entropy = -sum(p * math.log(p) for row in SOFT.tolist() for p in row if p > 0) / N
    assert_close(loss("kl_div", LOGITS, SOFT), loss("cross_entropy", LOGITS, SOFT) - entropy)
    # A class index is its one-hot row, whose entropy is 0: KL equals cross-entropy.
    assert_close(loss("kl_div", LOGITS, LABELS), loss("cross_entropy", LOGITS, LABELS))


@pytest.mark.parametrize("name", ["cross_entropy", "nll"])
def test_class_loss_gradient_is_softmax_minus_onehot_over_n(name: str) -> None:
    z = LOGITS.clone().requires_grad_(True)
    loss(name, z, LABELS).backward()
    softmax = [[math.exp(v) for v in row] for row in log_softmax_by_hand(LOGITS)]
    expected = torch.tensor(softmax, dtype=D) - torch.nn.functional.one_hot(LABELS, C).to(D)
    assert_close(z.grad, expected / N)


def test_bce_gradient_is_sigmoid_minus_y_over_n() -> None:
    z = torch.tensor([1.5, -0.3, 0.0], dtype=D, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0], dtype=D)
    loss("bce", z, y).backward()
    assert_close(z.grad, (1 / (1 + torch.exp(-z.detach())) - y) / 3)


# --- wrong pairings at call time ------------------------------------------------------


WRONG = [
    ("bce", LOGITS, LABELS),  # (N, C) logits with class indices
    ("bce", LOGITS[:, 0], LABELS[:2].to(D)),  # batch sizes differ
    ("cross_entropy", LOGITS[:, :1], torch.ones(N, 1, dtype=D)),  # regression output/targets
    ("cross_entropy", LOGITS, torch.randn(N, dtype=D)),  # float regression targets
    ("cross_entropy", LOGITS, LABELS.unsqueeze(1)),  # (N, 1) indices
    ("nll", LOGITS, SOFT),  # nll takes no soft labels
    ("kl_div", LOGITS, SOFT[:, :2]),  # rows of the wrong width
    ("mse", LOGITS, LABELS),  # class indices to a regression loss
    ("mse", LOGITS[:, :1], torch.ones(N, 2, dtype=D)),  # shapes differ
]


@pytest.mark.parametrize(("name", "output", "target"), WRONG)
def test_wrong_pairing_is_a_clear_value_error(
    name: str, output: torch.Tensor, target: torch.Tensor
) -> None:
    target_kind = LOSSES.get(name).flags["target"]
    with pytest.raises(ValueError, match=f"loss '{name}' expects") as err:
        loss(name, output, target)
    message = str(err.value)
    assert TARGETS[target_kind] in message
    assert str(tuple(output.shape)) in message and str(tuple(target.shape)) in message


def test_cross_entropy_error_names_soft_labels_too() -> None:
    with pytest.raises(ValueError, match="class indices .* or float probability rows"):
        loss("cross_entropy", LOGITS, torch.randn(N, dtype=D))


# --- check_pairing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "allowed"),
    [
        ("regression", ["mse"]),
        ("binary", ["bce"]),
        ("classification", ["cross_entropy", "kl_div", "nll"]),
    ],
)
def test_check_pairing(task: str, allowed: list[str]) -> None:
    assert losses_for(task) == allowed
    for name in LOSSES.names():
        if name in allowed:
            check_pairing(name, task)
        else:
            with pytest.raises(ConfigError, match=f"loss '{name}'.*task '{task}'") as err:
                check_pairing(name, task)
            assert str(err.value).endswith(f"allowed for {task}: {', '.join(allowed)}")
            assert "\n" not in str(err.value)


def test_check_pairing_unknown_names() -> None:
    with pytest.raises(ConfigError, match="unknown task 'regresion' \\(did you mean regression"):
        check_pairing("mse", "regresion")
    with pytest.raises(ConfigError, match="unknown loss 'cross_entropi'"):
        check_pairing("cross_entropi", "classification")


# --- contract over the whole registry -------------------------------------------------

EXAMPLES = {  # target kind -> (output, target) that the kind describes
    "real": (torch.randn(N, 2, dtype=D), torch.randn(N, 2, dtype=D)),
    "binary": (LOGITS[:, 0], (LABELS > 0).to(D)),
    "class": (LOGITS, LABELS),
    "distribution": (LOGITS, SOFT),
}


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_contract(name: str) -> None:
    entry = LOSSES.get(name)
    assert entry.description.strip()
    assert entry.hyperparameters == {}
    kind = entry.flags["target"]
    assert kind in TARGETS
    assert any(kind in kinds for kinds in TASK_TARGETS.values())
    module = LOSSES.create(name)
    assert isinstance(module, torch.nn.Module)
    assert module.target == kind
    output, target = EXAMPLES[kind]
    output = output.clone().requires_grad_(True)
    value = module(output, target)
    assert value.shape == () and torch.isfinite(value) and value >= 0
    value.backward()
    assert output.grad is not None and torch.isfinite(output.grad).all()
    if entry.flags.get("soft_targets"):
        assert torch.isfinite(module(LOGITS, SOFT))


@pytest.mark.parametrize("name", LOSSES.names())
def test_stacked_loss_is_each_models_own_loss_and_gradient(name: str) -> None:
    """K models' outputs in one call (systems.training) give each model's loss and gradient."""
    module = LOSSES.create(name)
    output, target = EXAMPLES[LOSSES.get(name).flags["target"]]
    k = 3
    outputs = torch.stack([output * (i + 1) for i in range(k)]).requires_grad_(True)
    targets = torch.stack([target] * k)
    stacked = module.stacked(outputs, targets)
    alone = torch.stack([module(o, t) for o, t in zip(outputs, targets, strict=True)])
    assert_close(stacked, alone)
    (grad_stacked,) = torch.autograd.grad(stacked.sum(), outputs)
    (grad_alone,) = torch.autograd.grad(alone.sum(), outputs)
    assert_close(grad_stacked, grad_alone)


def test_registry_is_what_the_tests_cover() -> None:
    assert set(LOSSES.names()) == {"mse", "bce", "cross_entropy", "kl_div", "nll"}
    soft = {e.name for e in LOSSES if e.flags.get("soft_targets")}
    assert soft == {"cross_entropy", "kl_div"}
