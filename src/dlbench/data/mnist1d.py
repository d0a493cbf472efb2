"""MNIST-1D (Greydanus & Kobak, "Scaling Down Deep Learning"): 1-D digits, generated offline.

5,000 signals of length 40 (10 classes, 500 each) made by the ``mnist1d`` package from
ten 1-D templates: padded, scaled, translated, with correlated and iid noise, sheared,
subsampled to 40 points, then centred and scaled to std 1 over the whole set. The
package's own split (``train_split=0.8``, after one fixed shuffle) gives 4,000 training
and 1,000 test signals, the classes not exactly balanced within each.

The paper reports accuracy on that test split, so tuning on it would leak: the
validation split that the objective and early stopping read is carved from the training
split instead, a fixed stratified subset (400 by default, the same for every run seed,
as the split is part of the problem), and the other 3,600 train.

Generation is deterministic (the package's seed 42) but takes seconds, so the arrays are
cached on disk as ``mnist1d-<key>.npz``, the key a hash of every argument handed to the
generator, in ``$DLBENCH_CACHE``, else ``$XDG_CACHE_HOME/dlbench``, else
``~/.cache/dlbench``. Files are written atomically (a temporary file, then a rename), so
parallel runs never read half a file; one that cannot be read is made again. Within a
process the arrays are also kept in memory, so a sweep's cells share them.

The package has two habits handled here: ``make_dataset`` re-seeds Python's and NumPy's
global generators (their states are put back afterwards, so generating never changes a
run's other random draws), and it imports matplotlib.pyplot (it is imported only when a
dataset has to be generated, so importing dlbench.data costs nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlbench.components.preprocessing import PREPROCESSING
from dlbench.data import cache as disk
from dlbench.data.base import InMemoryDataModule, Layout
from dlbench.data.digits import subset_indices
from dlbench.errors import ConfigError
from dlbench.registry import Named

# The generation arguments dlbench exposes, with the package's defaults (the paper's data).
GENERATION: dict[str, Any] = {
    "samples": 5000,  # signals in all, train and test; a multiple of 10 (equal classes)
    "corr_noise": 0.25,  # scale of the smoothed noise filling the padding around the digit
    "iid_noise": 0.02,  # scale of the per-point noise added everywhere
    "shuffled": False,  # one fixed permutation of the positions (no spatial prior left)
    "length": 40,  # points per signal
    "train_split": 0.8,  # the share of signals in the training split, the rest test
}
# Their names in the package's ``get_dataset_args()``; every other argument keeps its default.
PACKAGE_NAMES = {
    "samples": "num_samples",
    "corr_noise": "corr_noise_scale",
    "iid_noise": "iid_noise_scale",
    "shuffled": "shuffle_seq",
    "length": "final_seq_length",
    "train_split": "train_split",
}
# The package's ``get_dataset_args()`` defaults (mnist1d 0.0.2, less ``url``, the download),
# handed over explicitly: the cache key then names every argument of the generation, and
# the package need not be imported to compute it.
PACKAGE_DEFAULTS: dict[str, Any] = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 0.02,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}
LAYOUTS = ("flat", "channels", "sequence")
ARRAYS = ("x", "y", "x_test", "y_test")
MAX_LENGTH = 1000  # the package works at 72 points; more is interpolation, and memory


def mnist1d_arrays(
    *,
    samples: int = 5000,
    corr_noise: float = 0.25,
    iid_noise: float = 0.02,
    shuffled: bool = False,
    length: int = 40,
    train_split: float = 0.8,
) -> dict[str, np.ndarray]:
    """The package's split: ``{"x": (train_split * samples, length) float32, "y": int64,
    "x_test": (the rest, length) float32, "y_test": int64}`` (4000/1000 x 40 by default).

    Cached in the process and on disk. The arrays are shared and read-only: callers must
    not modify them (index or copy them first).
    """
    return _arrays(
        _package_arguments(samples, corr_noise, iid_noise, shuffled, length, train_split)
    )


def clear_memory_cache() -> None:
    """Forget the in-process arrays (the disk cache stays): the next call reads the file."""
    _arrays.cache_clear()


def cache_path(arguments: str) -> Path:
    """The cache file of one set of package arguments (their sorted JSON)."""
    key = hashlib.sha256(arguments.encode()).hexdigest()[:16]
    return disk.cache_dir() / f"mnist1d-{key}.npz"


def _package_arguments(
    samples: int,
    corr_noise: float,
    iid_noise: float,
    shuffled: bool,
    length: int,
    train_split: float = 0.8,
) -> str:
    """Every argument handed to ``make_dataset``, validated, as sorted JSON: the cache key."""
    if not _is_int(samples) or samples < 100 or samples % 10:
        raise ConfigError(
            f"samples must be a multiple of 10 and at least 100 (every class gets samples/10),"
            f" got {samples!r}"
        )
    noise = {}
    for key, value in (("corr_noise", corr_noise), ("iid_noise", iid_noise)):
        number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not number or not 0 <= value < math.inf:
            raise ConfigError(f"{key} must be a finite number >= 0, got {value!r}")
        noise[key] = float(value)
    if not isinstance(shuffled, bool | np.bool_):
        raise ConfigError(f"shuffled must be true or false, got {shuffled!r}")
    # The package interpolates its fixed 72-point working signal to ``length`` points: any
    # length >= 1 runs (0 gives empty signals and NaN, a negative one a NumPy error), but
    # below 10 points the digits' shapes are gone.
    if not _is_int(length) or not 10 <= length <= MAX_LENGTH:
        raise ConfigError(f"length must be an integer in [10, {MAX_LENGTH}], got {length!r}")
    # The package cuts its shuffled signals at int(train_split * samples): both sides
    # must hold every class at least once (10 signals) to train and to test on.
    number = isinstance(train_split, int | float | np.number) and not isinstance(train_split, bool)
    if not number or not 10 <= int(train_split * samples) <= samples - 10:
        raise ConfigError(
            f"train_split must be a share in (0, 1) that leaves at least 10 of the {samples} "
            f"signals on each side, got {train_split!r}"
        )
    ours = {"samples": int(samples), **noise, "shuffled": bool(shuffled), "length": int(length),
            "train_split": float(train_split)}  # fmt: skip
    arguments = {**PACKAGE_DEFAULTS, **{PACKAGE_NAMES[k]: v for k, v in ours.items()}}
    return json.dumps(arguments, sort_keys=True)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


@cache
def _arrays(arguments: str) -> dict[str, np.ndarray]:
    """The arrays for one set of package arguments: from the disk cache, else generated."""
    path = cache_path(arguments)
    arrays = _read(path, json.loads(arguments))
    if arrays is None:  # absent or unreadable: generate it (again)
        arrays = _generate(json.loads(arguments))
        disk.write(path, arrays, "MNIST-1D")
    for array in arrays.values():
        array.setflags(write=False)  # shared by every caller in this process
    return arrays


def _read(path: Path, arguments: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is absent, truncated, corrupt or wrong."""
    arrays = disk.read(path, ARRAYS)
    if arrays is None:
        return None
    samples, length = arguments["num_samples"], arguments["final_seq_length"]
    n_train = len(arrays["y"])
    expected = {
        "x": ((n_train, length), np.float32),
        "y": ((n_train,), np.int64),
        "x_test": ((samples - n_train, length), np.float32),
        "y_test": ((samples - n_train,), np.int64),
    }
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or arrays[name].dtype != dtype:
            return None
    return arrays


