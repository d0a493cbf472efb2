"""Encoders as MLflow artifacts: saved by a pretext run, found by pretext and seed or by
run id, loaded as tensors only, and missing ones refused before a sweep starts."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import uri_of, write_study
from dlbench.errors import ConfigError
from dlbench.harness import encoders
from dlbench.harness.options import RunOptions
from dlbench.harness.spec import load_study
from dlbench.harness.sweep import run_study
from dlbench.models import ConvEncoder
from dlbench.records import OUTCOME, ROLE

PRETEXT = """\
name: pre
description: Context prediction, one epoch.
problem: digits_ssl
fixed: {channels: 4, epochs: 1, batch_size: 256, pretext: context}
seeds: [0, 1]
"""

DOWNSTREAM = """\
name: down
description: Probe the pre-trained encoder on 10% of the labels.
problem: digits_ssl
fixed: {channels: 4, epochs: 1, batch_size: 256, labelled: 0.1, encoder_study: pre}
grid:
  encoder: [random, context]
  transfer: [probe]
seeds: [1]
"""


def _pretext_run(client: MlflowClient, pretext: str, seed: int) -> str:
    experiment = client.get_experiment_by_name("pre")
    exp_id = experiment.experiment_id if experiment else client.create_experiment("pre")
    run = client.create_run(exp_id, tags={ROLE: "cell", OUTCOME: "completed"})
    client.log_param(run.info.run_id, "pretext", pretext)
    client.log_param(run.info.run_id, "seed", seed)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_artifact_round_trip_by_pretext_and_seed_or_run_id(workdir: Path) -> None:
    client = MlflowClient(uri_of(workdir))
    torch.manual_seed(0)
    encoder = ConvEncoder(1, channels=(4, 8), norm="batchnorm")
    run_id = _pretext_run(client, "context", 1)
    _pretext_run(client, "simclr", 1)
    encoders.save(client, run_id, encoder)
    assert encoders.find(client, "context", "pre", 1) == run_id
    assert encoders.find(client, run_id, "ignored", 99) == run_id
    assert encoders.find(client, "context", "pre", 0) is None
    assert encoders.find(client, "context", "no_such_study", 1) is None
    assert encoders.find(client, "0" * 32, "pre", 1) is None  # a run id that does not exist
    loaded = encoders.load(client, run_id)
    assert loaded.keys() == encoder.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in encoder.state_dict().items())
    fresh = ConvEncoder(1, channels=(4, 8), norm="batchnorm")
    fresh.load_state_dict(loaded)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fresh.eval()(x), encoder.eval()(x))


class Payload:
    def __reduce__(self):  # what an attacker's pickle would do on load
        return (print, ("arbitrary code ran",))


def test_loading_refuses_anything_but_tensors(workdir: Path) -> None:
    client = MlflowClient(uri_of(workdir))
    run_id = _pretext_run(client, "context", 0)
    path = workdir / encoders.ARTIFACT
    path.write_bytes(pickle.dumps({"weight": Payload()}))
    client.log_artifact(run_id, str(path))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        encoders.load(client, run_id)
    with pytest.raises(LookupError, match="has no encoder.pt"):
        encoders.load(client, _pretext_run(client, "simclr", 0))


def test_downstream_sweep_needs_its_pretext_study_then_loads_each_seeds_encoder(
    workdir: Path,
) -> None:
    uri = uri_of(workdir)
    down = load_study(write_study(workdir, DOWNSTREAM, "down.yaml"))
    with pytest.raises(
        ConfigError,
        match=r"down.yaml: encoder: .*context seed 1 in study pre: run `dlbench run pre` first",
    ):
        run_study(down, RunOptions(tracking=uri, devices="cpu"))
    client = MlflowClient(uri)
    assert client.get_experiment_by_name("down") is None  # nothing half-written
    run_study(
        load_study(write_study(workdir, PRETEXT, "pre.yaml")),
        RunOptions(tracking=uri, devices="cpu"),
    )
    run_study(down, RunOptions(tracking=uri, devices="cpu"))
    runs = {
        r.data.params["encoder"]: r
        for r in client.search_runs(
            [client.get_experiment_by_name("down").experiment_id], f"tags.`{ROLE}` = 'cell'"
        )
    }
    assert {r.data.tags[OUTCOME] for r in runs.values()} == {"completed"}
    source = client.get_run(runs["context"].data.tags[encoders.ENCODER_RUN])
    assert (source.data.params["pretext"], source.data.params["seed"]) == ("context", "1")
    assert source.info.experiment_id == client.get_experiment_by_name("pre").experiment_id
    assert encoders.ENCODER_RUN not in runs["random"].data.tags
