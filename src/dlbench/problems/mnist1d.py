"""Problems on MNIST-1D (Greydanus & Kobak, "Scaling Down Deep Learning"): generated, no download.

The paper's four models, with the paper's defaults, on 1-D signals of length 40. They
spread widely where the 8x8 digits put every model at 96-97%: the paper's test
accuracies are logistic regression 32%, MLP 68%, CNN 94%, GRU 91%; with the 40
positions shuffled (``shuffled: true``) the CNN and GRU lose their spatial prior and
fall to 56-57% while the MLP, which never had one, stays. The default budget is the
paper's: Adam at lr 1e-2, batches of 100, no schedule, 150 epochs (6,000 steps on its
4,000 training signals; here 5,400 steps on 3,600, as 400 are held out to validate).

Generation settings (``samples``, ``corr_noise``, ``iid_noise``, ``shuffled``,
``length``, ``train_split``) and ``label_noise`` (a fixed share of training labels set to
another class, for the double-descent experiment) are problem settings, so MLflow records
which data a run saw; every model setting defaults to the paper's model.
"""

from __future__ import annotations

from dlbench.components import PRETEXTS
from dlbench.data import MNIST1DDataModule
from dlbench.errors import ConfigError
from dlbench.models import (
    MLP,
    Conv1dEncoder,
    Conv1dNet,
    EncoderClassifier,
    SequenceModel,
    SoftmaxRegression,
)
from dlbench.problems.base import NO_HIDDEN, Setup, budget, inert, problem
from dlbench.registry import Named

PAPER = budget("cross_entropy", 0.01, 150, 100, "adam")


def _data(batch_size: int | None, seed: int, layout: str, *data: object) -> MNIST1DDataModule:
    """The data module from a factory's data settings, in the order every factory lists them:
    preprocessing, train_size, label_noise, samples, corr_noise, iid_noise, shuffled, length,
    train_split."""
    names = (
        "preprocessing",
        "train_size",
        "label_noise",
        "samples",
        "corr_noise",
        "iid_noise",
        "shuffled",
        "length",
        "train_split",
    )
    return MNIST1DDataModule(
        batch_size=batch_size, seed=seed, layout=layout, **dict(zip(names, data, strict=True))
    )


@problem(
    "mnist1d_linear",
    "MNIST-1D (generated, 40-step signals), logistic regression 40 -> 10, cross-entropy",
    task="classification",
    input_shape=(40,),
    budget=PAPER,
)
def mnist1d_linear(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    init: Named = "default",
    preprocessing: Named = "none",
    train_size: int | str = "full",
    label_noise: float = 0.0,
    samples: int = 5000,
    corr_noise: float = 0.25,
    iid_noise: float = 0.02,
    shuffled: bool = False,
    length: int = 40,
    train_split: float = 0.8,
) -> Setup:
    inert("mnist1d_linear", "has no dropout layer (it is one linear layer)", dropout)
    data = _data(batch_size, seed, "flat", preprocessing, train_size, label_noise,
                 samples, corr_noise, iid_noise, shuffled, length, train_split)  # fmt: skip
    return Setup(data, SoftmaxRegression(length, 10, init=init))


@problem(
    "mnist1d_mlp",
    "MNIST-1D, the paper's MLP: 40 -> 100, a residual 100 -> 100 block, -> 10; cross-entropy",
    task="classification",
    input_shape=(40,),
    budget=PAPER,
)
def mnist1d_mlp(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    width: int = 100,
    depth: int = 2,
    residual: bool = True,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "none",
    train_size: int | str = "full",
    label_noise: float = 0.0,
    samples: int = 5000,
    corr_noise: float = 0.25,
    iid_noise: float = 0.02,
    shuffled: bool = False,
    length: int = 40,
    train_split: float = 0.8,
) -> Setup:
    """``residual: false`` gives a plain MLP (the optimizer study's), ``true`` the paper's."""
    if depth == 0:
        inert("mnist1d_mlp", NO_HIDDEN, dropout, activation=activation, norm=norm)
    model = MLP(
        length, 10, width=width, depth=depth, activation=activation, norm=norm, init=init,
        dropout=dropout, residual=residual,
    )  # fmt: skip
    data = _data(batch_size, seed, "flat", preprocessing, train_size, label_noise,
                 samples, corr_noise, iid_noise, shuffled, length, train_split)  # fmt: skip
    return Setup(data, model)


@problem(
    "mnist1d_cnn",
    "MNIST-1D, the paper's CNN: three Conv1d (25 channels, kernels 5/3/3, stride 2), "
    "Linear 125 -> 10; cross-entropy",
    task="classification",
    input_shape=(1, 40),
    budget=PAPER,
)
def mnist1d_cnn(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    channels: int = 25,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "none",
    train_size: int | str = "full",
    label_noise: float = 0.0,
    samples: int = 5000,
    corr_noise: float = 0.25,
    iid_noise: float = 0.02,
    shuffled: bool = False,
    length: int = 40,
    train_split: float = 0.8,
) -> Setup:
    model = Conv1dNet(
        1, 10, length=length, channels=(channels,) * 3, activation=activation, norm=norm,
        init=init, dropout=dropout,
    )  # fmt: skip
    data = _data(batch_size, seed, "channels", preprocessing, train_size, label_noise,
                 samples, corr_noise, iid_noise, shuffled, length, train_split)  # fmt: skip
    return Setup(data, model)


