"""Which worker processes a sweep starts, and what each one sees.

One worker per device slot: ``--devices auto`` finds the GPUs (``--per-device K``
runs K small trials on each at once); ``--devices cpu --workers N`` runs N CPU
workers. A GPU worker sees only its device: ``CUDA_VISIBLE_DEVICES`` is in the
environment the worker process starts with, before it imports torch.

CPU workers train with ``--threads`` torch threads each, 1 by default. A reduction
split over T threads sums in a T-dependent order, so the thread count, not the worker
count, decides the last bits of every metric: with a fixed count, a cell gives
identical numbers alone or beside N-1 other workers. One thread is also as fast as two
for the embedded problems (measured), and N workers x 1 thread never oversubscribe
N cores. GPU workers get the cores divided between them for their host-side work.

This module is pure (counts come in as arguments), so the assignment is tested
with simulated machines.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from dlbench.errors import ConfigError

CPU = "cpu"
AUTO = "auto"


@dataclass(frozen=True)
class Slot:
    """One worker: its Lightning accelerator, environment additions and torch threads."""

    index: int
    accelerator: str
    env: dict[str, str]
    threads: int

    @property
    def label(self) -> str:
        gpu = self.env.get("CUDA_VISIBLE_DEVICES")
        return f"worker {self.index} (gpu {gpu})" if gpu else f"worker {self.index} (cpu)"


@contextlib.contextmanager
def hidden_gpus(slot: Slot) -> Iterator[None]:
    """A CPU slot's view of the GPUs (none) for a worker running in this process.

    Lightning makes torch ask NVML whether CUDA is available, and torch's optimizers
    ask before every step: where no GPU was ever initialized the answer is not cached,
    so each step pays a library load (about 0.15 ms, 50 ms over a 340-step cell). With
    ``CUDA_VISIBLE_DEVICES`` empty, as worker processes of CPU slots start, the answer
    comes from the environment. Restored afterwards; a GPU slot is left as it is.
    """
    if slot.accelerator != CPU:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        yield
    finally:
        if before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan(
    devices: str,
    *,
    workers: int | None,
    per_device: int,
    gpu_count: int,
    cores: int,
    threads: int = 1,
) -> list[Slot]:
    """The worker slots for ``--devices`` (auto, cpu, or GPU indices like ``0,2``).

    ``auto`` means every GPU when there is one, else the CPU. On GPUs the number of
    workers is GPUs x ``per_device`` (``workers`` may not disagree); on the CPU it is
    ``workers`` (default 1), each with ``threads`` torch threads.
    """
    if per_device < 1:
        raise ConfigError(f"must be an integer >= 1, got {per_device}", key="--per-device")
    if workers is not None and workers < 1:
        raise ConfigError(f"must be an integer >= 1, got {workers}", key="--workers")
    if threads < 1:
        raise ConfigError(f"must be an integer >= 1, got {threads}", key="--threads")
    if devices == AUTO:
        devices = ",".join(str(i) for i in range(gpu_count)) if gpu_count else CPU
    if devices == CPU:
        env = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads)}
        return [Slot(i, CPU, env, threads) for i in range(workers or 1)]
    gpus = _indices(devices, gpu_count)
    slots = [
        Slot(
            i, "gpu", {"CUDA_VISIBLE_DEVICES": str(gpu)}, max(1, cores // (len(gpus) * per_device))
        )
        for i, gpu in enumerate(g for g in gpus for _ in range(per_device))
    ]
    if workers is not None and workers != len(slots):
        raise ConfigError(
            f"{workers} workers do not match {len(gpus)} GPU(s) x --per-device {per_device} "
            f"= {len(slots)} slots; leave --workers out on GPUs",
            key="--workers",
        )
    return slots


def _indices(devices: str, gpu_count: int) -> list[int]:
    allowed = f"auto, cpu, or GPU indices 0..{gpu_count - 1} like 0,1" if gpu_count else "auto, cpu"
    found = f"{gpu_count} GPU(s) found" if gpu_count else "no GPU found"
    bad = ConfigError(f"must be {allowed} ({found}), got {devices!r}", key="--devices")
    try:
        gpus = [int(part) for part in devices.split(",")]
    except ValueError:
        raise bad from None
    if not gpus or len(set(gpus)) != len(gpus) or any(not 0 <= g < gpu_count for g in gpus):
        raise bad
    return gpus
