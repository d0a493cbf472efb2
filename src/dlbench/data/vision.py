"""MNIST, Fashion-MNIST and CIFAR-10 as in-memory data modules (``data.lightning`` adapts
them for a Trainer).

The files come from torchvision's downloaders (``prepare_data``, only when
``download`` is on and the files are missing); ``setup`` reads them once into uint8
tensors, splits off a validation set, converts to float, standardizes and keeps the
result in memory: 60k 28x28 or 50k 32x32x3 images fit easily, and serving them with
``InMemoryLoader`` avoids a DataLoader's per-image overhead, which dominates for
models this small.

- Splits: the official training set is split once, with the fixed ``SPLIT_SEED``,
  into train and ``val_size`` validation images (default 5,000: 55k/5k for the
  MNISTs, 45k/5k for CIFAR-10); the official test set is the test set. The split is
  a seeded permutation, not stratified (tiny test files could not be stratified); at
  5,000 images each class's share is within a point or so of the training set's.
  A smaller ``val_size`` gives a subset of the larger one's validation images.
- Standardization: per channel, with the training split's mean and std, the usual
  normalization for images (torchvision examples use MNIST's ``0.1307, 0.3081``),
  computed rather than hard-coded so it is exact for our split and right for any
  dataset. Per-pixel statistics (as for the 8x8 digits) would blow up the always-dark
  border pixels of MNIST.
- Reading: MNIST and Fashion-MNIST through ``torchvision.datasets.MNIST`` /
  ``FashionMNIST`` themselves, which read the raw idx files (they check only that
  the files exist). CIFAR-10 through ``read_cifar10_batch``, our reader of the
  official python pickle format: torchvision's ``CIFAR10`` compares every batch file
  with hard-coded md5 sums, so it refuses any file but the official ones, and tests
  (which write tiny files in the same format) could not exercise it. The download
  still goes through torchvision, which checks the archive's md5 before extracting,
  so the files read in production are the verified official ones.

Missing files with ``download`` off, a failed download or an unreadable file stop
with a one-line ``ConfigError`` naming the dataset, the folder and how to get the
files.
"""

from __future__ import annotations

import abc
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor

from dlbench.components.preprocessing import Splits, standardize
from dlbench.data.base import InMemoryDataModule, Layout
from dlbench.errors import ConfigError

if TYPE_CHECKING:
    from torchvision.datasets import MNIST

SPLIT_SEED = 0  # fixed on purpose: the split is part of the problem, not of the run

# What reading a malformed file raises, in our reader and in torchvision's idx reader.
_READ_ERRORS = (
    OSError,
    EOFError,
    pickle.UnpicklingError,
    KeyError,
    ValueError,
    TypeError,
    AssertionError,
    RuntimeError,
)


def _one_line(err: BaseException, limit: int = 300) -> str:
    """An exception as one short line (torchvision's download errors span several)."""
    text = " ".join(str(err).split()) or "no message"
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}"


