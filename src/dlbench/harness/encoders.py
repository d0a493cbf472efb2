"""Pre-trained encoders as MLflow artifacts: saved by pretext runs, fetched by downstream ones.

A completed pretext run stores ``model.encoder``'s state dict as ``encoder.pt`` among its
artifacts. A downstream cell names its encoder by pretext (the completed run of that
pretext with the cell's own seed in study ``encoder_study``, the latest if several) or by
an MLflow run id, never by a file path. Loading uses ``torch.load(weights_only=True)``:
tensors only, no pickled code from the store is ever run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from torch import Tensor, nn

from dlbench.errors import ConfigError
from dlbench.harness.grid import Cell
from dlbench.harness.settings import RUN_ID
from dlbench.records import OUTCOME, ROLE

ARTIFACT = "encoder.pt"
ENCODER_RUN = "dlbench.encoder_run"  # tag of a downstream run: the run its encoder came from


def save(client: MlflowClient, run_id: str, encoder: nn.Module) -> None:
    """Store ``encoder``'s weights (on the CPU) as run ``run_id``'s ``encoder.pt``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ARTIFACT
        torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, path)
        client.log_artifact(run_id, str(path))


def load(client: MlflowClient, run_id: str) -> dict[str, Tensor]:
    """The encoder weights run ``run_id`` stored (tensors only: ``weights_only=True``)."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = client.download_artifacts(run_id, ARTIFACT, folder)
        except (MlflowException, OSError) as err:
            raise LookupError(f"run {run_id} has no {ARTIFACT}: {err}") from None
        return torch.load(local, map_location="cpu", weights_only=True)


def find(client: MlflowClient, encoder: str, study: str, seed: int) -> str | None:
    """The run id holding ``encoder``: the id itself, or the latest completed run of that
    pretext with ``seed`` in ``study``; None if there is none yet."""
    if RUN_ID.fullmatch(encoder):
        try:
            return client.get_run(encoder).info.run_id
        except MlflowException:
            return None
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{ROLE}` = 'cell' and tags.`{OUTCOME}` = 'completed' "
        f"and params.pretext = '{encoder}' and params.seed = '{seed}'",
        order_by=["attributes.end_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def check_available(cells: Iterable[Cell], uri: str, source: str) -> None:
    """Refuse to start (ConfigError) if a cell's pre-trained encoder does not exist yet,
    naming the study to run first."""
    wanted = {
        (c.settings["encoder"], c.settings["encoder_study"], c.seed)
        for c in cells
        if c.settings.get("encoder", "random") != "random"
    }
    if not wanted:
        return  # (and no store is opened, so a refused study writes nothing)
    client = MlflowClient(uri)
    missing = sorted(w for w in wanted if find(client, *w) is None)
    if missing:
        studies = sorted({study for _, study, _ in missing})
        what = ", ".join(f"{encoder} seed {seed}" for encoder, _, seed in missing)
        raise ConfigError(
            f"no completed pretext run holds the encoder for {what} in study "
            f"{', '.join(studies)}: run `dlbench run {studies[0]}` first "
            "(the same tier: a --smoke study reads a smoke pretext study)",
            source=source,
            key="encoder",
        )
