"""Whose error is it: a cell's own failure is a result, an error in dlbench is not.

A cell *fails* when something inside its own training raises: its model, a component
(a plugin optimizer's bug, a loss on bad values), its data, the device (CUDA out of
memory). That is recorded as the cell's outcome ``failed`` and the sweep goes on;
``dlbench run --retry-failed`` runs such cells again.

Anything else is an error in the harness (dlbench's own bookkeeping, the Optuna or
MLflow store, a study that validation should have refused). It is not a cell result:
the worker gives its cells back (they stay to run) and stops with the traceback, and
``dlbench run`` exits non-zero, so a bug never looks like a finding.
"""

from __future__ import annotations

import contextlib
import gc
import traceback
from collections.abc import Iterator
from pathlib import Path

import optuna
import torch
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from dlbench.errors import ConfigError

# Raised inside a fit, yet never the cell's doing: the stores (MLflow's logger writes
# during the fit) and bad input.
HARNESS_ERRORS = (MlflowException, SQLAlchemyError, optuna.exceptions.OptunaError, ConfigError)
HERE = Path(__file__).resolve()
HARNESS = HERE.parent  # dlbench/harness/: code that is not a cell's
PACKAGE = HARNESS.parent


class CellFailed(Exception):
    """A cell's training raised; ``str(err)`` is the one-line error recorded on its run."""


@contextlib.contextmanager
def cell_training() -> Iterator[None]:
    """Around a cell's (or a stack's) fit and test: its own errors become ``CellFailed``;
    errors of the harness, including a bug in harness code the fit calls (its logger),
    propagate as they are."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as err:
        # Free what the failed cells held, so the next ones start with a clean device.
        gc.collect()
        torch.cuda.empty_cache()
        raise CellFailed(f"CUDA out of memory: {err}".splitlines()[0]) from err
    except HARNESS_ERRORS:
        raise
    except Exception as err:
        if _raised_in_harness(err):
            raise
        raise CellFailed(f"{type(err).__name__}: {err}") from err


def _raised_in_harness(err: BaseException) -> bool:
    """Whether the innermost dlbench frame ``err`` passed through is harness code (a
    harness bug, or the harness calling a library wrongly), not a model, component,
    system or dataset of the cell's."""
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(PACKAGE) and path != HERE:  # cell_training's own frame
            return path.is_relative_to(HARNESS)
    return False
