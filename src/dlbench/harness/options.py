"""How a sweep runs: one object from the command line (or a caller) to every worker.

``dlbench run``'s flags become a ``RunOptions`` once (cli.py); ``sweep.run_study`` plans
devices and workers from it, and each worker gets it inside its ``worker.Job``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dlbench.harness.storage import HEARTBEAT_INTERVAL


@dataclass(frozen=True)
class RunOptions:
    """Where results go, what trains, and how many cells at once. Every default is what
    ``dlbench run`` does without the flag."""

    tracking: str | None = None  # MLflow URI; None: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db
    storage: str | None = None  # Optuna storage URL; None: runs/<study>/optuna.journal
    devices: str = "auto"  # auto (every GPU, else the CPU), cpu, or GPU indices "0,1"
    workers: int | None = None  # CPU workers (None: one; GPUs: per_device per GPU)
    per_device: int = 1  # workers per GPU, for models too small to fill one
    threads: int = 1  # torch threads per CPU worker: fixes every reduction's order
    stack: int = 0  # cells trained at once: 0 auto (stacking.limit), 1 one at a time
    compile_models: bool = False  # torch.compile each stack's calls
    retry_failed: bool = False  # run cells that failed (crashed) again
    heartbeat: int = HEARTBEAT_INTERVAL  # seconds between a worker's liveness beats

    def with_tracking(self, uri: str) -> RunOptions:
        """The same options writing to ``uri`` (the launcher's shared MLflow server)."""
        return replace(self, tracking=uri)
