"""Pre-training on pretext tasks, and transfer, on the one engine: what trains, what stays
fixed, what is read."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from dlbench.components import AUGMENTATIONS, LOSSES, PRETEXTS
from dlbench.data import InMemoryDataModule
from dlbench.data.lightning import LightningData
from dlbench.errors import ConfigError
from dlbench.models import ConvEncoder, EncoderClassifier, PretextNet
from dlbench.systems.optimizer import CellOptimizer
from dlbench.systems.training import Member, TrainingSystem


class Shapes(InMemoryDataModule):
    """12x12 images of a bright square at one of 4 places; ``labels`` as given."""

    num_classes = 4

    def __init__(self, labels: torch.Tensor | None = None):
        super().__init__(batch_size=16, seed=0)
        g = torch.Generator().manual_seed(0)
        y = torch.arange(64) % 4
        x = torch.randn(64, 1, 12, 12, generator=g) * 0.1
        for i, k in enumerate(y.tolist()):
            r, c = divmod(k, 2)
            x[i, 0, 6 * r : 6 * r + 6, 6 * c : 6 * c + 6] += 1.0
        y = y if labels is None else labels
        self.tensors = {s: (x, y) for s in ("train", "val", "test")}


def _model(norm: str = "none") -> EncoderClassifier:
    torch.manual_seed(0)
    return EncoderClassifier(ConvEncoder(1, channels=(4, 8), norm=norm), 4, input_shape=(1, 12, 12))


def _fit(system: L.LightningModule, data: InMemoryDataModule, epochs: int = 2) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(system, datamodule=LightningData(data))
    return trainer


def _system(
    net: torch.nn.Module,
    optimizer: CellOptimizer,
    *,
    pretext: bool = False,
    augmentation: str = "none",
) -> TrainingSystem:
    return TrainingSystem(
        [Member(net, optimizer, seed=0)],
        LOSSES.create("cross_entropy"),
        multiplier=lambda steps, epochs: lambda step: 1.0,
        augmentation=None if augmentation == "none" else AUGMENTATIONS.create(augmentation, 4),
        pretext=pretext,
    )


def _pretext(name: str, model: EncoderClassifier, augmentation: str = "none") -> TrainingSystem:
    kwargs = {"patch": 4, "gap": 0, "jitter": 0} if name == "context" else {}
    task = PRETEXTS.create(name, model.encoder.out_features, **kwargs)
    net = PretextNet(model, task)
    return _system(net, CellOptimizer("adam", 0.01, {}), pretext=True, augmentation=augmentation)


def _supervised(model: EncoderClassifier, name: str = "adam", **hparams: float) -> TrainingSystem:
    return _system(model, CellOptimizer(name, hparams.pop("lr", 0.01), hparams))


@pytest.mark.parametrize(("name", "augmentation"), [("context", "none"), ("simclr", "crop")])
def test_pretext_trains_the_encoder_and_task_head_never_reading_labels(
    name: str, augmentation: str
) -> None:
    model = _model()
    system = _pretext(name, model, augmentation)
    encoder, head = (
        {k: v.clone() for k, v in m.state_dict().items()} for m in (model.encoder, model.head)
    )
    # Labels no classifier could use (-1): reading them anywhere would raise.
    _fit(system, Shapes(labels=torch.full((64,), -1)))
    assert any(not torch.equal(v, model.encoder.state_dict()[k]) for k, v in encoder.items())
    assert all(torch.equal(v, model.head.state_dict()[k]) for k, v in head.items())
    assert {"train/loss", "val/loss", "val/acc"} <= set(system.members[0].history)


def test_context_loss_is_cross_entropy_over_the_8_positions() -> None:
    model = _model()
    system = _pretext("context", model)
    images = Shapes().tensors["train"][0]
    g = torch.Generator().manual_seed(5)
    logits, label = system.members[0].model.task(model.encoder, images, None, g)
    assert logits.shape == (64, 8) and label.min() >= 0 and label.max() < 8
    system._draws = [torch.Generator().manual_seed(5)]
    (loss,) = system._losses("train", images[None], torch.zeros(1, 64))
    assert torch.allclose(loss, F.cross_entropy(logits, label))


def test_simclr_needs_views() -> None:
    model = _model()
    task = PRETEXTS.create("simclr", model.encoder.out_features)
    with pytest.raises(ConfigError, match="needs an augmentation"):
        task(model.encoder, torch.randn(4, 1, 12, 12), None, torch.Generator())


def test_held_out_draws_are_fixed_and_leave_training_randomness_alone() -> None:
    model = _model()
    system = _pretext("simclr", model, "crop")
    images = Shapes().tensors["val"][0][:16]

    def held_out() -> float:
        with system._fixed_draws(3):
            return float(system._losses("val", images, torch.zeros(16), shared=True)[0].detach())

    torch.manual_seed(1)
    first = held_out()
    after_first = torch.rand(1)
    torch.manual_seed(1)
    assert held_out() == first  # the same views every time
    assert torch.equal(torch.rand(1), after_first)  # the global stream did not move


def test_a_probe_keeps_every_encoder_weight_and_statistic_fixed() -> None:
    """Frozen means frozen: no gradient, no optimizer state, no weight decay, no BN update."""
    model = _model(norm="batchnorm")
    model.freeze(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    system = _supervised(model, "adamw", lr=0.05, weight_decay=0.1)
    _fit(system, Shapes(), epochs=3)
    after = model.state_dict()
    encoder_keys = [k for k in before if k.startswith("encoder.")]
    assert any("running_mean" in k for k in encoder_keys)
    assert all(torch.equal(before[k], after[k]) for k in encoder_keys)
    assert not torch.equal(before["head.1.weight"], after["head.1.weight"])
    stack = system.stack
    names = dict(zip(map(id, stack.stacked_parameters()), stack.param_names, strict=True))
    trained = {names[id(p)] for p in system._optimizer.stacked}
    assert trained == {f"head.{name}" for name, _ in model.head.named_parameters()}


def test_finetune_last_trains_the_last_block_only() -> None:
    model = _model()
    model.freeze(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _fit(_supervised(model), Shapes())
    changed = {
        k.split(".")[2]
        for k, v in model.state_dict().items()
        if k.startswith("encoder.") and not torch.equal(v, before[k])
    }
    assert changed == {"1"}  # block 1 of blocks 0, 1
