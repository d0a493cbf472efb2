"""What a process that runs studies sets up, once, at its entry point (never on import).

``setup`` quiets the libraries' per-run chatter (Lightning's device banner and tips on
every fit, Optuna's line per trial, MLflow's migration notes and per-run URLs) and puts
SQLite MLflow stores in write-ahead-log mode (``tracking.write_ahead_log``). The entry
points call it: ``dlbench`` (cli.main), a worker process (worker.main) and
``sweep.run_study`` for library callers.
"""

from __future__ import annotations

import logging
import warnings

import optuna

from dlbench.harness import tracking


def setup() -> None:
    """Idempotent: calling it again changes nothing."""
    for name in ("lightning.pytorch", "lightning.fabric"):  # devices and tips, per Trainer
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 trips over its own torch.utils._pytree deprecation on every fit.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # A transferred encoder's frozen blocks stay in eval mode on purpose (EncoderClassifier).
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    # On a machine with Slurm installed, every fit asks whether it runs under srun: dlbench
    # runs its own processes, one device each (runner.make_trainer), also inside a job.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tracking.configure()
