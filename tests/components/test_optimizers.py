"""Each registered optimizer's update rule, checked against the formula written out by hand.

The loss is ``L(p) = sum(c * p**2)``, whose gradient ``2*c*p`` the tests compute
themselves; two steps are taken wherever state (velocity, moments, accumulators) matters.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import OPTIMIZERS

P0 = [1.0, -2.0, 0.5]
C = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)


def loss_fn(p: torch.Tensor) -> torch.Tensor:
    return (C * p**2).sum()


def grad(p: torch.Tensor) -> torch.Tensor:
    """The gradient of ``loss_fn`` at ``p``, by hand."""
    return 2 * C * p


def run(name: str, steps: int, **hparams: float) -> list[torch.Tensor]:
    """The parameter after each of ``steps`` optimizer steps (float64, so the match is tight)."""
    p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    opt = OPTIMIZERS.create(name, [p], **hparams)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(p).backward()
        opt.step()
        trajectory.append(p.detach().clone())
    return trajectory


def start() -> torch.Tensor:
    return torch.tensor(P0, dtype=torch.float64)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_loss_gradient_matches_autograd() -> None:
    p = start().requires_grad_(True)
    loss_fn(p).backward()
    assert_close(p.grad, grad(start()))


# --- plain gradient descent ---------------------------------------------------------


def test_sgd_one_step() -> None:
    lr = 0.1
    (p1,) = run("sgd", 1, lr=lr)
    p = start()
    assert_close(p1, p - lr * grad(p))


def test_sgd_two_steps_is_stateless() -> None:
    lr = 0.1
    p1, p2 = run("sgd", 2, lr=lr)
    assert_close(p2, p1 - lr * grad(p1))


def test_sgd_weight_decay_is_l2_in_the_gradient() -> None:
    lr, wd = 0.1, 0.05
    p1, p2 = run("sgd", 2, lr=lr, weight_decay=wd)
    p = start()
    assert_close(p1, p - lr * (grad(p) + wd * p))
    assert_close(p2, p1 - lr * (grad(p1) + wd * p1))


# --- momentum -----------------------------------------------------------------------


def test_momentum_two_steps() -> None:
    lr, mu = 0.1, 0.9
    p1, p2 = run("momentum", 2, lr=lr, momentum=mu)
    p = start()
    v = torch.zeros_like(p)
    expected = []
    for _ in range(2):
        v = mu * v + grad(p)
        p = p - lr * v
        expected.append(p)
    assert_close(p1, expected[0])
    assert_close(p2, expected[1])
    # The second step is not plain SGD: the velocity carries the first gradient.
    assert not torch.allclose(p2, p1 - lr * grad(p1))


def test_momentum_default_mu_is_0_9() -> None:
    assert OPTIMIZERS.get("momentum").hyperparameters["momentum"] == 0.9
    lr = 0.05
    _, p2 = run("momentum", 2, lr=lr)
    p = start()
    g0 = grad(p)
    p1 = p - lr * g0
    v1 = 0.9 * g0 + grad(p1)
    assert_close(p2, p1 - lr * v1)


def test_momentum_equals_notes_form_at_constant_lr() -> None:
    """torch's ``v = mu*v + g; p -= lr*v`` and the notes' ``v = mu*v - lr*g; p += v``."""
    lr, mu = 0.1, 0.9
    trajectory = run("momentum", 3, lr=lr, momentum=mu)
    p, v = start(), torch.zeros(3, dtype=torch.float64)
    for actual in trajectory:
        v = mu * v - lr * grad(p)
        p = p + v
        assert_close(actual, p)


def test_nesterov_two_steps() -> None:
    lr, mu = 0.1, 0.9
    p1, p2 = run("nesterov", 2, lr=lr, momentum=mu)
    p = start()
    v = torch.zeros_like(p)
    expected = []
    for _ in range(2):
        g = grad(p)
        v = mu * v + g
        p = p - lr * (g + mu * v)
        expected.append(p)
    assert_close(p1, expected[0])
    assert_close(p2, expected[1])
    # Differs from heavy-ball momentum from the very first step.
    (m1,) = run("momentum", 1, lr=lr, momentum=mu)
    assert not torch.allclose(p1, m1)


# --- adaptive -----------------------------------------------------------------------


def test_adagrad_two_steps() -> None:
    lr, eps = 0.5, 1e-10
    p1, p2 = run("adagrad", 2, lr=lr)
    p = start()
    G = torch.zeros_like(p)
    expected = []
    for _ in range(2):
        g = grad(p)
        G = G + g**2
        p = p - lr * g / (G.sqrt() + eps)
        expected.append(p)
    assert_close(p1, expected[0])
    assert_close(p2, expected[1])
    # First step: every coordinate moves by lr * |g|/(|g| + eps) ~ lr, whatever its gradient.
    torch.testing.assert_close(
        (p1 - start()).abs(), torch.full((3,), lr, dtype=torch.float64), rtol=0, atol=1e-9
    )


def test_adagrad_initial_accumulator() -> None:
    lr, g0 = 0.5, 0.1
    (p1,) = run("adagrad", 1, lr=lr, initial_accumulator_value=g0)
    p = start()
    g = grad(p)
    assert_close(p1, p - lr * g / ((g0 + g**2).sqrt() + 1e-10))


def test_rmsprop_two_steps() -> None:
    lr, alpha, eps = 0.01, 0.9, 1e-8
    p1, p2 = run("rmsprop", 2, lr=lr, alpha=alpha, eps=eps)
    p = start()
    v = torch.zeros_like(p)
    expected = []
    for _ in range(2):
        g = grad(p)
        v = alpha * v + (1 - alpha) * g**2
        p = p - lr * g / (v.sqrt() + eps)
        expected.append(p)
    assert_close(p1, expected[0])
    assert_close(p2, expected[1])


def test_rmsprop_defaults() -> None:
    hp = OPTIMIZERS.get("rmsprop").hyperparameters
    assert (hp["alpha"], hp["eps"], hp["momentum"]) == (0.99, 1e-8, 0.0)
    lr = 0.01
    (p1,) = run("rmsprop", 1, lr=lr)
    p = start()
    g = grad(p)
    assert_close(p1, p - lr * g / ((0.01 * g**2).sqrt() + 1e-8))


def adam_by_hand(
    steps: int,
    *,
    lr: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    l2: float = 0.0,
    decoupled: float = 0.0,
) -> list[torch.Tensor]:
    """Adam with bias correction; ``l2`` adds wd*p to the gradient, ``decoupled`` is AdamW's."""
    p = start()
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    out = []
    for t in range(1, steps + 1):
        g = grad(p) + l2 * p
        p = p - lr * decoupled * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (v_hat.sqrt() + eps)
        out.append(p)
    return out


