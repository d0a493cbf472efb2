"""Seeded synthetic problems: regression, 2-D classification and a long-memory sequence task.

Small problems whose answer is known make claims checkable: a linear model should
recover the trend's slope, an MLP without a nonlinearity cannot separate XOR, an RNN
that forgets cannot add two numbers it saw 25 steps apart. All are generated in
memory, so they need no download and cost nothing to build.

Two seeds, on purpose. ``data_seed`` (default 0, fixed like the digits split)
decides the data and nothing else: the problem is part of the study, not of the run,
so every run of a study sees the same samples. The run ``seed`` decides only the
training order. Each split is drawn from its own stream of ``data_seed``, so
changing ``n_train`` (a "more data" study) leaves val and test untouched.

Inputs are not standardized: each problem is defined on a unit scale already
(``t`` in [0, 1], ``x`` in [-1, 1], coordinates of order 1), and keeping the raw scale
keeps the generating parameters readable from a fitted model (the trend's slope is
``a`` itself). Regression targets are float32 ``(N, 1)``; classification targets are
int64 class indices, also for two classes (``task = "classification"``, two logits
and cross-entropy, so accuracy is measured the same way as for the digits).
"""

from __future__ import annotations

import abc
import math

import numpy as np
import torch

from dlbench.data.base import SPLITS, InMemoryDataModule
from dlbench.errors import ConfigError

_STREAMS = {"problem": 0, "train": 1, "val": 2, "test": 3}


def data_rng(data_seed: int, stream: str) -> np.random.Generator:
    """The generator for one part of a problem: its parameters or one split's samples."""
    if data_seed < 0:
        raise ConfigError(f"data_seed must be >= 0, got {data_seed}")
    return np.random.default_rng([data_seed, _STREAMS[stream]])


def _check(name: str, value: float, low: float, *, strict: bool = False) -> None:
    if value < low or (strict and value == low):
        bound = ">" if strict else ">="
        raise ConfigError(f"{name} must be {bound} {low}, got {value}")


