"""The synthetic problems: seeding, shapes and tasks, and each problem's defining math."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlbench.data.synthetic import (
    AddingProblemDataModule,
    PolynomialDataModule,
    SpiralsDataModule,
    SyntheticDataModule,
    TrendDataModule,
    TwoMoonsDataModule,
    XorDataModule,
)
from dlbench.errors import ConfigError

SMALL = {"n_train": 60, "n_val": 20, "n_test": 30}
# class, extra arguments, task, num_classes, input shape
CASES = [
    (TrendDataModule, {}, "regression", None, (1,)),
    (PolynomialDataModule, {}, "regression", None, (1,)),
    (TwoMoonsDataModule, {}, "classification", 2, (2,)),
    (SpiralsDataModule, {}, "classification", 3, (2,)),
    (SpiralsDataModule, {"arms": 5}, "classification", 5, (2,)),
    (XorDataModule, {}, "classification", 2, (2,)),
    (AddingProblemDataModule, {"length": 12}, "regression", None, (12, 2)),
]
IDS = ["trend", "poly", "moons", "spirals", "spirals5", "xor", "adding"]


def make(cls: type[SyntheticDataModule], extra: dict, **kwargs) -> SyntheticDataModule:
    return cls(**{**SMALL, **extra, **kwargs})


@pytest.mark.parametrize(("cls", "extra", "task", "num_classes", "shape"), CASES, ids=IDS)
def test_shapes_dtypes_and_task(
    cls: type, extra: dict, task: str, num_classes: int | None, shape: tuple
) -> None:
    dm = make(cls, extra)
    assert dm.task == task and dm.num_classes == num_classes
    assert dm.input_shape == shape
    for split, n in (("train", 60), ("val", 20), ("test", 30)):
        x, y = dm.tensors[split]
        assert x.shape == (n, *shape) and x.dtype == torch.float32
        if task == "regression":
            assert y.shape == (n, 1) and y.dtype == torch.float32
        else:
            assert y.shape == (n,) and y.dtype == torch.int64
            assert y.min() >= 0 and y.max() < num_classes
        assert torch.isfinite(x).all() and torch.isfinite(y.float()).all()


@pytest.mark.parametrize(("cls", "extra"), [(c[0], c[1]) for c in CASES], ids=IDS)
def test_data_depend_on_data_seed_only(cls: type, extra: dict) -> None:
    a = make(cls, extra, data_seed=1, seed=0)
    b = make(cls, extra, data_seed=1, seed=5)  # another run seed: same data
    c = make(cls, extra, data_seed=2, seed=0)
    for split in ("train", "val", "test"):
        assert torch.equal(a.tensors[split][0], b.tensors[split][0])
        assert torch.equal(a.tensors[split][1], b.tensors[split][1])
        assert not torch.equal(a.tensors[split][0], c.tensors[split][0])
    # The splits are different samples, not copies of one another.
    assert not torch.equal(a.tensors["val"][0], a.tensors["test"][0][:20])


@pytest.mark.parametrize(("cls", "extra"), [(c[0], c[1]) for c in CASES], ids=IDS)
def test_run_seed_decides_the_training_order(cls: type, extra: dict) -> None:
    def order(seed: int) -> torch.Tensor:
        return torch.cat(
            [xb for xb, _ in make(cls, extra, seed=seed, batch_size=16).loader("train")]
        )

    assert torch.equal(order(3), order(3))
    assert not torch.equal(order(3), order(4))


@pytest.mark.parametrize(("cls", "extra"), [(c[0], c[1]) for c in CASES], ids=IDS)
def test_more_training_data_leaves_val_and_test_alone(cls: type, extra: dict) -> None:
    small, large = make(cls, extra), make(cls, extra, n_train=200)
    for split in ("val", "test"):
        assert torch.equal(small.tensors[split][0], large.tensors[split][0])
        assert torch.equal(small.tensors[split][1], large.tensors[split][1])


def test_trend_least_squares_recovers_slope_and_intercept() -> None:
    a, b, noise, n = -1.5, 0.7, 0.2, 2000
    dm = TrendDataModule(a=a, b=b, noise=noise, n_train=n)
    t, y = (v.double().squeeze(1).numpy() for v in dm.tensors["train"])
    assert t.min() >= 0 and t.max() <= 1
    slope, intercept = np.polyfit(t, y, 1)
    se_slope = noise / (np.sqrt(n) * t.std())  # standard error of the OLS slope
    assert abs(slope - a) < 4 * se_slope
    assert abs(intercept - b) < 4 * noise * np.sqrt(1 / n + t.mean() ** 2 / (n * t.var()))
    residual = y - (slope * t + intercept)
    assert residual.std() == pytest.approx(noise, rel=0.1)


def test_trend_without_noise_is_the_line() -> None:
    dm = TrendDataModule(a=2.0, b=1.0, noise=0.0)
    t, y = dm.tensors["test"]
    torch.testing.assert_close(y, 2.0 * t + 1.0)


@pytest.mark.parametrize("degree", [0, 1, 3, 5])
def test_polynomial_is_its_coefficients(degree: int) -> None:
    dm = PolynomialDataModule(degree=degree, noise=0.0, n_train=5000)
    assert len(dm.coefficients) == degree + 1
    x, y = (v.double().squeeze(1).numpy() for v in dm.tensors["train"])
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(y, np.polyval(dm.coefficients[::-1], x), rtol=1e-5, atol=1e-5)
    # Scaled to root mean square 1 over [-1, 1], whatever the degree and seed.
    assert np.mean(y**2) == pytest.approx(1.0, abs=0.06)
    if degree:
        fitted = np.polynomial.polynomial.polyfit(x, y, degree)
        np.testing.assert_allclose(fitted, dm.coefficients, atol=1e-3)


def test_polynomial_coefficients_belong_to_the_data_seed() -> None:
    a, b = PolynomialDataModule(), PolynomialDataModule(seed=9)
    assert a.coefficients == b.coefficients
    assert PolynomialDataModule(data_seed=1).coefficients != a.coefficients
    noisy = PolynomialDataModule(noise=0.3, n_train=4000)
    x, y = (v.double().squeeze(1).numpy() for v in noisy.tensors["train"])
    residual = y - np.polyval(noisy.coefficients[::-1], x)
    assert residual.std() == pytest.approx(0.3, rel=0.1)


@pytest.mark.parametrize(
    ("cls", "extra", "classes"),
    [
        (TwoMoonsDataModule, {}, 2),
        (SpiralsDataModule, {}, 3),
        (SpiralsDataModule, {"arms": 4}, 4),
        (XorDataModule, {}, 2),
    ],
    ids=["moons", "spirals", "spirals4", "xor"],
)
@pytest.mark.parametrize("n", [101, 1000])
def test_labels_are_balanced(cls: type, extra: dict, classes: int, n: int) -> None:
    dm = cls(**extra, n_train=n, n_val=7, n_test=10)
    for _, y in dm.tensors.values():
        counts = torch.bincount(y, minlength=classes)
        assert len(counts) == classes
        assert counts.max() - counts.min() <= 1


def test_xor_label_is_the_xor_of_the_signs() -> None:
    dm = XorDataModule(noise=0.25, n_train=2000)
    x, y = dm.tensors["train"]
    xor = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    assert (xor == y).float().mean() > 0.999  # a blob crosses an axis with p = 3e-5
    assert torch.equal(XorDataModule(noise=0.0).tensors["train"][0].abs().unique(), torch.ones(1))


def test_spiral_arms_are_rotated_copies() -> None:
    """Without noise a point's angle, minus its arm's offset, is 2*pi*turns*radius."""
    arms, turns = 3, 1.5
    dm = SpiralsDataModule(arms=arms, turns=turns, noise=0.0)
    x, y = (v.double() for v in dm.tensors["train"])
    r = x.norm(dim=1)
    assert r.max() <= 1 + 1e-6
    angle = torch.atan2(x[:, 1], x[:, 0])
    expected = 2 * torch.pi * (y / arms + turns * r)
    diff = torch.remainder(angle - expected + torch.pi, 2 * torch.pi) - torch.pi
    assert diff.abs().max() < 1e-4


def test_moons_are_sklearns() -> None:
    x, y = TwoMoonsDataModule(noise=0.0).tensors["train"]
    upper, lower = x[y == 0], x[y == 1]  # sklearn: class 0 the upper half circle at the origin
    torch.testing.assert_close(upper.norm(dim=1), torch.ones(len(upper)))
    assert (upper[:, 1] >= -1e-6).all() and (lower[:, 1] <= 0.5 + 1e-6).all()


def test_adding_problem_targets_are_the_marked_sums() -> None:
    length = 20
    dm = AddingProblemDataModule(length=length, n_train=500)
    for x, y in dm.tensors.values():
        values, markers = x[..., 0], x[..., 1]
        assert ((values >= 0) & (values <= 1)).all()
        assert set(markers.unique().tolist()) <= {0.0, 1.0}
        assert (markers.sum(dim=1) == 2).all()
        # One marker in each half.
        assert (markers[:, : length // 2].sum(dim=1) == 1).all()
        assert (markers[:, length // 2 :].sum(dim=1) == 1).all()
        torch.testing.assert_close(y.squeeze(1), (values * markers).sum(dim=1))
    # Marker positions vary: every step is marked in some sequence.
    assert (dm.tensors["train"][0][..., 1].sum(dim=0) > 0).all()


def test_adding_problem_baseline_is_one_sixth() -> None:
    """Var(U1 + U2) = 2/12: predicting the mean scores MSE 1/6, the bar to beat."""
    y = AddingProblemDataModule(length=10).tensors["train"][1]
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)
    assert y.var().item() == pytest.approx(1 / 6, rel=0.05)


def test_full_batch_and_eval_loaders() -> None:
    dm = TwoMoonsDataModule(batch_size=None, **SMALL)
    assert dm.batch_size == 60
    ((xb, yb),) = list(dm.loader("train"))
    assert sorted(yb.tolist()) == sorted(dm.tensors["train"][1].tolist())
    ((xb, yb),) = list(dm.loader("val"))
    assert torch.equal(xb, dm.tensors["val"][0]) and torch.equal(yb, dm.tensors["val"][1])


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (TrendDataModule, {"n_train": 0}, "n_train must be >= 1, got 0"),
        (TrendDataModule, {"noise": -0.1}, "noise must be >= 0"),
        (TrendDataModule, {"data_seed": -1}, "data_seed must be >= 0"),
        (TrendDataModule, {"batch_size": 0}, "batch_size must be >= 1 or None"),
        (PolynomialDataModule, {"degree": -1}, "degree must be >= 0"),
        (SpiralsDataModule, {"arms": 1}, "arms must be >= 2"),
        (SpiralsDataModule, {"turns": 0}, "turns must be > 0"),
        (AddingProblemDataModule, {"length": 1}, "length must be >= 2"),
    ],
)
def test_bad_settings_are_config_errors(cls: type, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)
