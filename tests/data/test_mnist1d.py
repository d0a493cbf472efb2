"""MNIST-1D: the generated arrays, their disk cache, and the DataModule's fixed splits.

Real generation throughout (the default set once, the shuffled set once, small sets for the
cache), in a temporary cache folder, so no test reads or writes the user's cache.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbench.data import MNIST1DDataModule
from dlbench.data.cache import cache_dir
from dlbench.data.mnist1d import (
    GENERATION,
    _package_arguments,
    cache_path,
    clear_memory_cache,
    mnist1d_arrays,
)
from dlbench.errors import ConfigError

# The package's split of its 5,000 signals (seed 42): 500 per class in all, not balanced
# within train and test. The validation split is stratified on the training counts.
TRAIN_COUNTS = [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
TEST_COUNTS = [102, 104, 89, 106, 106, 98, 99, 96, 98, 102]
VAL_COUNTS = [40, 40, 41, 40, 39, 40, 40, 40, 40, 40]
SMALL = {"samples": 100}  # a 0.05 s generation for the cache tests


@pytest.fixture(scope="module", autouse=True)
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One temporary cache folder for the module, and an empty in-process cache around it."""
    folder = tmp_path_factory.mktemp("dlbench-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLBENCH_CACHE", str(folder))
        clear_memory_cache()
        yield folder
    clear_memory_cache()


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder of the test's own, and nothing in memory."""
    monkeypatch.setenv("DLBENCH_CACHE", str(tmp_path))
    clear_memory_cache()
    yield tmp_path
    clear_memory_cache()


@pytest.fixture(scope="module")
def arrays(module_cache: Path) -> dict[str, np.ndarray]:
    return mnist1d_arrays()


@pytest.fixture(scope="module")
def flat(arrays: dict[str, np.ndarray]) -> MNIST1DDataModule:
    return MNIST1DDataModule()


def rows(x: np.ndarray | torch.Tensor) -> list[bytes]:
    return [r.tobytes() for r in np.asarray(x).reshape(len(x), -1)]


# The arrays


def test_default_shapes_and_dtypes(arrays: dict[str, np.ndarray]) -> None:
    assert arrays["x"].shape == (4000, 40) and arrays["x"].dtype == np.float32
    assert arrays["x_test"].shape == (1000, 40) and arrays["x_test"].dtype == np.float32
    assert arrays["y"].shape == (4000,) and arrays["y"].dtype == np.int64
    assert arrays["y_test"].shape == (1000,) and arrays["y_test"].dtype == np.int64
    everything = np.concatenate([arrays["x"], arrays["x_test"]]).astype(np.float64)
    assert abs(everything.mean()) < 1e-5 and abs(everything.std() - 1) < 1e-5  # package's scaling
    assert len(set(rows(everything))) == 5000  # continuous noise: no two signals are equal


def test_class_counts(arrays: dict[str, np.ndarray]) -> None:
    train = np.bincount(arrays["y"], minlength=10)
    test = np.bincount(arrays["y_test"], minlength=10)
    assert (train + test).tolist() == [500] * 10
    assert train.tolist() == TRAIN_COUNTS
    assert test.tolist() == TEST_COUNTS


def test_arrays_are_shared_and_read_only(arrays: dict[str, np.ndarray]) -> None:
    again = mnist1d_arrays(samples=5000, length=40)  # the same arguments, spelt differently
    assert all(again[name] is arrays[name] for name in arrays)
    with pytest.raises(ValueError, match="read-only"):
        arrays["x"][0, 0] = 1.0


