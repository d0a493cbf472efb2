"""Lightning's MLFlowLogger, writing in batches rather than once per ``log`` call.

Each MLflow write to a SQLite store costs 3-12 ms (its ORM, a transaction and a disk
sync); over HTTP it is a round trip. Written per epoch, a small cell's metrics cost
more than its training. This logger keeps metrics and params in memory and writes them in one
``log_batch`` at most every ``FLUSH_S`` seconds and when the fit or test ends, so
the MLflow UI still shows a long run's curves as they grow.

The run's status is not touched here: the sweep records the cell's outcome and ends
the run itself (``Tracker.end_cell``), once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

FLUSH_S = 5.0  # the most a live run's curves lag behind its training
BATCH_METRICS, BATCH_PARAMS = 1000, 100  # MLflow's limits per log_batch call


class BufferedMLFlowLogger(MLFlowLogger):
    """Logs to the existing run ``run_id``; writes at most every ``flush_s`` seconds."""

    def __init__(self, *, tracking_uri: str, run_id: str, flush_s: float = FLUSH_S):
        super().__init__(tracking_uri=tracking_uri, run_id=run_id)
        # Written to directly: MLFlowLogger's ``experiment`` and ``run_id`` first read the
        # whole run back (a query per cell) to learn what we already know.
        self._client, self._run = MlflowClient(tracking_uri), run_id
        self.flush_s = flush_s
        self._metrics: list[Metric] = []
        self._params: list[Param] = []
        self._written = time.monotonic()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        stamp = int(time.time() * 1000)
        self._metrics += [Metric(k, float(v), stamp, step or 0) for k, v in metrics.items()]
        if time.monotonic() - self._written >= self.flush_s:
            self.flush()

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:  # type: ignore[override]
        self._params += [Param(k, str(v)[:250]) for k, v in params.items()]

    def flush(self) -> None:
        """Write everything kept so far."""
        metrics, params = self._metrics, self._params
        self._metrics, self._params = [], []
        while metrics or params:
            self._client.log_batch(
                self._run, metrics=metrics[:BATCH_METRICS], params=params[:BATCH_PARAMS]
            )
            metrics, params = metrics[BATCH_METRICS:], params[BATCH_PARAMS:]
        self._written = time.monotonic()

    def finalize(self, status: str = "success") -> None:
        self.flush()  # also after a crash: the curves up to it are part of the record