def _balanced_labels(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels in random order, each class ``n // classes`` or one more times."""
    return rng.permutation(np.arange(n) % classes)


class SyntheticDataModule(InMemoryDataModule, abc.ABC):
    """A problem drawn from ``data_seed``: subclasses implement ``sample`` for one split.

    The defaults of the shared arguments: 1000/200/200 samples (enough for the small
    models these problems are for, and a 200-sample val set estimates accuracy to
    about +-3 points); ``batch_size`` 64 as for the digits; ``seed`` and ``data_seed`` 0.
    """

    def __init__(
        self,
        *,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        batch_size: int | None = 64,
        seed: int = 0,
        data_seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        self.data_seed = data_seed
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        for split, n in self.sizes.items():
            _check(f"n_{split}", n, 1)
        data_rng(data_seed, "problem")  # refuses a negative data_seed before any work

    def _generate(self) -> None:
        """Fill ``self.tensors``; subclasses call it once their parameters are set."""
        self.tensors = {}
        for split in SPLITS:
            x, y = self.sample(self.sizes[split], data_rng(self.data_seed, split))
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            dtype = np.float32 if self.task == "regression" else np.int64
            y = torch.from_numpy(np.ascontiguousarray(y, dtype=dtype))
            self.tensors[split] = (x, y.reshape(-1, 1) if self.task == "regression" else y)

    @abc.abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` inputs and targets drawn with ``rng``."""


class TrendDataModule(SyntheticDataModule):
    """The notes' "stock price over time": ``y = a*t + b + noise``, ``t`` uniform in [0, 1].

    The notes' introductory example: time in, expected price out, and a single linear
    layer ``f(t) = w*t + b`` trained by MSE should find ``w = a``. Prices are in units
    of order 1 so a linear model with default initialization and learning rate trains
    without any preprocessing. Defaults: slope ``a = 2`` and intercept ``b = 1`` (a
    rising price, neither zero nor symmetric, so a wrong sign or a missing bias shows);
    ``noise = 0.1``, the std of the Gaussian noise, small next to the trend's range of
    2 yet large enough that the best achievable MSE (``noise**2 = 0.01``) is not zero.
    """

    task = "regression"
    num_classes = None

    def __init__(
        self,
        *,
        a: float = 2.0,
        b: float = 1.0,
        noise: float = 0.1,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        batch_size: int | None = 64,
        seed: int = 0,
        data_seed: int = 0,
    ):
        super().__init__(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            batch_size=batch_size,
            seed=seed,
            data_seed=data_seed,
        )
        _check("noise", noise, 0)
        self.a, self.b, self.noise = a, b, noise
        self._generate()

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        t = rng.uniform(0.0, 1.0, size=(n, 1))
        return t, self.a * t[:, 0] + self.b + self.noise * rng.standard_normal(n)


class PolynomialDataModule(SyntheticDataModule):
    """``y = c0 + c1*x + ... + cd*x**d + noise``, ``x`` uniform in [-1, 1].

    The coefficients ``c`` (``self.coefficients``, lowest order first) are drawn once
    with ``data_seed``, so they too are part of the problem: standard normal, then
    scaled so the noiseless curve has root mean square 1 over [-1, 1]. The noise
    level then means the same for every seed and degree: ``noise = 0.1`` (default)
    leaves 1% of the target's mean square unexplainable. Default ``degree = 3``, the
    lowest with an inflection point, so a line or a parabola cannot fit it.
    """

    task = "regression"
    num_classes = None

    def __init__(
        self,
        *,
        degree: int = 3,
        noise: float = 0.1,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        batch_size: int | None = 64,
        seed: int = 0,
        data_seed: int = 0,
    ):
        super().__init__(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            batch_size=batch_size,
            seed=seed,
            data_seed=data_seed,
        )
        _check("degree", degree, 0)
        _check("noise", noise, 0)
        self.degree, self.noise = degree, noise
        c = data_rng(data_seed, "problem").standard_normal(degree + 1)
        # Mean square of sum_i c_i x^i for x ~ U[-1, 1]: c^T M c, M_ij = E[x^(i+j)].
        power = np.add.outer(np.arange(degree + 1), np.arange(degree + 1))
        moments = np.where(power % 2 == 0, 1.0 / (power + 1), 0.0)
        c = c / math.sqrt(c @ moments @ c)
        self.coefficients: tuple[float, ...] = tuple(float(v) for v in c)
        self._generate()

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(-1.0, 1.0, size=(n, 1))
        y = np.polynomial.polynomial.polyval(x[:, 0], self.coefficients)
        return x, y + self.noise * rng.standard_normal(n)


class TwoMoonsDataModule(SyntheticDataModule):
    """scikit-learn's two interleaving half circles; two classes, not linearly separable.

    Default ``noise = 0.2`` (std of Gaussian noise added to the points, sklearn's unit):
    the moons touch, so a linear model stays below 90% while a small MLP gets about 97%.
    Classes are balanced (``n // 2`` and ``n - n // 2``).
    """

    task = "classification"
    num_classes = 2

    def __init__(
        self,
        *,
        noise: float = 0.2,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        batch_size: int | None = 64,
        seed: int = 0,
        data_seed: int = 0,
    ):
        super().__init__(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            batch_size=batch_size,
            seed=seed,
            data_seed=data_seed,
        )
        _check("noise", noise, 0)
        self.noise = noise
        self._generate()

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        state = int(rng.integers(2**31 - 1))
        from sklearn.datasets import make_moons  # 0.8 s to import: only here

        return make_moons(n_samples=n, noise=self.noise, shuffle=True, random_state=state)


class SpiralsDataModule(SyntheticDataModule):
    """``arms`` interleaved spirals around the origin, one class per arm.

    A point of arm ``k`` at radius ``r`` (uniform in [0, 1]) has angle
    ``2*pi*(k/arms + turns*r)``; Gaussian noise of std ``noise`` is added to both
    coordinates. Defaults: ``arms = 3``, as in CS231n's spiral example, which makes
    this the one multi-class 2-D problem (moons and XOR have two); ``turns = 1``
    (each arm winds once around, so neighbouring arms are ``1 / (arms*turns)`` = 0.33
    apart along a ray); ``noise = 0.05``, well inside that gap, so the classes overlap
    only near the centre. Classes are balanced to within one sample.
    """

    task = "classification"

    def __init__(
        self,
        *,
        arms: int = 3,
        turns: float = 1.0,
        noise: float = 0.05,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        batch_size: int | None = 64,
        seed: int = 0,
        data_seed: int = 0,
    ):
        super().__init__(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            batch_size=batch_size,
            seed=seed,
            data_seed=data_seed,
        )
        _check("arms", arms, 2)
        _check("turns", turns, 0, strict=True)
        _check("noise", noise, 0)
        self.arms, self.turns, self.noise = arms, turns, noise
        self.num_classes = arms
        self._generate()

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = _balanced_labels(n, self.arms, rng)
        r = rng.uniform(0.0, 1.0, size=n)
        angle = 2 * math.pi * (y / self.arms + self.turns * r)
        x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
        return x + self.noise * rng.standard_normal((n, 2)), y


class XorDataModule(SyntheticDataModule):
    """XOR: four Gaussian blobs at the corners ``(+-1, +-1)``, class 1 where the signs differ.

    The classic function a single-layer perceptron cannot learn, as a cloud
    rather than four points so that accuracy on held-out data means something. The
    corners are centred on the origin (zero-mean inputs, as preprocessing would make
    them). Default ``noise = 0.25``, the blobs' std: a blob crosses an axis with
    probability 3e-5 per coordinate, so the problem stays separable by two lines.
    Each corner gets ``n // 4`` or one more points; classes are balanced to within one.
    """

    task = "classification"
    num_classes = 2

    def __init__(
        self,
        *,
        noise: float = 0.25,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        batch_size: int | None = 64,
        seed: int = 0,
        data_seed: int = 0,
    ):
        super().__init__(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            batch_size=batch_size,
            seed=seed,
            data_seed=data_seed,
        )
        _check("noise", noise, 0)
        self.noise = noise
        self._generate()

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        # Corners 0, 1, 2, 3 are (-,-), (-,+), (+,-), (+,+); classes 0, 1, 1, 0 alternate
        # with the corner index mod 4, so balanced corners give balanced classes.
        corner = _balanced_labels(n, 4, rng)
        signs = np.stack([corner // 2, corner % 2], axis=1) * 2.0 - 1.0
        y = (corner // 2) ^ (corner % 2)
        return signs + self.noise * rng.standard_normal((n, 2)), y


class AddingProblemDataModule(SyntheticDataModule):
    """The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015) for recurrent nets.

    Each input is a sequence of ``length`` steps with 2 channels, shape
    ``(length, 2)`` (batch first): channel 0 holds values uniform in [0, 1], channel 1
    is a marker that is 1 at exactly two steps and 0 elsewhere. The target is the sum
    of the two marked values. One marker lies uniformly in the first half and the
    other in the second half, so the model must keep a value for up to ``length``
    steps and cannot ignore the early part. Predicting the mean (1) gives MSE 1/6, the
    baseline a model must beat to have learnt anything.

    Defaults: ``length = 50``, long enough that the marked values lie tens of steps
    apart yet cheap to train on a CPU (the papers use hundreds of steps; pass a longer
    ``length`` for that); 10,000/1,000/1,000 sequences, more than the other problems
    because with fewer a model can memorise sums instead of learning to add.
    """

    task = "regression"
    num_classes = None

    def __init__(
        self,
        *,
        length: int = 50,
        n_train: int = 10_000,
        n_val: int = 1_000,
        n_test: int = 1_000,
        batch_size: int | None = 64,
        seed: int = 0,
        data_seed: int = 0,
    ):
        super().__init__(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            batch_size=batch_size,
            seed=seed,
            data_seed=data_seed,
        )
        _check("length", length, 2)
        self.length = length
        self._generate()

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        half = self.length // 2
        values = rng.uniform(0.0, 1.0, size=(n, self.length))
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, self.length, size=n)
        rows = np.arange(n)
        markers = np.zeros((n, self.length))
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        y = values[rows, first] + values[rows, second]
        return np.stack([values, markers], axis=2), y
