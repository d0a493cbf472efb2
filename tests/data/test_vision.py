"""MNIST, Fashion-MNIST and CIFAR-10 from tiny files written in each dataset's own format.

Nothing is downloaded and torchvision is not mocked: the MNISTs are idx files read by
torchvision's own MNIST/FashionMNIST classes, CIFAR-10 is pickled batches read by our
reader of the official format. The download tests point torchvision's real
downloader at a mirror served over HTTP from a temporary folder on 127.0.0.1: the
same code path as an online download (request, md5 check where the sums are ours,
extraction), without the internet.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torchvision import datasets

from dlbench.components import preprocessing as base
from dlbench.data import InMemoryLoader
from dlbench.data.lightning import LightningData
from dlbench.data.vision import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    VisionDataModule,
    read_cifar10_batch,
    split_indices,
)
from dlbench.errors import ConfigError

N_TRAIN, N_TEST, VAL = 20, 10, 5
IDX_FILES = {
    "train-images-idx3-ubyte": ("train", "x"),
    "train-labels-idx1-ubyte": ("train", "y"),
    "t10k-images-idx3-ubyte": ("test", "x"),
    "t10k-labels-idx1-ubyte": ("test", "y"),
}
Raw = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 (N, C, H, W), labels)


def fake_images(n: int, shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images whose channels have different brightness, and labels 0..9."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x[:, 0] //= 2  # channel 0 darker, so per-channel statistics differ from global ones
    return x, (np.arange(n) % 10).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx format: magic 0x08 (uint8) + number of dims, big-endian sizes, raw data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_raw(seed: int = 0) -> Raw:
    return {
        "train": fake_images(N_TRAIN, (1, 28, 28), seed),
        "test": fake_images(N_TEST, (1, 28, 28), seed + 1),
    }


def write_mnist(folder: Path, raw: Raw, *, gz: bool = False) -> None:
    """The four idx files (or their .gz, as the mirrors serve them) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (split, part) in IDX_FILES.items():
        x, y = raw[split]
        data = idx_bytes(x[:, 0] if part == "x" else y)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def cifar_raw(seed: int = 0, per_batch: int = 4) -> Raw:
    return {
        "train": fake_images(5 * per_batch, (3, 32, 32), seed),
        "test": fake_images(N_TEST, (3, 32, 32), seed + 1),
    }


def write_cifar(root: Path, raw: Raw) -> Path:
    """``cifar-10-batches-py/`` as in the official archive: five train batches, test, meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, x: np.ndarray, y: np.ndarray, label: str) -> None:
        entry = {
            "batch_label": label,
            "labels": [int(v) for v in y],
            "data": x.reshape(len(x), -1),  # (N, 3072): red plane, green, blue; row-major
            "filenames": [f"img_{i}.png" for i in range(len(x))],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)

    x, y = raw["train"]
    for i, (xb, yb) in enumerate(zip(np.split(x, 5), np.split(y, 5), strict=True), start=1):
        dump(f"data_batch_{i}", xb, yb, f"training batch {i} of 5")
    dump("test_batch", *raw["test"], "testing batch 1 of 1")
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    meta = {"num_cases_per_batch": len(x) // 5, "label_names": names, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


CASES = [
    (
        MNISTDataModule,
        "MNIST",
        lambda root, raw: write_mnist(root / "MNIST" / "raw", raw),
        mnist_raw,
    ),
    (
        FashionMNISTDataModule,
        "Fashion-MNIST",
        lambda root, raw: write_mnist(root / "FashionMNIST" / "raw", raw),
        mnist_raw,
    ),
    (CIFAR10DataModule, "CIFAR-10", write_cifar, cifar_raw),
]
IDS = ["mnist", "fashion", "cifar10"]


@pytest.fixture(params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple:
    """(DataModule class, dataset name, root with tiny files written, the raw arrays)."""
    cls, name, write, make_raw = request.param
    raw = make_raw()
    write(tmp_path, raw)
    return cls, name, tmp_path, raw


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder and the http://127.0.0.1 URL serving it (404 for what it lacks)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)  # 127.0.0.1 must not go through a proxy
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def point_downloads_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Every dataset's download URL under ``url`` (the files keep their official names)."""
    monkeypatch.setattr(datasets.MNIST, "mirrors", [url])
    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", [url])
    monkeypatch.setattr(datasets.CIFAR10, "url", url + "cifar-10-python.tar.gz")


