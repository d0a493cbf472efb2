"""The digits data: the fixed stratified split and standardization with training statistics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from dlbench.data import DigitsDataModule
from dlbench.data.digits import digits_splits, train_subset
from dlbench.errors import ConfigError

N_DIGITS = 1797


@pytest.fixture(scope="module")
def splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return digits_splits()


@pytest.fixture(scope="module")
def full() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def flat() -> DigitsDataModule:
    return DigitsDataModule(batch_size=64, layout="flat")


def test_split_sizes_are_60_20_20(splits: dict) -> None:
    sizes = {name: len(x) for name, (x, _) in splits.items()}
    assert sizes == {"train": 1078, "val": 359, "test": 360}
    assert sum(sizes.values()) == N_DIGITS
    for x, y in splits.values():
        assert x.shape == (len(y), 64)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() >= 0 and x.max() <= 16


def test_splits_partition_the_dataset(splits: dict, full: tuple) -> None:
    """The three splits together are the dataset, as a multiset of (image, label) rows.

    The digits contain duplicate images, so row identity cannot prove disjointness;
    equal multiplicities of every distinct row (with sizes summing to 1797) can.
    """

    def row_counts(x: np.ndarray, y: np.ndarray) -> dict[bytes, int]:
        rows = np.concatenate([x, y[:, None].astype(np.float32)], axis=1)
        unique, counts = np.unique(rows, axis=0, return_counts=True)
        return {row.tobytes(): int(c) for row, c in zip(unique, counts, strict=True)}

    x_all = np.concatenate([x for x, _ in splits.values()])
    y_all = np.concatenate([y for _, y in splits.values()])
    assert row_counts(x_all, y_all) == row_counts(*full)


def test_split_is_deterministic(splits: dict) -> None:
    again = digits_splits()
    for name in splits:
        np.testing.assert_array_equal(splits[name][0], again[name][0])
        np.testing.assert_array_equal(splits[name][1], again[name][1])


def test_splits_are_stratified(splits: dict, full: tuple) -> None:
    overall = np.bincount(full[1], minlength=10) / N_DIGITS
    train_share = np.bincount(splits["train"][1], minlength=10) / len(splits["train"][1])
    np.testing.assert_allclose(train_share, overall, rtol=0.02)
    # Stratification puts each class within one sample of its exact proportion.
    for _, y in splits.values():
        counts = np.bincount(y, minlength=10)
        assert np.all(np.abs(counts - overall * len(y)) <= 1.0)


def test_train_is_standardized(flat: DigitsDataModule, splits: dict) -> None:
    x = flat.tensors["train"][0].double()
    raw = splits["train"][0]
    varying = torch.from_numpy(raw.std(axis=0) > 0)
    assert 0 < varying.sum() < 64  # the digits have a few always-blank border pixels
    torch.testing.assert_close(
        x.mean(dim=0), torch.zeros(64, dtype=torch.float64), atol=1e-5, rtol=0
    )
    std = x.std(dim=0, unbiased=False)
    torch.testing.assert_close(
        std[varying], torch.ones(int(varying.sum()), dtype=torch.float64), atol=1e-4, rtol=0
    )
    # Pixels constant in training are centred, not divided by zero.
    assert torch.all(x[:, ~varying] == 0)
    assert torch.isfinite(x).all()


def test_val_and_test_use_training_statistics(flat: DigitsDataModule, splits: dict) -> None:
    x_train = splits["train"][0].astype(np.float64)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    for name in ("val", "test"):
        x, y = splits[name]
        got_x, got_y = flat.tensors[name]
        np.testing.assert_allclose(got_x.numpy(), (x - mean) / std, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got_y.numpy(), y)
        # Not standardized with its own statistics: its mean is not exactly zero.
        assert got_x.mean(dim=0).abs().max().item() > 1e-3


def test_labels_are_kept(flat: DigitsDataModule, splits: dict) -> None:
    for name, (_, y) in splits.items():
        assert flat.tensors[name][1].dtype == torch.int64
        np.testing.assert_array_equal(flat.tensors[name][1].numpy(), y)


@pytest.mark.parametrize(
    ("layout", "shape"), [("flat", (64,)), ("image", (1, 8, 8)), ("sequence", (8, 8))]
)
def test_layouts(layout: str, shape: tuple[int, ...], flat: DigitsDataModule) -> None:
    dm = flat if layout == "flat" else DigitsDataModule(layout=layout)
    assert dm.input_shape == shape
    for name, n in (("train", 1078), ("val", 359), ("test", 360)):
        x, _ = dm.tensors[name]
        assert x.shape == (n, *shape)
        assert x.dtype == torch.float32
        # Same values, only reshaped; row r of an image is step r of a sequence.
        torch.testing.assert_close(x.reshape(n, 64), flat.tensors[name][0])
    if layout != "flat":
        x = dm.tensors["train"][0].reshape(-1, 8, 8)
        torch.testing.assert_close(x[:, 2], flat.tensors["train"][0][:, 16:24])


def test_batch_size_none_is_full_batch() -> None:
    dm = DigitsDataModule(batch_size=None)
    assert dm.batch_size == 1078
    batches = list(dm.loader("train"))
    assert len(batches) == 1
    xb, yb = batches[0]
    assert xb.shape == (1078, 64)
    # Shuffled, but the same samples as the training set.
    assert sorted(yb.tolist()) == sorted(dm.tensors["train"][1].tolist())


def test_train_loader_batches_and_shuffles(flat: DigitsDataModule) -> None:
    loader = flat.loader("train")
    assert len(loader) == -(-1078 // 64)  # 17 batches, the last one partial
    sizes = [len(yb) for _, yb in loader]
    assert sizes == [64] * 16 + [1078 - 16 * 64]
    first = torch.cat([yb for _, yb in loader])
    assert not torch.equal(first, flat.tensors["train"][1])
    assert sorted(first.tolist()) == sorted(flat.tensors["train"][1].tolist())


def test_train_order_depends_on_seed_only() -> None:
    a = DigitsDataModule(seed=3).loader("train")
    b = DigitsDataModule(seed=3).loader("train")
    c = DigitsDataModule(seed=4).loader("train")
    ya = torch.cat([yb for _, yb in a])
    assert torch.equal(ya, torch.cat([yb for _, yb in b]))
    assert not torch.equal(ya, torch.cat([yb for _, yb in c]))


@pytest.mark.parametrize(("split", "n"), [("val", 359), ("test", 360)])
def test_eval_loaders_are_one_unshuffled_batch(flat: DigitsDataModule, split: str, n: int) -> None:
    loader = flat.loader(split)
    ((xb, yb),) = list(loader)
    assert xb.shape == (n, 64)
    assert torch.equal(xb, flat.tensors[split][0])
    assert torch.equal(yb, flat.tensors[split][1])


# train_size: a fixed, stratified training subset (overfitting and label-scarcity studies)


@pytest.mark.parametrize("size", [10, 100, 537, 1077])
def test_train_subset_is_stratified_and_exact(splits: dict, size: int) -> None:
    x, y = splits["train"]
    x_sub, y_sub = train_subset(x, y, size)
    assert len(y_sub) == size
    expected = size * np.bincount(y) / len(y)
    assert np.all(np.abs(np.bincount(y_sub, minlength=10) - expected) < 1)  # share +- rounding
    rows = {row.tobytes() for row in x}
    assert all(row.tobytes() in rows for row in x_sub)  # drawn from the training split only


def test_train_subsets_are_fixed_and_nested(splits: dict) -> None:
    x, y = splits["train"]
    small, large = train_subset(x, y, 50)[0], train_subset(x, y, 200)[0]
    assert np.array_equal(small, train_subset(x, y, 50)[0])
    assert {r.tobytes() for r in small} <= {r.tobytes() for r in large}


def test_subset_is_the_same_for_every_run_seed_and_standardized_on_itself() -> None:
    a = DigitsDataModule(train_size=100, seed=0)
    b = DigitsDataModule(train_size=100, seed=7)
    assert torch.equal(a.tensors["train"][0], b.tensors["train"][0])
    assert len(a.tensors["train"][0]) == 100 and len(a.tensors["val"][0]) == 359
    x = a.tensors["train"][0]
    varying = x.std(0) > 0
    assert torch.allclose(x.mean(0), torch.zeros(64), atol=1e-5)  # the subset's own statistics
    assert torch.allclose(
        x.std(0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-4
    )


@pytest.mark.parametrize("size", [9, 1079])
def test_train_size_out_of_range_is_a_config_error(size: int) -> None:
    with pytest.raises(ConfigError, match=r"train_size must be between 10 .* and 1078"):
        DigitsDataModule(train_size=size)


def test_labelled_keeps_a_fraction_of_labels_standardized_with_every_image() -> None:
    full = DigitsDataModule(layout="image")
    few = DigitsDataModule(layout="image", labelled=0.1, seed=3)
    x_all, y_all = full.tensors["train"]
    x, y = few.tensors["train"]
    assert len(y) == 108 and set(y.tolist()) == set(range(10))
    # Rows of the fully preprocessed set, not a set standardized on itself.
    rows = {r.numpy().tobytes() for r in x_all}
    assert all(r.numpy().tobytes() in rows for r in x)
    assert torch.equal(few.tensors["val"][0], full.tensors["val"][0])
    tiny = DigitsDataModule(labelled=0.005)  # 5 labels would miss classes: one per class
    assert len(tiny.tensors["train"][1]) == 10 and set(tiny.tensors["train"][1].tolist()) == set(
        range(10)
    )
    assert DigitsDataModule(labelled=0.01).tensors["train"][1].numel() == 11


def test_upsampled_images_keep_the_standardized_pixels_average() -> None:
    small = DigitsDataModule(layout="image").tensors["train"][0]
    big = DigitsDataModule(layout="image", image_size=24).tensors["train"][0]
    assert big.shape == (1078, 1, 24, 24)
    assert torch.allclose(big.mean(), small.mean(), atol=0.02)


def test_the_split_is_cached_on_disk_and_read_back_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLBENCH_CACHE", str(tmp_path))
    digits_splits.cache_clear()
    try:
        made = digits_splits()  # with scikit-learn, then written
        (path,) = tmp_path.glob("digits-split0-sklearn*.npz")
        digits_splits.cache_clear()
        read = digits_splits()  # from the file
        for split in ("train", "val", "test"):
            for a, b in zip(made[split], read[split], strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b)
        # A later process reads the file and never imports scikit-learn (0.8 s).
        code = (
            "import sys; from dlbench.data.digits import digits_splits; digits_splits(); "
            "assert 'sklearn' not in sys.modules"
        )
        env = {**os.environ, "DLBENCH_CACHE": str(tmp_path)}
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        path.write_bytes(b"not an npz")  # a corrupt file is made again
        digits_splits.cache_clear()
        assert np.array_equal(digits_splits()["test"][1], made["test"][1])
    finally:
        digits_splits.cache_clear()
