"""InMemoryLoader: every sample once per epoch, reproducible shuffling, batch arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from dlbench.data import InMemoryLoader


def dataset(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 3)  # row i is [i, i, i]
    y = torch.arange(n)
    return x, y


def epoch(loader: InMemoryLoader) -> list[int]:
    """The sample ids of one epoch, in order, checking x and y stay paired."""
    ids = []
    for xb, yb in loader:
        assert torch.equal(xb[:, 0].long(), yb)
        assert torch.equal(xb, xb[:, :1].expand_as(xb))
        ids += yb.tolist()
    return ids


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (10, 5), (10, 1), (7, 7), (100, 32)])
def test_every_sample_exactly_once_per_epoch(shuffle: bool, n: int, batch_size: int) -> None:
    loader = InMemoryLoader(*dataset(n), batch_size, shuffle=shuffle, seed=1)
    for _ in range(3):
        ids = epoch(loader)
        assert sorted(ids) == list(range(n))
        assert len(ids) == n


def test_unshuffled_order_is_the_data_order() -> None:
    loader = InMemoryLoader(*dataset(10), 4)
    assert epoch(loader) == list(range(10))
    sizes = [len(yb) for _, yb in loader]
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (10, 5), (10, 4), (1, 1), (100, 32)])
def test_len_with_and_without_drop_last(n: int, batch_size: int) -> None:
    x, y = dataset(n)
    keep = InMemoryLoader(x, y, batch_size)
    drop = InMemoryLoader(x, y, batch_size, drop_last=True)
    assert len(keep) == math.ceil(n / batch_size)
    assert len(drop) == n // batch_size
    # len() is the number of batches iteration really yields.
    assert len(list(keep)) == len(keep)
    assert len(list(drop)) == len(drop)


@pytest.mark.parametrize("shuffle", [False, True])
def test_drop_last_yields_only_full_batches(shuffle: bool) -> None:
    loader = InMemoryLoader(*dataset(10), 3, drop_last=True, shuffle=shuffle)
    sizes = [len(yb) for _, yb in loader]
    assert sizes == [3, 3, 3]
    ids = epoch(loader)
    assert len(set(ids)) == 9


def test_same_seed_same_order() -> None:
    a = InMemoryLoader(*dataset(50), 8, shuffle=True, seed=7)
    b = InMemoryLoader(*dataset(50), 8, shuffle=True, seed=7)
    for _ in range(3):
        assert epoch(a) == epoch(b)


def test_order_does_not_depend_on_global_rng() -> None:
    torch.manual_seed(0)
    a = epoch(InMemoryLoader(*dataset(50), 8, shuffle=True, seed=7))
    torch.manual_seed(12345)
    torch.rand(100)
    b = epoch(InMemoryLoader(*dataset(50), 8, shuffle=True, seed=7))
    assert a == b


def test_different_seed_different_order() -> None:
    a = epoch(InMemoryLoader(*dataset(50), 8, shuffle=True, seed=1))
    b = epoch(InMemoryLoader(*dataset(50), 8, shuffle=True, seed=2))
    assert a != b


def test_each_epoch_reshuffles() -> None:
    loader = InMemoryLoader(*dataset(50), 8, shuffle=True, seed=0)
    orders = [tuple(epoch(loader)) for _ in range(4)]
    assert len(set(orders)) == 4
    assert orders[0] != tuple(range(50))


def test_batch_size_larger_than_dataset_is_clamped() -> None:
    loader = InMemoryLoader(*dataset(10), 64, shuffle=True)
    assert loader.batch_size == 10
    assert len(loader) == 1
    batches = list(loader)
    assert len(batches) == 1
    assert sorted(batches[0][1].tolist()) == list(range(10))
    # drop_last cannot drop the whole dataset: the one batch is full after clamping.
    assert len(InMemoryLoader(*dataset(10), 64, drop_last=True)) == 1


def test_mismatched_lengths_raise() -> None:
    x, y = dataset(10)
    with pytest.raises(ValueError, match="10 rows but y has 9"):
        InMemoryLoader(x, y[:9], 4)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_non_positive_batch_size_raises(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        InMemoryLoader(*dataset(10), batch_size)


def test_to_moves_data_and_returns_self() -> None:
    loader = InMemoryLoader(*dataset(10), 4, shuffle=True)
    assert loader.to("cpu") is loader
    assert sorted(epoch(loader)) == list(range(10))