def loaded(cls: type[VisionDataModule], root: Path, **kwargs) -> VisionDataModule:
    dm = cls(root=root, download=False, val_size=VAL, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def expected(raw: Raw) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The documented split, standardized per channel with the training split's statistics."""
    x_all, y_all = raw["train"]
    train, val = (i.numpy() for i in split_indices(len(x_all), VAL))
    x_train = x_all[train].astype(np.float64)
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    parts = {"train": (x_all[train], y_all[train]), "val": (x_all[val], y_all[val])}
    parts["test"] = raw["test"]
    return {name: ((x - mean) / std, y.astype(np.int64)) for name, (x, y) in parts.items()}


def test_split_indices_partition_and_are_fixed() -> None:
    train, val = split_indices(100, 10)
    assert len(train) == 90 and len(val) == 10
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    again_train, again_val = split_indices(100, 10)
    assert torch.equal(train, again_train) and torch.equal(val, again_val)
    assert set(split_indices(100, 5)[1].tolist()) < set(val.tolist())  # smaller val: a subset


def test_tiny_files_load_split_and_standardize(case: tuple) -> None:
    cls, _, root, raw = case
    dm = loaded(cls, root, layout="image")
    want = expected(raw)
    sizes = {split: len(y) for split, (_, y) in dm.tensors.items()}
    assert sizes == {"train": len(raw["train"][1]) - VAL, "val": VAL, "test": N_TEST}
    for split, (x, y) in dm.tensors.items():
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (len(y), *cls.image_shape)
        np.testing.assert_allclose(x.numpy(), want[split][0], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(y.numpy(), want[split][1])
    # Per channel: each channel of the training split has mean 0 and std 1.
    x = dm.tensors["train"][0].double()
    channels = cls.image_shape[0]
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(channels, dtype=torch.float64))
    torch.testing.assert_close(
        x.std(dim=(0, 2, 3), unbiased=False), torch.ones(channels, dtype=torch.float64)
    )
    # Val and test use the training statistics, not their own.
    assert dm.tensors["test"][0].double().mean().abs() > 1e-4


def test_train_and_val_are_the_official_training_set(case: tuple) -> None:
    cls, _, root, raw = case
    dm = loaded(cls, root)
    labels = torch.cat([dm.tensors["train"][1], dm.tensors["val"][1]])
    assert sorted(labels.tolist()) == sorted(raw["train"][1].tolist())
    # Train and val are disjoint: no standardized image appears in both.
    train_rows = {row.numpy().tobytes() for row in dm.tensors["train"][0]}
    assert not any(row.numpy().tobytes() in train_rows for row in dm.tensors["val"][0])


@pytest.mark.parametrize("layout", ["flat", "image", "sequence"])
def test_layouts(case: tuple, layout: str) -> None:
    cls, _, root, _ = case
    image = loaded(cls, root, layout="image").tensors
    dm = cls(root=root, download=False, val_size=VAL, layout=layout)
    c, h, w = cls.image_shape
    shape = {"flat": (c * h * w,), "image": (c, h, w), "sequence": (h, c * w)}[layout]
    assert dm.input_shape == shape  # known before the files are read
    dm.setup()
    for split, (x, _) in dm.tensors.items():
        assert x.shape == (len(x), *shape)
        ref = image[split][0]
        if layout == "sequence":  # step r: row r of every channel, side by side
            torch.testing.assert_close(x[:, 3], ref[:, :, 3].reshape(len(x), c * w))
        else:
            torch.testing.assert_close(x.reshape(ref.shape), ref)


def test_loaders_serve_the_tensors(case: tuple) -> None:
    cls, _, root, _ = case
    dm = loaded(cls, root, batch_size=4)
    batches = list(dm.loader("train"))
    assert [len(yb) for _, yb in batches] == [4, 4, 4, 3]
    labels = torch.cat([yb for _, yb in batches])
    assert sorted(labels.tolist()) == sorted(dm.tensors["train"][1].tolist())
    ((xb, yb),) = list(dm.loader("test"))
    assert torch.equal(xb, dm.tensors["test"][0]) and torch.equal(yb, dm.tensors["test"][1])
    full = loaded(cls, root, batch_size=None)
    assert full.batch_size == len(full.tensors["train"][0]) and len(full.loader("train")) == 1


def test_setup_reads_once(case: tuple) -> None:
    cls, _, root, _ = case
    dm = loaded(cls, root)
    first = dm.tensors["train"][0]
    dm.setup("test")
    assert dm.tensors["train"][0] is first


def test_cifar_reader_keeps_the_channel_plane_layout(tmp_path: Path) -> None:
    raw = cifar_raw()
    folder = write_cifar(tmp_path, raw)
    x, y = read_cifar10_batch(folder / "data_batch_2")
    np.testing.assert_array_equal(x.numpy(), raw["train"][0][4:8])
    np.testing.assert_array_equal(y.numpy(), raw["train"][1][4:8])
    with open(folder / "data_batch_2", "rb") as f:
        flat = pickle.load(f)["data"]
    # pixel (channel 2, row 5, column 7) of image 1 is entry 2*1024 + 5*32 + 7 of its row
    assert x[1, 2, 5, 7] == flat[1, 2 * 1024 + 5 * 32 + 7]


@pytest.mark.parametrize(("cls", "name", "folder"), [
    (MNISTDataModule, "MNIST", "MNIST/raw"),
    (FashionMNISTDataModule, "Fashion-MNIST", "FashionMNIST/raw"),
    (CIFAR10DataModule, "CIFAR-10", "cifar-10-batches-py"),
])  # fmt: skip
def test_missing_files_without_download_is_one_line(
    tmp_path: Path, cls: type[VisionDataModule], name: str, folder: str
) -> None:
    root = tmp_path / "nowhere"
    dm = cls(root=root, download=False)
    for step in (dm.prepare_data, dm.setup):
        with pytest.raises(ConfigError) as err:
            step()
        message = str(err.value)
        assert "\n" not in message
        assert message.startswith(f"{name} not found: {root / folder} lacks ")
        assert "download=True" in message
    assert not root.exists()  # nothing was created, nothing downloaded


def test_files_present_means_no_download(
    case: tuple, mirror: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the files in place prepare_data must not download (the mirror is empty)."""
    cls, _, root, _ = case
    point_downloads_at(monkeypatch, mirror[1])
    dm = cls(root=root, download=True, val_size=VAL)
    dm.prepare_data()
    dm.setup()
    assert len(dm.tensors["test"][1]) == N_TEST


def test_mnist_downloads_from_a_mirror(
    tmp_path: Path, mirror: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchvision's real download and gunzip of the four .gz files."""
    raw = mnist_raw(seed=7)
    write_mnist(mirror[0], raw, gz=True)
    point_downloads_at(monkeypatch, mirror[1])
    # The real md5 sums are of the real files; our tiny ones have none to check.
    monkeypatch.setattr(datasets.MNIST, "resources", [(f"{n}.gz", None) for n in IDX_FILES])
    dm = MNISTDataModule(root=tmp_path / "data", download=True, val_size=VAL, layout="image")
    dm.prepare_data()
    assert dm.missing_files() == []
    dm.setup()
    np.testing.assert_allclose(dm.tensors["test"][0].numpy(), expected(raw)["test"][0], atol=1e-5)


def test_cifar_downloads_and_extracts_the_archive(
    tmp_path: Path, mirror: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = cifar_raw(seed=3)
    folder = write_cifar(tmp_path / "build", raw)
    with tarfile.open(mirror[0] / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    point_downloads_at(monkeypatch, mirror[1])
    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", None)
    dm = CIFAR10DataModule(root=tmp_path / "data", download=True, val_size=VAL, layout="image")
    dm.prepare_data()
    dm.setup()
    np.testing.assert_allclose(dm.tensors["test"][0].numpy(), expected(raw)["test"][0], atol=1e-5)


def test_archive_with_wrong_md5_is_refused(
    tmp_path: Path, mirror: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real md5 check stays on: a tiny archive is not the official one."""
    folder = write_cifar(tmp_path / "build", cifar_raw())
    with tarfile.open(mirror[0] / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    point_downloads_at(monkeypatch, mirror[1])
    with pytest.raises(ConfigError, match=r"^CIFAR-10: download into .* failed \(RuntimeError"):
        CIFAR10DataModule(root=tmp_path / "data", download=True).prepare_data()


@pytest.mark.parametrize(("cls", "name"), [
    (MNISTDataModule, "MNIST"),
    (FashionMNISTDataModule, "Fashion-MNIST"),
    (CIFAR10DataModule, "CIFAR-10"),
])  # fmt: skip
def test_failed_download_is_one_line(
    tmp_path: Path,
    mirror: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    cls: type[VisionDataModule],
    name: str,
) -> None:
    point_downloads_at(monkeypatch, mirror[1])  # an empty mirror: every file is a 404
    root = tmp_path / "data"
    with pytest.raises(ConfigError) as err:
        cls(root=root, download=True).prepare_data()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: download into {root} failed (")
    assert "404" in message


@pytest.mark.parametrize("which", [0, 1, -1])
def test_truncated_files_are_one_line(case: tuple, which: int) -> None:
    """Half a file: images that cannot be reshaped, or fewer labels than images."""
    cls, name, root, _ = case
    dm = cls(root=root, download=False, val_size=VAL)
    victim = dm.folder / dm.files[which]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError) as err:
        dm.setup()
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"{name}: cannot read {dm.folder} (")


def test_wrong_image_size_is_refused(tmp_path: Path) -> None:
    raw = mnist_raw()
    x, y = raw["test"]
    raw["test"] = (x[:, :, :27, :27].copy(), y)
    write_mnist(tmp_path / "MNIST" / "raw", raw)
    with pytest.raises(ConfigError, match=r"test images .* are \(1, 27, 27\), expected"):
        MNISTDataModule(root=tmp_path, download=False).setup()


def test_val_size_must_leave_training_images(case: tuple) -> None:
    cls, name, root, raw = case
    with pytest.raises(ConfigError, match=f"{name}: val_size must be below the"):
        cls(root=root, download=False, val_size=len(raw["train"][1])).setup()
    with pytest.raises(ConfigError, match="val_size must be >= 1"):
        cls(root=root, download=False, val_size=0)


def test_statistics_span_blocks_and_match_float64() -> None:
    """More samples than one statistics block: the result is still the exact one."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(base._BLOCK + 904, 3, 2, 2)).astype(np.float32)
    raw[:, 2] = 7.0  # a constant channel: centred, std 1
    mean, std = base.train_statistics(torch.from_numpy(raw), dims=(0, 2, 3))
    want = raw.astype(np.float64)
    np.testing.assert_allclose(mean.flatten(), want.mean(axis=(0, 2, 3)), rtol=1e-7)
    np.testing.assert_allclose(std.flatten()[:2], want.std(axis=(0, 2, 3))[:2], rtol=1e-7)
    assert std.flatten()[2] == 1.0


def test_trainer_runs_prepare_data_setup_and_the_loaders(case: tuple) -> None:
    """A Lightning fit and test on the tiny files: the hooks are called as Lightning calls them."""
    cls, _, root, _ = case
    dm = cls(root=root, download=False, val_size=VAL, batch_size=8)
    seen: list[tuple[str, int]] = []

    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(dm.input_shape[0], dm.num_classes)

        def _step(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, y = batch
            seen.append((stage, len(y)))
            return torch.nn.functional.cross_entropy(self.linear(x), y)

        def training_step(self, epoch: InMemoryLoader, _: int) -> torch.Tensor:
            # Lightning hands over one item per epoch, the epoch's loader (data.base).
            return sum(self._step("train", batch) for batch in epoch)

        def validation_step(self, batch: tuple, _: int) -> None:
            self._step("val", batch)

        def test_step(self, batch: tuple, _: int) -> None:
            self._step("test", batch)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    model = Probe()
    trainer.fit(model, datamodule=LightningData(dm))
    trainer.test(model, datamodule=LightningData(dm), verbose=False)
    assert seen == [("train", 8), ("train", 7), ("val", VAL), ("test", N_TEST)]