def test_adam_two_steps() -> None:
    lr, b1, b2 = 0.1, 0.8, 0.95
    actual = run("adam", 2, lr=lr, beta1=b1, beta2=b2)
    expected = adam_by_hand(2, lr=lr, b1=b1, b2=b2)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


def test_adam_first_step_is_lr_times_sign() -> None:
    """With bias correction, m_hat = g and v_hat = g^2 at t=1, so the step is ~lr*sign(g)."""
    lr = 0.1
    (p1,) = run("adam", 1, lr=lr)
    p = start()
    torch.testing.assert_close(p1, p - lr * grad(p).sign(), rtol=0, atol=1e-7)


def test_adam_weight_decay_is_coupled_l2() -> None:
    lr, wd = 0.1, 0.1
    actual = run("adam", 2, lr=lr, weight_decay=wd)
    expected = adam_by_hand(2, lr=lr, l2=wd)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


def test_adamw_two_steps_decoupled_decay() -> None:
    lr, wd = 0.1, 0.1
    actual = run("adamw", 2, lr=lr, weight_decay=wd)
    expected = adam_by_hand(2, lr=lr, decoupled=wd)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


def test_adamw_default_weight_decay() -> None:
    assert OPTIMIZERS.get("adamw").hyperparameters["weight_decay"] == 0.01
    assert OPTIMIZERS.get("adam").hyperparameters["weight_decay"] == 0.0
    lr = 0.1
    actual = run("adamw", 2, lr=lr)
    expected = adam_by_hand(2, lr=lr, decoupled=0.01)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


def test_adam_and_adamw_weight_decay_differ() -> None:
    lr, wd = 0.1, 0.1
    coupled = run("adam", 2, lr=lr, weight_decay=wd)[-1]
    decoupled = run("adamw", 2, lr=lr, weight_decay=wd)[-1]
    assert not torch.allclose(coupled, decoupled, rtol=0, atol=1e-6)
    # Without decay the two are the same optimizer.
    assert_close(
        run("adam", 2, lr=lr, weight_decay=0.0)[-1], run("adamw", 2, lr=lr, weight_decay=0.0)[-1]
    )


def test_adam_l2_decay_is_normalized_away_on_first_step() -> None:
    """Coupled L2 goes through the adaptive normalization; decoupled decay does not."""
    lr, wd = 0.1, 0.5
    (adam1,) = run("adam", 1, lr=lr, weight_decay=wd)
    (adamw1,) = run("adamw", 1, lr=lr, weight_decay=wd)
    p = start()
    # Adam: step is ~lr*sign(g + wd*p); here sign(g + wd*p) == sign(p), same as with wd=0.
    torch.testing.assert_close(adam1, p - lr * p.sign(), rtol=0, atol=1e-7)
    # AdamW: the parameter also shrinks by the factor (1 - lr*wd).
    torch.testing.assert_close(adamw1, p * (1 - lr * wd) - lr * p.sign(), rtol=0, atol=1e-7)


# --- contract over the whole registry -------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_steps_and_reduces_a_quadratic(name: str) -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = torch.randn(16, 4)
    target = torch.randn(16, 2)

    def loss() -> torch.Tensor:
        return ((model(x) - target) ** 2).mean()

    opt = OPTIMIZERS.create(name, model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    loss_before = loss().item()
    opt.zero_grad()
    loss().backward()
    opt.step()
    after = list(model.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert loss().item() < loss_before


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_has_description_and_lr(name: str) -> None:
    entry = OPTIMIZERS.get(name)
    assert entry.description.strip()
    assert "lr" in entry.hyperparameters


def test_registry_is_what_the_tests_cover() -> None:
    assert set(OPTIMIZERS.names()) == {
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adam",
        "adamw",
    }


def test_lr_must_be_given() -> None:
    with pytest.raises(TypeError):
        OPTIMIZERS.create("sgd", [nn.Parameter(torch.zeros(1))])


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_with_a_fused_kernel_uses_it(name: str) -> None:
    """Fused steps are 2-3x faster for small models (benchmarks/RESULTS.md); the formula
    tests above run through them."""
    optimizer = OPTIMIZERS.create(name, [nn.Parameter(torch.zeros(3))], lr=0.1)
    assert bool(optimizer.defaults.get("fused")) is (name != "rmsprop")  # torch has none for it