def read_cifar10_batch(path: str | Path) -> tuple[Tensor, Tensor]:
    """One batch file of CIFAR-10's python version as ``(N, 3, 32, 32)`` uint8 and int64 labels.

    The format (https://www.cs.toronto.edu/~kriz/cifar.html): a pickled dict whose
    ``"data"`` is an ``(N, 3072)`` uint8 array, each row the 1024 red, then green,
    then blue values of a 32x32 image in row-major order, and whose ``"labels"`` are N
    ints in 0..9. The files were pickled by Python 2, hence ``encoding="latin1"``, as
    torchvision reads them. Unpickling can run code: read only files from the
    official archive (``prepare_data`` verifies its md5).
    """
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    data, labels = np.asarray(entry["data"]), np.asarray(entry["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: data is {data.dtype} {data.shape}, not uint8 (N, 3072)")
    if labels.shape != (len(data),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{path}: labels must be {len(data)} ints in 0..9")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32)), torch.from_numpy(labels.astype(np.int64))


def split_indices(n: int, val_size: int) -> tuple[Tensor, Tensor]:
    """The fixed split of ``n`` official training images: ``(train, val)`` index tensors.

    A permutation drawn with ``SPLIT_SEED``; its first ``val_size`` entries are the
    validation images, the rest the training images.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[val_size:], order[:val_size]


class VisionDataModule(InMemoryDataModule, abc.ABC):
    """An image dataset with an official train/test split, held in memory after ``setup``.

    Defaults: ``root = "data/"`` (relative to the working directory, next to
    ``runs/``); ``download = True``, so an online user needs to do nothing, while
    offline machines pass ``download=False`` and get a clear error if files are
    missing; ``val_size = 5000``, a validation set that estimates accuracy to about
    half a point; ``layout = "flat"`` as for the digits (MLPs), ``"image"`` gives
    ``(C, H, W)`` for CNNs and ``"sequence"`` one step per image row with the row's
    ``C*W`` values as features (sequential MNIST for RNNs); ``batch_size = 128``,
    DeepOBS's choice for its MNIST and CIFAR-10 problems; ``seed = 0``.
    """

    name: ClassVar[str]  # as users know it, for messages
    image_shape: ClassVar[tuple[int, int, int]]  # (C, H, W)
    files: ClassVar[tuple[str, ...]]  # what ``folder`` must hold
    task = "classification"
    num_classes = 10

    def __init__(
        self,
        *,
        root: str | Path = "data/",
        download: bool = True,
        val_size: int = 5000,
        layout: Layout = "flat",
        batch_size: int | None = 128,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        if layout not in ("flat", "image", "sequence"):
            raise ConfigError(f"layout must be flat, image or sequence, got {layout!r}")
        if val_size < 1:
            raise ConfigError(f"{self.name}: val_size must be >= 1, got {val_size}")
        self.root = Path(root).expanduser()
        self.download, self.val_size, self.layout = download, val_size, layout

    @property
    @abc.abstractmethod
    def folder(self) -> Path:
        """The folder the dataset's files live in, under ``root``."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Known before ``setup``, so a model can be built before the data is read."""
        c, h, w = self.image_shape
        return {"flat": (c * h * w,), "image": (c, h, w), "sequence": (h, c * w)}[self.layout]

    # -- files ---------------------------------------------------------------------------
    def missing_files(self) -> list[str]:
        """The names in ``files`` that ``folder`` lacks; empty when the dataset is there."""
        return [name for name in self.files if not (self.folder / name).is_file()]

    @abc.abstractmethod
    def how_to_get(self) -> str:
        """Where to get the files by hand, as the end of a one-line message."""

    @abc.abstractmethod
    def _fetch(self) -> None:
        """Download the files into ``root`` with torchvision."""

    @abc.abstractmethod
    def _read(self) -> Splits:
        """The official ``train`` and ``test`` sets as uint8 ``(N, C, H, W)`` and int64 labels."""

    def _not_found(self) -> ConfigError:
        missing = ", ".join(self.missing_files())
        if self.download:
            how = "prepare_data() downloads them (needs internet; the Trainer calls it)"
        else:
            how = "download is off; set download=True (needs internet)"
        return ConfigError(
            f"{self.name} not found: {self.folder} lacks {missing}; {how}, or {self.how_to_get()}"
        )

    def prepare_data(self) -> None:
        """Download the files if they are missing and ``download`` is on (one process only)."""
        if not self.missing_files():
            return
        if not self.download:
            raise self._not_found()
        try:
            self._fetch()
        except (OSError, RuntimeError) as err:  # urllib's URLError is an OSError
            raise ConfigError(
                f"{self.name}: download into {self.root} failed ({_one_line(err)}); check the "
                f"connection and run again, or {self.how_to_get()}"
            ) from err
        if self.missing_files():
            raise self._not_found()

    def setup(self, stage: str | None = None) -> None:
        """Read, split, convert and standardize once; later calls (other stages) reuse it."""
        if self.tensors:
            return
        if self.missing_files():
            raise self._not_found()
        try:
            official = self._read()
        except _READ_ERRORS as err:
            raise ConfigError(
                f"{self.name}: cannot read {self.folder} ({_one_line(err)}); delete it and "
                f"download again, or {self.how_to_get()}"
            ) from err
        for split, (x, y) in official.items():
            if len(x) != len(y):
                raise ConfigError(
                    f"{self.name}: cannot read {self.folder} ({split} has {len(x)} images but "
                    f"{len(y)} labels); delete it and download again, or {self.how_to_get()}"
                )
            if tuple(x.shape[1:]) != self.image_shape:
                raise ConfigError(
                    f"{self.name}: {split} images in {self.folder} are {tuple(x.shape[1:])}, "
                    f"expected {self.image_shape}; delete the folder and download again"
                )
        x_all, y_all = official["train"]
        n = len(x_all)
        if self.val_size >= n:
            raise ConfigError(
                f"{self.name}: val_size must be below the {n} official training images, "
                f"got {self.val_size}"
            )
        train, val = split_indices(n, self.val_size)
        x_test, y_test = official["test"]
        splits = {
            "train": (x_all[train].float(), y_all[train]),
            "val": (x_all[val].float(), y_all[val]),
            "test": (x_test.float(), y_test),
        }
        splits = standardize(splits, dims=(0, 2, 3), inplace=True)  # per channel
        self.tensors = {name: (self._shape(x), y) for name, (x, y) in splits.items()}

    def _shape(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if self.layout == "flat":
            return x.reshape(n, c * h * w)
        if self.layout == "sequence":  # step r is image row r, all channels side by side
            return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
        return x


class MNISTDataModule(VisionDataModule):
    """MNIST: 60,000 + 10,000 handwritten digits, 1x28x28 grey levels, 10 classes.

    Files: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, the
    uncompressed idx files, read by ``torchvision.datasets.MNIST``.
    """

    name = "MNIST"
    torchvision_name = "MNIST"  # the torchvision class; also its folder under root
    image_shape = (1, 28, 28)
    files = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )

    @property
    def folder(self) -> Path:
        return self.root / self.torchvision_name / "raw"

    def _dataset(self, *, train: bool, download: bool = False) -> MNIST:
        import torchvision.datasets  # imported on use: most runs never touch torchvision

        cls = getattr(torchvision.datasets, self.torchvision_name)
        return cls(str(self.root), train=train, download=download)

    def how_to_get(self) -> str:
        import torchvision.datasets

        mirror = getattr(torchvision.datasets, self.torchvision_name).mirrors[0]
        return f"gunzip the four .gz files from {mirror} into {self.folder}"

    def _fetch(self) -> None:
        self._dataset(train=True, download=True)  # downloads (and md5-checks) all four files

    def _read(self) -> Splits:
        splits = {}
        for split, train in (("train", True), ("test", False)):
            ds = self._dataset(train=train)
            splits[split] = (ds.data.unsqueeze(1), ds.targets.long())
        return splits


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST: Zalando's clothing images in MNIST's format, a harder drop-in MNIST.

    Files: ``<root>/FashionMNIST/raw/`` with MNIST's four file names.
    """

    name = "Fashion-MNIST"
    torchvision_name = "FashionMNIST"


class CIFAR10DataModule(VisionDataModule):
    """CIFAR-10: 50,000 + 10,000 colour images, 3x32x32, 10 classes.

    Files: ``<root>/cifar-10-batches-py/data_batch_1`` .. ``data_batch_5`` and
    ``test_batch`` (the python version), read by ``read_cifar10_batch``.
    """

    name = "CIFAR-10"
    image_shape = (3, 32, 32)
    files = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)

    @property
    def folder(self) -> Path:
        return self.root / "cifar-10-batches-py"

    def how_to_get(self) -> str:
        from torchvision.datasets import CIFAR10

        return f"extract {CIFAR10.url} into {self.root}"

    def _fetch(self) -> None:
        from torchvision.datasets import CIFAR10
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(
            CIFAR10.url, str(self.root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5
        )

    def _read(self) -> Splits:
        train = [read_cifar10_batch(self.folder / name) for name in self.files[:-1]]
        return {
            "train": (torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])),
            "test": read_cifar10_batch(self.folder / "test_batch"),
        }
