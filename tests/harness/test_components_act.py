"""Every component a problem accepts acts: it changes training, or validation refuses it.

For each problem (and a few settings under which its model holds less: an MLP of depth 0,
a pretext run) and each component family it takes, every choice other than the cell's
default is built with ``runner.build`` and trained from the same seed on the same batch as
the default; its training losses, the trained model's loss on that batch or its trained
parameters must differ from the default's, or ``build`` must refuse the choice with a
ConfigError. So a model that quietly ignores a setting (a dropout rate on a model without
a dropout layer) fails here, instead of training the default's run under another name in
MLflow.

The probe takes a few optimizer steps (``STEPS``), its schedule's clock at one step per
epoch: the first step alone does not show every choice (momentum's first step is plain
SGD's, Adam's does not depend on its betas, every schedule starts at factor 1, and a step
schedule decays only after ``step_epochs``, hence more steps for the schedule family).
Two kinds of choice act elsewhere and are checked there:

- early_stopping acts between epochs, never inside one: it must watch a metric the
  problem logs;
- nll and kl_div compute cross-entropy's value on class labels (losses.py; the losses
  study shows it): the system must compute with them, and match cross-entropy.

Data: the embedded and generated problems train on their own first batch (so
preprocessing acts on it); those whose data is a download (MNIST, Fashion-MNIST,
CIFAR-10) on a random batch of their input shape, so nothing is read from disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import Tensor

from conftest import write_study
from dlbench.cli import main
from dlbench.components import FAMILIES, LOSSES
from dlbench.components.regularizers import Regularizer
from dlbench.errors import ConfigError
from dlbench.harness.grid import Cell, expand
from dlbench.harness.plan import build
from dlbench.harness.runner import system_of
from dlbench.harness.settings import allowed_keys
from dlbench.harness.spec import load_study, metrics_of
from dlbench.problems import PROBLEMS, Setup
from dlbench.systems.training import TrainingSystem

BATCH = 16
# Optimizer steps per probe: enough for momentum and Adam's betas to show, and for the
# schedules past a default step schedule's first decay (step_epochs 10).
STEPS, SCHEDULE_STEPS = 3, 12
# Settings that keep the bigger models small; each keeps its layers.
SMALL = {
    "mnist_mlp": ("width=32",),
    "fmnist_cnn": ("channels=4",),
    "cifar10_resnet": ("blocks_per_stage=1",),
    "digits_ssl": ("channels=4", "image_size=8"),
}
# Each problem as registered, and settings under which its model holds or trains less.
CASES = [(name, ()) for name in PROBLEMS.names()] + [
    ("digits_mlp", ("depth=0",)),
    ("moons_mlp", ("depth=0",)),
    ("polynomial_mlp", ("depth=0",)),
    ("mnist_mlp", ("depth=0",)),
    ("mnist1d_mlp", ("depth=0",)),
    ("mnist1d_mlp", ("residual=false",)),  # the plain MLP the optimizers study stacks
    ("digits_ssl", ("pretext=context", "image_size=24")),  # context's 3x3 grid needs 24 px
]
# Settings a choice needs in order to act, given to the default's run as well.
NEEDS = {
    "lr_scaling": (f"base_batch_size={2 * BATCH}",),  # scaling from another batch size
    "pretext": ("augmentation=stretch",),  # simclr's two views
}
# Where a problem needs another setting for that (its inputs are 1-D signals, not images).
NEEDS_OF = {("mnist1d_ssl", "pretext"): ("augmentation=signal_trend",)}
# Losses that compute the default's value on class labels by design (see the docstring).
SAME_VALUE = {"cross_entropy": {"nll", "kl_div"}}
# Problems whose model has no dropout layer at all.
NO_DROPOUT_LAYER = {
    "digits_linear",
    "regression_linear",
    "digits_rnn",
    "mnist1d_linear",
    "mnist1d_gru",
    "digits_autoencoder",
    "cifar10_resnet",
}


@dataclass
class Probe:
    """What a cell's first steps gave: every step's training loss, then the trained model's
    loss on the batch in eval mode, and the trained parameters; or the ConfigError build
    refused it with."""

    cell: Cell
    losses: Tensor | None = None
    params: list[Tensor] | None = None
    system: TrainingSystem | None = None
    refused: ConfigError | None = None

    def differs(self, other: Probe) -> bool:
        """Other losses, or other values of the same parameters. (Parameters of another
        shape alone do not count: a layer can be built and never called.)"""
        if not torch.equal(self.losses, other.losses):
            return True
        shapes = [p.shape for p in self.params] == [p.shape for p in other.params]
        return shapes and not all(map(torch.equal, self.params, other.params))


def _batch(setup: Setup, problem: str) -> tuple[Tensor, Tensor]:
    data, flags = setup.datamodule, PROBLEMS.get(problem).flags
    if data.tensors:  # embedded or generated: the cell's own first training batch
        return next(iter(data.loader("train")))
    draws = torch.Generator().manual_seed(0)  # a download: a random batch of its shape
    x = torch.randn(BATCH, *flags["input_shape"], generator=draws)
    if flags["task"] == "classification":
        return x, torch.randint(0, data.num_classes, (BATCH,), generator=draws)
    return x, torch.randn(BATCH, 1, generator=draws)


def _probe(cell: Cell, steps: int) -> Probe:
    L.seed_everything(cell.seed, verbose=False)  # as runner.train does
    try:
        built = build(cell)
    except ConfigError as err:
        return Probe(cell, refused=err)
    steps = min(steps, cell.settings["epochs"])  # the clock's last step is the run's
    x, y = _batch(built.setup, cell.problem)
    system = system_of([built])  # a stack of one, as a lone cell trains
    system.configure_optimizers()
    system._multiplier = built.multiplier(1, cell.settings["epochs"])
    system.train()
    for _ in range(steps):
        system._train_step(x[None], y[None])
    system.eval()
    with torch.no_grad():
        system._losses("val", x, y, shared=True)
    batches = system._batches["train"] + system._batches["val"]
    losses = torch.stack([loss.detach() for loss, _, _ in batches])
    params = [p.detach().clone() for p in system.stack.stacked_parameters()]
    return Probe(cell, losses, params, system)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Probe]]:
    """``probe(problem, *settings, steps=STEPS)``: the probe of the problem's cell with
    ``key=value`` settings (``--set`` syntax), each distinct one run once."""
    folder = tmp_path_factory.mktemp("probes")
    done: dict[tuple[str | int, ...], Probe] = {}

    def run(problem: str, *settings: str, steps: int = STEPS) -> Probe:
        key = (problem, *settings, steps)
        if key not in done:
            path = folder / f"{problem}.yaml"
            if not path.exists():
                write_study(folder, f"name: probe\nproblem: {problem}\nseeds: [0]\n", path.name)
            base = (f"batch_size={BATCH}", *SMALL.get(problem, ()))
            (cell,) = expand(load_study(path, overrides=[*base, *settings]))
            done[key] = _probe(cell, steps)
        return done[key]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster, and fair to a busy machine
    yield run
    torch.set_num_threads(threads)


def _families() -> Iterator[tuple[str, tuple[str, ...], str]]:
    for problem, settings in CASES:
        allowed = allowed_keys(PROBLEMS.get(problem))
        for family in FAMILIES:
            if family in allowed:
                yield problem, settings, family


@pytest.mark.parametrize(
    ("problem", "settings", "family"),
    list(_families()),
    ids=lambda v: (" ".join(v) or "-") if isinstance(v, tuple) else v,
)
def test_every_accepted_choice_changes_the_first_steps(
    probe: Callable[..., Probe], problem: str, settings: tuple[str, ...], family: str
) -> None:
    needs = NEEDS_OF.get((problem, family), NEEDS.get(family, ()))
    steps = SCHEDULE_STEPS if family == "schedule" else STEPS
    default = probe(problem, *settings, *needs, steps=steps)
    assert default.refused is None, f"the default cell is refused: {default.refused}"
    chosen = str(default.cell.settings[family])
    silent = []
    for choice in FAMILIES[family].names():
        if choice == chosen:
            continue
        result = probe(problem, *settings, *needs, f"{family}={choice}", steps=steps)
        if result.refused is not None:
            assert "\n" not in str(result.refused) and result.refused.message
            continue
        assert result.cell.settings[family] == choice
        if result.differs(default):
            continue  # it acts
        if choice in SAME_VALUE.get(chosen, ()):
            assert type(result.system.loss) is type(LOSSES.create(choice))
            continue
        reg = result.system.regularizer
        if family == "regularizer" and type(reg).stops is not Regularizer.stops:
            # early stopping acts between epochs, on a metric the problem logs
            assert reg.metric in metrics_of([PROBLEMS.get(problem)])
            continue
        silent.append(choice)
    assert not silent, (
        f"{' '.join((problem, *settings))}: {family} {', '.join(silent)} validate(s) but "
        f"train(s) exactly what {family} {chosen} trains; refuse it at build (a model lacking "
        "it: in the problem's factory)"
    )


@pytest.mark.parametrize(("problem", "settings"), CASES, ids=lambda v: " ".join(v) or "-")
def test_dropout_is_refused_exactly_where_no_dropout_layer_would_apply_it(
    probe: Callable[..., Probe], problem: str, settings: tuple[str, ...]
) -> None:
    result = probe(problem, *settings, "regularizer={name: dropout, rate: 0.5}")
    if problem in NO_DROPOUT_LAYER or "depth=0" in settings or "pretext=context" in settings:
        assert result.refused is not None
        message = result.refused.message
        assert message.startswith(f"problem {problem!r} ")
        assert "regularizer 'dropout' would not act; allowed here: " in message
        allowed = message.split("allowed here: ")[1].split(", ")
        assert "none" in allowed and "l2" in allowed and "dropout" not in allowed
    else:
        assert result.refused is None, result.refused
        assert any(isinstance(m, torch.nn.Dropout) for m in result.system.modules())


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("norm=batchnorm", "norm 'batchnorm' would not act; allowed here: none (the default)"),
        ("activation=tanh", "activation 'tanh' would not act; allowed here: relu (the default)"),
        ("activation=swiglu", "activation 'swiglu' would not act"),
    ],
)
def test_an_mlp_of_depth_zero_refuses_what_only_hidden_layers_take(
    probe: Callable[..., Probe], setting: str, words: str
) -> None:
    refused = probe("digits_mlp", "depth=0", setting).refused
    assert refused is not None
    assert "problem 'digits_mlp' with depth 0 has no hidden layer" in refused.message
    assert words in refused.message
    # Its defaults, and what a linear layer does apply, still build.
    assert probe("digits_mlp", "depth=0").refused is None
    assert probe("digits_mlp", "depth=0", "init=he_normal").refused is None


def test_a_step_schedule_that_never_decays_within_the_run_is_refused(
    probe: Callable[..., Probe],
) -> None:
    refused = probe("digits_mlp", "schedule=step", "epochs=10").refused
    assert refused is not None
    assert "schedule 'step' would not act" in refused.message
    assert "allowed here: step_epochs < 10" in refused.message
    assert probe("digits_mlp", "schedule=step", "epochs=11").refused is None


# Optimizer hyperparameters: a value other than the default, for each optimizer taking it.
CHANGED = {
    "momentum": 0.5,
    "beta1": 0.5,
    "beta2": 0.9,
    "eps": 0.1,
    "alpha": 0.5,
    "weight_decay": 0.1,
    "initial_accumulator_value": 0.5,
}
OPTIMIZER_SETTINGS = [
    (entry.name, key)
    for entry in FAMILIES["optimizer"]
    for key in entry.hyperparameters
    if key != "lr"
]


@pytest.mark.parametrize(("optimizer", "key"), OPTIMIZER_SETTINGS)
def test_every_optimizer_hyperparameter_changes_the_first_steps(
    probe: Callable[..., Probe], optimizer: str, key: str
) -> None:
    default = FAMILIES["optimizer"].get(optimizer).hyperparameters[key]
    assert CHANGED[key] != default
    base = probe("digits_mlp", f"optimizer={optimizer}")
    changed = probe("digits_mlp", f"optimizer={optimizer}", f"{key}={CHANGED[key]}")
    assert changed.cell.optimizer_hparams[key] == CHANGED[key]
    assert changed.differs(base)


def test_validate_refuses_dropout_on_a_model_without_dropout_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "name: nodrop\nproblem: digits_linear\nseeds: [0]\n"
        "grid:\n  regularizer:\n    - none\n    - {name: dropout, rate: 0.5}\n"
    )
    path = write_study(workdir, text, "nodrop.yaml")
    for argv in (["validate"], ["run", "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"]):
        assert main([*argv, str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert "Traceback" not in captured.err
        assert f"{path}: grid cell 'dropout': problem 'digits_linear' has no dropout layer" in (
            captured.err
        )
        assert "regularizer 'dropout' would not act; allowed here: " in captured.err
        assert sorted(p.name for p in workdir.iterdir()) == ["nodrop.yaml"]