def _generate(arguments: dict[str, Any]) -> dict[str, np.ndarray]:
    """Run the package's generator, then put back the global generators it re-seeds."""
    from mnist1d.data import get_dataset_args, make_dataset  # imports matplotlib.pyplot
    from mnist1d.utils import ObjectView

    args = ObjectView({**get_dataset_args(as_dict=True), **arguments})
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:  # make_dataset calls random.seed and np.random.seed with its own seed
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return {
        "x": np.ascontiguousarray(data["x"], dtype=np.float32),
        "y": np.ascontiguousarray(data["y"], dtype=np.int64),
        "x_test": np.ascontiguousarray(data["x_test"], dtype=np.float32),
        "y_test": np.ascontiguousarray(data["y_test"], dtype=np.int64),
    }


LABEL_NOISE_SEED = 0  # fixed: which labels are wrong is part of the problem, not the run


def noisy(labels: np.ndarray, share: float, classes: int) -> np.ndarray:
    """A copy of ``labels`` with ``round(share * len)`` of them, chosen at random, set to a
    different class (uniform over the other ``classes - 1``)."""
    number = isinstance(share, int | float | np.number) and not isinstance(share, bool)
    if not number or not 0 <= share < 1:
        raise ConfigError(f"label_noise must be a share in [0, 1), got {share!r}")
    out = labels.copy()  # fancy indexing upstream copied already; this keeps callers safe
    rng = np.random.default_rng(LABEL_NOISE_SEED)
    flip = rng.choice(len(out), size=round(share * len(out)), replace=False)
    out[flip] = (out[flip] + rng.integers(1, classes, size=len(flip))) % classes
    return out