def test_defaults_are_documented() -> None:
    assert GENERATION == {
        "samples": 5000, "corr_noise": 0.25, "iid_noise": 0.02, "shuffled": False, "length": 40,
        "train_split": 0.8,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"samples": 95}, "samples must be a multiple of 10 and at least 100"),
        ({"samples": 1005}, "samples must be a multiple of 10"),
        ({"samples": 5000.0}, "samples must be"),
        ({"corr_noise": -0.1}, r"corr_noise must be a finite number >= 0"),
        ({"iid_noise": float("nan")}, r"iid_noise must be a finite number >= 0"),
        ({"shuffled": "yes"}, "shuffled must be true or false"),
        ({"length": 9}, r"length must be an integer in \[10, "),
        ({"length": 0}, r"length must be an integer in \[10, "),
        ({"train_split": 1.0}, r"train_split must be a share in \(0, 1\)"),
        ({"train_split": 0.001}, "leaves at least 10 of the 5000 signals on each side"),
        ({"train_split": "half"}, "train_split must be a share"),
    ],
)
def test_bad_generation_arguments_are_config_errors(settings: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        mnist1d_arrays(**settings)
    with pytest.raises(ConfigError, match=match):
        MNIST1DDataModule(**settings)


def test_generation_leaves_the_global_generators_alone(fresh_cache: Path) -> None:
    random.seed(123)
    np.random.seed(456)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    mnist1d_arrays(**SMALL)  # a miss: the package re-seeds both generators to 42
    assert len(list(fresh_cache.glob("*.npz"))) == 1
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and after[2:] == numpy_state[2:]
    np.testing.assert_array_equal(after[1], numpy_state[1])


def test_importing_dlbench_data_does_not_import_the_package() -> None:
    code = "import sys, dlbench.data; assert 'mnist1d' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# The disk cache


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLBENCH_CACHE", "/somewhere/else")
    assert cache_dir() == Path("/somewhere/else")
    monkeypatch.delenv("DLBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache_dir() == Path("/xdg/dlbench")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "dlbench"


def test_a_miss_writes_one_file_and_a_hit_reads_it(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = mnist1d_arrays(**SMALL)
    (file,) = fresh_cache.iterdir()  # exactly one file, and no temporary left behind
    assert file.name.startswith("mnist1d-") and file.suffix == ".npz"
    assert len(file.stem) == len("mnist1d-") + 16
    clear_memory_cache()

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated although the cache file was there")

    import mnist1d.data

    monkeypatch.setattr(mnist1d.data, "make_dataset", fail)
    second = mnist1d_arrays(**SMALL)
    assert second is not first  # read again from the file ...
    for name in first:  # ... with the same contents
        np.testing.assert_array_equal(second[name], first[name])
        assert second[name].dtype == first[name].dtype


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_an_unreadable_file_is_generated_again(fresh_cache: Path, damage: str) -> None:
    good = {name: a.copy() for name, a in mnist1d_arrays(**SMALL).items()}
    (file,) = fresh_cache.glob("*.npz")
    data = file.read_bytes()
    file.write_bytes({"garbage": b"not a zip file" * 10, "truncated": data[: len(data) // 2],
                      "empty": b""}[damage])  # fmt: skip
    clear_memory_cache()
    again = mnist1d_arrays(**SMALL)
    for name in good:
        np.testing.assert_array_equal(again[name], good[name])
    assert [p.name for p in fresh_cache.iterdir()] == [file.name]
    with np.load(file) as stored:  # replaced by a good file
        np.testing.assert_array_equal(stored["x"], good["x"])


def test_different_arguments_get_different_files(fresh_cache: Path) -> None:
    a = mnist1d_arrays(**SMALL)
    b = mnist1d_arrays(samples=200)
    c = mnist1d_arrays(samples=100, iid_noise=0.05)
    assert len(list(fresh_cache.glob("mnist1d-*.npz"))) == 3
    assert a["x"].shape == (80, 40) and b["x"].shape == (160, 40)
    assert not np.array_equal(a["x"], c["x"])
    np.testing.assert_array_equal(a["y"], c["y"])  # same seed: the noise differs, not the order
    assert mnist1d_arrays(samples=100, length=12)["x_test"].shape == (20, 12)


# Shuffled positions


def test_shuffled_is_one_fixed_permutation_of_the_positions(
    arrays: dict[str, np.ndarray],
) -> None:
    shuffled = mnist1d_arrays(shuffled=True)
    np.testing.assert_array_equal(shuffled["y"], arrays["y"])
    np.testing.assert_array_equal(shuffled["y_test"], arrays["y_test"])
    x, xs = arrays["x"].astype(np.float64), shuffled["x"].astype(np.float64)
    # Column j of the shuffled set is column perm[j] of the plain one (to rounding: the
    # package standardizes after permuting, so its sums run in another order).
    distance = np.abs(x[:, :, None] - xs[:, None, :]).max(axis=0)  # (plain, shuffled)
    perm = distance.argmin(axis=0)
    assert distance[perm, np.arange(40)].max() < 1e-5
    assert sorted(perm.tolist()) == list(range(40))  # a permutation ...
    assert (perm != np.arange(40)).sum() > 30  # ... that moves most positions
    np.testing.assert_allclose(shuffled["x_test"], arrays["x_test"][:, perm], atol=1e-5)


# The DataModule


def test_split_sizes_and_stratified_validation(flat: MNIST1DDataModule) -> None:
    sizes = {name: len(y) for name, (_, y) in flat.tensors.items()}
    assert sizes == {"train": 3600, "val": 400, "test": 1000}
    assert flat.input_shape == (40,)
    val = flat.tensors["val"][1].numpy()
    assert np.bincount(val, minlength=10).tolist() == VAL_COUNTS
    expected = 400 * np.asarray(TRAIN_COUNTS) / 4000  # each class's share, to rounding
    assert np.all(np.abs(np.bincount(val, minlength=10) - expected) < 1)
    for x, y in flat.tensors.values():
        assert x.dtype == torch.float32 and y.dtype == torch.int64


def test_val_and_train_partition_the_official_training_split(
    flat: MNIST1DDataModule, arrays: dict[str, np.ndarray]
) -> None:
    official = dict(zip(rows(arrays["x"]), arrays["y"].tolist(), strict=True))
    train = dict(
        zip(rows(flat.tensors["train"][0]), flat.tensors["train"][1].tolist(), strict=True)
    )
    val = dict(zip(rows(flat.tensors["val"][0]), flat.tensors["val"][1].tolist(), strict=True))
    assert not train.keys() & val.keys()
    assert train | val == official  # the same signals, with the same labels
    np.testing.assert_array_equal(flat.tensors["test"][0].numpy(), arrays["x_test"])
    np.testing.assert_array_equal(flat.tensors["test"][1].numpy(), arrays["y_test"])


def test_the_split_does_not_depend_on_the_run_seed(flat: MNIST1DDataModule) -> None:
    other = MNIST1DDataModule(seed=7)
    for name in ("train", "val", "test"):
        assert torch.equal(other.tensors[name][0], flat.tensors[name][0])


def test_tensors_are_copies_of_the_cache(arrays: dict[str, np.ndarray]) -> None:
    dm = MNIST1DDataModule()
    before = arrays["x_test"][0, 0]
    dm.tensors["test"][0][0, 0] += 1.0
    assert arrays["x_test"][0, 0] == before


@pytest.mark.parametrize(
    ("layout", "shape"), [("flat", (40,)), ("channels", (1, 40)), ("sequence", (40, 1))]
)
def test_layouts(layout: str, shape: tuple[int, ...], flat: MNIST1DDataModule) -> None:
    dm = MNIST1DDataModule(layout=layout)
    assert dm.input_shape == shape
    for name, (x, y) in dm.tensors.items():
        assert x.shape == (len(y), *shape)
        torch.testing.assert_close(x.reshape(len(y), 40), flat.tensors[name][0])


@pytest.mark.parametrize("layout", ["image", "grid"])
def test_other_layouts_are_config_errors(layout: str) -> None:
    with pytest.raises(ConfigError, match="layout must be one of flat, channels, sequence"):
        MNIST1DDataModule(layout=layout)  # type: ignore[arg-type]


def test_val_size_is_a_nested_stratified_subset(flat: MNIST1DDataModule) -> None:
    small = MNIST1DDataModule(val_size=100)
    assert len(small.tensors["val"][1]) == 100 and len(small.tensors["train"][1]) == 3900
    assert set(rows(small.tensors["val"][0])) <= set(rows(flat.tensors["val"][0]))
    counts = np.bincount(small.tensors["val"][1].numpy(), minlength=10)
    assert np.all(np.abs(counts - 100 * np.asarray(TRAIN_COUNTS) / 4000) < 1)


def test_train_size_keeps_a_stratified_subset_of_the_rest(flat: MNIST1DDataModule) -> None:
    dm = MNIST1DDataModule(train_size=500, seed=3)
    x, y = dm.tensors["train"]
    assert len(y) == 500
    assert set(rows(x)) <= set(rows(flat.tensors["train"][0]))
    assert torch.equal(dm.tensors["val"][0], flat.tensors["val"][0])  # validation unchanged
    expected = 500 * np.bincount(flat.tensors["train"][1].numpy()) / 3600
    assert np.all(np.abs(np.bincount(y.numpy(), minlength=10) - expected) < 1)
    assert torch.equal(MNIST1DDataModule(train_size=500).tensors["train"][0], x)  # any seed


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"val_size": 5}, r"val_size must be an integer in \[10, 3990\], got 5"),
        ({"val_size": 3991}, r"val_size must be an integer in \[10, 3990\]"),
        ({"train_size": 9}, r"train_size must be an integer in \[10, 3600\] or 'full'"),
        ({"train_size": 3601}, r"train_size must be an integer in \[10, 3600\] or 'full'"),
        ({"train_size": "half"}, r"train_size must be .* or 'full', got 'half'"),
        ({"preprocessing": "whiten"}, "unknown preprocessing 'whiten'"),
    ],
)
def test_bad_split_settings_are_config_errors(settings: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MNIST1DDataModule(**settings)


def test_preprocessing_uses_training_statistics(flat: MNIST1DDataModule) -> None:
    dm = MNIST1DDataModule(preprocessing="standardize")
    x = dm.tensors["train"][0].double()
    torch.testing.assert_close(x.mean(0), torch.zeros(40, dtype=torch.float64), atol=1e-5, rtol=0)
    raw = flat.tensors["train"][0].double()
    mean, std = raw.mean(0), raw.std(0, unbiased=False)
    expected = (flat.tensors["test"][0].double() - mean) / std
    torch.testing.assert_close(dm.tensors["test"][0].double(), expected, atol=1e-5, rtol=0)


def test_generation_is_recorded() -> None:
    dm = MNIST1DDataModule(samples=100, iid_noise=0.05, layout="channels", val_size=20)
    assert dm.generation == {**GENERATION, "samples": 100, "iid_noise": 0.05}
    assert {name: len(y) for name, (_, y) in dm.tensors.items()} == {
        "train": 60, "val": 20, "test": 20,
    }  # fmt: skip
    assert dm.input_shape == (1, 40)


def test_label_noise_sets_that_share_of_training_labels_to_another_class() -> None:
    clean = MNIST1DDataModule()
    noisy = MNIST1DDataModule(label_noise=0.15, seed=3)
    y, y_noisy = clean.tensors["train"][1], noisy.tensors["train"][1]
    changed = y != y_noisy
    assert int(changed.sum()) == round(0.15 * len(y))  # each one moved to another class
    assert torch.equal(noisy.tensors["train"][0], clean.tensors["train"][0])  # same signals
    for split in ("val", "test"):  # the true task is measured on clean labels
        assert torch.equal(noisy.tensors[split][1], clean.tensors[split][1])
    other_seed = MNIST1DDataModule(label_noise=0.15, seed=4)  # the noise is the problem's
    assert torch.equal(other_seed.tensors["train"][1], y_noisy)
    moved = (y_noisy[changed] - y[changed]) % 10  # uniform over the nine other classes
    assert set(moved.tolist()) == set(range(1, 10))


@pytest.mark.parametrize("share", [-0.1, 1.0, "some", True])
def test_a_label_noise_outside_0_1_is_refused(share: object) -> None:
    with pytest.raises(ConfigError, match="label_noise must be a share in"):
        MNIST1DDataModule(label_noise=share)


def test_train_split_moves_the_packages_cut_and_keeps_the_default_files(
    fresh_cache: Path,
) -> None:
    """The double-descent notebook's 16,000 signals with train_split 0.25: 4,000 and 12,000.
    The default's cache key is unchanged (train_split 0.8 was always one of its arguments)."""
    default = cache_path(_package_arguments(5000, 0.25, 0.02, False, 40))
    assert default == cache_path(_package_arguments(5000, 0.25, 0.02, False, 40, 0.8))
    arrays = mnist1d_arrays(samples=200, train_split=0.25)
    assert arrays["x"].shape == (50, 40) and arrays["x_test"].shape == (150, 40)
    data = MNIST1DDataModule(samples=200, train_split=0.5, val_size=20)
    assert len(data.tensors["train"][0]) == 80 and len(data.tensors["test"][0]) == 100
    assert data.generation["train_split"] == 0.5