# The repository's pooling benchmark: how each block shrinks the map (stride, pool).
SHRINK = {"none": (1, "none"), "stride": (2, "none"), "max": (1, "max"), "avg": (1, "avg")}


@problem(
    "mnist1d_pooling",
    "MNIST-1D, the pooling benchmark's CNN: two Conv1d (20 channels, kernel 3) shrunk by "
    "downsample: none, stride 2, max or avg pooling; cross-entropy",
    task="classification",
    input_shape=(1, 40),
    budget=PAPER,
)
def mnist1d_pooling(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    downsample: str = "max",
    channels: int = 20,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "none",
    train_size: int | str = "full",
    label_noise: float = 0.0,
    samples: int = 5000,
    corr_noise: float = 0.25,
    iid_noise: float = 0.02,
    shuffled: bool = False,
    length: int = 40,
    train_split: float = 0.8,
) -> Setup:
    """``downsample``: none keeps the full map (a head of 20 x 40 inputs), stride 2 and max
    or average pooling (window 2) halve it after each conv (a head of 20 x 10). (Not
    ``pool``: digits_cnn's pool setting takes max, avg or min.)"""
    if downsample not in SHRINK:
        raise ConfigError(f"downsample must be one of {', '.join(SHRINK)}, got {downsample!r}")
    stride, pooling = SHRINK[downsample]
    model = Conv1dNet(
        1, 10, length=length, channels=(channels,) * 2, kernels=(3, 3), stride=stride,
        pool=pooling, activation=activation, norm=norm, init=init, dropout=dropout,
    )  # fmt: skip
    data = _data(batch_size, seed, "channels", preprocessing, train_size, label_noise,
                 samples, corr_noise, iid_noise, shuffled, length, train_split)  # fmt: skip
    return Setup(data, model)


@problem(
    "mnist1d_gru",
    "MNIST-1D, the paper's GRU: bidirectional, hidden 6, every step read, Linear 480 -> 10; "
    "cross-entropy",
    task="classification",
    input_shape=(40, 1),
    sequence=True,
    budget=PAPER,
)
def mnist1d_gru(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    hidden: int = 6,
    preprocessing: Named = "none",
    train_size: int | str = "full",
    label_noise: float = 0.0,
    samples: int = 5000,
    corr_noise: float = 0.25,
    iid_noise: float = 0.02,
    shuffled: bool = False,
    length: int = 40,
    train_split: float = 0.8,
) -> Setup:
    inert("mnist1d_gru", "has no dropout layer (a recurrent net and a linear head)", dropout)
    model = SequenceModel(
        1, 10, cell="gru", hidden=hidden, bidirectional=True, readout="all", steps=length
    )
    data = _data(batch_size, seed, "sequence", preprocessing, train_size, label_noise,
                 samples, corr_noise, iid_noise, shuffled, length, train_split)  # fmt: skip
    return Setup(data, model)


@problem(
    "mnist1d_ssl",
    "MNIST-1D, the paper's CNN as encoder + linear head: pre-train it by SimCLR (the SSL "
    "notebook's setup), then probe or fine-tune it",
    task="classification",
    input_shape=(1, 40),
    budget=PAPER,
)
def mnist1d_ssl(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    channels: int = 25,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "none",
    train_size: int | str = "full",
    pretext: Named = "none",
    encoder: str = "random",
    encoder_study: str = "ssl_pretext_mnist1d",
    transfer: str = "finetune_all",
    transfer_layers: int = 1,
) -> Setup:
    """The MNIST-1D SSL notebook's model: the paper's three convolutions (125 features on
    length-40 signals) pre-trained without labels on every training signal, SimCLR's
    projection head on top. A pretext run sets ``pretext`` (only ``simclr``: context
    prediction cuts 2-D patches); a downstream run sets ``encoder``, ``transfer`` and
    ``train_size`` (the labels it may use; 40 is 4 per class). With ``encoder: random`` and
    ``finetune_all`` it is the paper's CNN trained from scratch."""
    name = PRETEXTS.get(pretext).name
    if name == "context":
        raise ConfigError(
            "mnist1d_ssl: pretext 'context' cuts 2-D image patches; MNIST-1D's signals take "
            "simclr (or none)"
        )
    net = Conv1dEncoder(1, length=40, channels=(channels,) * 3, activation=activation, norm=norm)
    model = EncoderClassifier(net, 10, input_shape=(1, 40), init=init, dropout=dropout)
    task = PRETEXTS.create(pretext, net.out_features)
    if task is not None:
        if encoder != "random" or transfer != "finetune_all" or train_size != "full":
            raise ConfigError(
                f"a pretext run (pretext {name!r}) trains a fresh encoder on every training "
                f"signal: encoder must be random, transfer finetune_all and train_size full"
            )
        inert(
            "mnist1d_ssl",
            f"trains only its encoder in a pretext run (pretext {name!r}), and its "
            "dropout layer sits in the classifier head",
            dropout,
        )
    model.freeze({"probe": 0, "finetune_last": transfer_layers, "finetune_all": None}[transfer])
    data = MNIST1DDataModule(
        batch_size=batch_size, seed=seed, layout="channels", preprocessing=preprocessing,
        train_size=train_size,
    )  # fmt: skip
    return Setup(data, model, pretext=task, encoder=encoder, encoder_study=encoder_study)
