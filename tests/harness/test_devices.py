"""Device slots on simulated machines: which workers start and what each one sees."""

from __future__ import annotations

import os

import pytest
import torch

from dlbench.errors import ConfigError
from dlbench.harness.devices import hidden_gpus, plan


def _gpus(slots) -> list[str]:
    return [slot.env["CUDA_VISIBLE_DEVICES"] for slot in slots]


def test_auto_takes_every_gpu_one_worker_each() -> None:
    slots = plan("auto", workers=None, per_device=1, gpu_count=4, cores=16)
    assert _gpus(slots) == ["0", "1", "2", "3"]
    assert {s.accelerator for s in slots} == {"gpu"} and {s.threads for s in slots} == {4}
    assert [s.index for s in slots] == [0, 1, 2, 3]


def test_per_device_runs_k_workers_on_each_gpu() -> None:
    slots = plan("auto", workers=None, per_device=3, gpu_count=2, cores=12)
    assert _gpus(slots) == ["0", "0", "0", "1", "1", "1"]
    assert {s.threads for s in slots} == {2}  # 12 cores over 6 workers


def test_explicit_gpu_indices_and_matching_worker_count() -> None:
    slots = plan("1,3", workers=4, per_device=2, gpu_count=4, cores=8)
    assert _gpus(slots) == ["1", "1", "3", "3"]


def test_auto_without_gpu_falls_back_to_one_cpu_worker() -> None:
    slots = plan("auto", workers=None, per_device=1, gpu_count=0, cores=2)
    assert len(slots) == 1 and slots[0].accelerator == "cpu" and slots[0].threads == 1


def test_cpu_workers_get_a_fixed_thread_count_and_no_gpu() -> None:
    slots = plan("cpu", workers=3, per_device=1, gpu_count=2, cores=8)
    # One thread each whatever the worker count: the same arithmetic, the same numbers.
    assert [s.threads for s in slots] == [1, 1, 1]
    assert all(s.env == {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"} for s in slots)
    slots = plan("cpu", workers=2, per_device=1, gpu_count=0, cores=8, threads=4)
    assert [s.threads for s in slots] == [4, 4] and slots[0].env["OMP_NUM_THREADS"] == "4"


@pytest.mark.parametrize(
    ("devices", "workers", "per_device", "gpus", "words"),
    [
        ("0,5", None, 1, 2, ["--devices", "0..1", "'0,5'"]),
        ("gpu", None, 1, 0, ["--devices", "no GPU found", "auto, cpu"]),
        ("0,0", None, 1, 2, ["--devices"]),
        ("0,1", 3, 1, 2, ["--workers", "2 slots"]),
        ("cpu", 0, 1, 0, ["--workers", ">= 1"]),
        ("auto", None, 0, 1, ["--per-device", ">= 1"]),
        ("cpu", 1, 1, 0, ["--threads", ">= 1"]),
    ],
)
def test_impossible_plans_are_config_errors(
    devices: str, workers: int | None, per_device: int, gpus: int, words: list[str]
) -> None:
    threads = 0 if words[0] == "--threads" else 1
    with pytest.raises(ConfigError) as err:
        plan(
            devices,
            workers=workers,
            per_device=per_device,
            gpu_count=gpus,
            cores=4,
            threads=threads,
        )
    assert all(word in str(err.value) for word in words), str(err.value)


@pytest.mark.parametrize("before", [None, "0,1"])
def test_a_cpu_slot_in_this_process_hides_the_gpus_until_it_is_done(
    before: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if before is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", before)
    (slot,) = plan("cpu", workers=None, per_device=1, gpu_count=2, cores=2)
    with hidden_gpus(slot):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
        assert not torch.cuda.is_available()
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == before


def test_a_gpu_slot_in_this_process_keeps_every_gpu_visible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    slot = plan("1", workers=None, per_device=1, gpu_count=2, cores=2)[0]
    with hidden_gpus(slot):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