class MNIST1DDataModule(InMemoryDataModule):
    """MNIST-1D as flat (N, length) vectors for linear models and MLPs, (N, 1, length)
    one-channel signals for Conv1d, or (N, length, 1) sequences of one value per step for
    recurrent models.

    ``val_size`` signals of the package's training split validate (fixed and stratified);
    ``train_size`` keeps a fixed stratified subset of the rest; test is the package's test
    split. ``preprocessing`` defaults to "none": the package has already centred the data
    and scaled it to std 1, the paper's setup. ``generation`` records the data's arguments.

    ``label_noise``: that share of the training labels (rounded) is set to another class,
    drawn uniformly from the nine others; which signals and which classes are fixed
    (``LABEL_NOISE_SEED``), the same for every run seed, as the noise is part of the
    problem. Validation and test labels stay clean: they measure the true task.
    """

    task = "classification"
    num_classes = 10

    def __init__(
        self,
        *,
        batch_size: int | None = 100,
        layout: Layout = "flat",
        seed: int = 0,
        samples: int = 5000,
        corr_noise: float = 0.25,
        iid_noise: float = 0.02,
        shuffled: bool = False,
        length: int = 40,
        train_split: float = 0.8,
        val_size: int = 400,
        preprocessing: Named = "none",
        train_size: int | str = "full",
        label_noise: float = 0.0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.layout = layout
        self.generation = {"samples": samples, "corr_noise": corr_noise, "iid_noise": iid_noise,
                           "shuffled": shuffled, "length": length,
                           "train_split": train_split}  # fmt: skip
        data = mnist1d_arrays(**self.generation)
        x, y = data["x"], data["y"]
        val = subset_indices(y, _size(val_size, "val_size", len(y) - self.num_classes), "val_size")
        train = np.setdiff1d(np.arange(len(y)), val)  # the rest, in the package's order
        if train_size != "full":  # a fixed, stratified subset of the remaining examples
            size = _size(train_size, "train_size", len(train), full=True)
            train = train[subset_indices(y[train], size, "train_size")]
        splits = {
            "train": (x[train], noisy(y[train], label_noise, self.num_classes)),
            "val": (x[val], y[val]),
            "test": (data["x_test"].copy(), data["y_test"].copy()),
        }
        tensors = {
            name: (torch.from_numpy(a), torch.from_numpy(b)) for name, (a, b) in splits.items()
        }
        prepared = PREPROCESSING.create(preprocessing)(tensors)
        self.tensors = {name: (self._shape(x), y) for name, (x, y) in prepared.items()}

    def _shape(self, x: Tensor) -> Tensor:
        if self.layout == "channels":
            return x[:, None, :]
        if self.layout == "sequence":
            return x[:, :, None]
        return x


def _size(value: object, key: str, most: int, *, full: bool = False) -> int:
    """``value`` as a subset size between 10 (one example per class) and ``most``."""
    if isinstance(value, int) and not isinstance(value, bool) and 10 <= value <= most:
        return value
    allowed = f"an integer in [10, {most}]" + (" or 'full'" if full else "")
    raise ConfigError(f"{key} must be {allowed}, got {value!r}")
