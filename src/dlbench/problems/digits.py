"""Problems on scikit-learn's embedded 8x8 digits: nothing to download."""

from __future__ import annotations

from dlbench.components import PRETEXTS
from dlbench.data import DigitsDataModule
from dlbench.errors import ConfigError
from dlbench.models import (
    CNN,
    MLP,
    AutoEncoder,
    ConvEncoder,
    EncoderClassifier,
    SequenceModel,
    SoftmaxRegression,
)
from dlbench.problems.base import NO_HIDDEN, Setup, budget, inert, problem
from dlbench.registry import Named


@problem(
    "digits_linear",
    "8x8 digits (embedded), softmax regression (one linear layer), cross-entropy",
    task="classification",
    input_shape=(64,),
    budget=budget("cross_entropy", 0.1, 20, 64),
)
def digits_linear(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    init: Named = "default",
    preprocessing: Named = "standardize",
) -> Setup:
    inert("digits_linear", "has no dropout layer (it is one linear layer)", dropout)
    return Setup(
        DigitsDataModule(batch_size=batch_size, seed=seed, preprocessing=preprocessing),
        SoftmaxRegression(64, 10, init=init),
    )


@problem(
    "digits_mlp",
    "8x8 digits (embedded, 1,797 images), MLP classifier, cross-entropy",
    task="classification",
    input_shape=(64,),
    budget=budget("cross_entropy", 0.1, 20, 64),
)
def digits_mlp(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    width: int = 64,
    depth: int = 2,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "standardize",
    train_size: int | str = "full",
) -> Setup:
    if depth == 0:
        inert("digits_mlp", NO_HIDDEN, dropout, activation=activation, norm=norm)
    model = MLP(
        64,
        10,
        width=width,
        depth=depth,
        activation=activation,
        norm=norm,
        init=init,
        dropout=dropout,
    )
    return Setup(
        DigitsDataModule(
            batch_size=batch_size,
            seed=seed,
            preprocessing=preprocessing,
            train_size=train_size,
        ),
        model,
    )


@problem(
    "digits_cnn",
    "8x8 digits as 1x8x8 images, CNN (conv-norm-act-pool x2), cross-entropy",
    task="classification",
    input_shape=(1, 8, 8),
    budget=budget("cross_entropy", 0.05, 15, 64),
)
def digits_cnn(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    channels: int = 16,
    pool: str = "max",
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "standardize",
    train_size: int | str = "full",
) -> Setup:
    model = CNN(
        1,
        10,
        image_size=8,
        channels=(channels, 2 * channels),
        pool=pool,
        activation=activation,
        norm=norm,
        init=init,
        dropout=dropout,
    )
    return Setup(
        DigitsDataModule(
            batch_size=batch_size,
            layout="image",
            seed=seed,
            preprocessing=preprocessing,
            train_size=train_size,
        ),
        model,
    )


@problem(
    "digits_rnn",
    "8x8 digits read row by row (8 steps of 8 pixels), RNN/LSTM/GRU, cross-entropy",
    task="classification",
    input_shape=(8, 8),
    sequence=True,
    budget=budget("cross_entropy", 0.01, 20, 64, "adam"),
)
def digits_rnn(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    cell: str = "lstm",
    hidden: int = 64,
    layers: int = 1,
    preprocessing: Named = "standardize",
) -> Setup:
    inert("digits_rnn", "has no dropout layer (a recurrent net and a linear head)", dropout)
    model = SequenceModel(8, 10, cell=cell, hidden=hidden, layers=layers)
    return Setup(
        DigitsDataModule(
            batch_size=batch_size, layout="sequence", seed=seed, preprocessing=preprocessing
        ),
        model,
    )


@problem(
    "digits_autoencoder",
    "8x8 digits, AutoEncoder 64-32-8-32-64, reconstruction MSE",
    task="reconstruction",
    input_shape=(64,),
    budget=budget("mse", 0.01, 20, 64, "adam"),
)
def digits_autoencoder(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    code: int = 8,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "standardize",
) -> Setup:
    inert("digits_autoencoder", "has no dropout layer", dropout)
    model = AutoEncoder(64, hidden=(32,), code=code, activation=activation, norm=norm, init=init)
    return Setup(
        DigitsDataModule(batch_size=batch_size, seed=seed, preprocessing=preprocessing),
        model,
        reconstruct=True,
    )


@problem(
    "digits_ssl",
    "8x8 digits upsampled to 24x24, conv encoder + linear head: pre-train it on a pretext "
    "task, then probe or fine-tune it",
    task="classification",
    input_shape=(1, 24, 24),
    budget=budget("cross_entropy", 0.001, 30, 64, "adam"),
)
def digits_ssl(
    batch_size: int | None,
    seed: int,
    dropout: float,
    /,
    *,
    channels: int = 16,
    image_size: int = 24,
    activation: Named = "relu",
    norm: Named = "none",
    init: Named = "default",
    preprocessing: Named = "standardize",
    labelled: float = 1.0,
    pretext: Named = "none",
    encoder: str = "random",
    encoder_study: str = "ssl_pretext",
    transfer: str = "finetune_all",
    transfer_layers: int = 1,
) -> Setup:
    """A pretext run sets ``pretext`` (and trains everything from scratch); a downstream run
    sets ``encoder``, ``transfer`` and ``labelled`` (the fraction of training labels it
    may use). ``image_size`` 24 fits context prediction's default
    grid (3 patches of 6 px, gaps of 2, jitter 1: 24 px) and keeps 2x2 pools whole."""
    net = ConvEncoder(1, channels=(channels, 2 * channels), activation=activation, norm=norm)
    model = EncoderClassifier(
        net, 10, input_shape=(1, image_size, image_size), init=init, dropout=dropout
    )
    task = PRETEXTS.create(pretext, net.out_features)
    if task is not None and (encoder != "random" or transfer != "finetune_all" or labelled != 1):
        raise ConfigError(
            f"a pretext run (pretext {str(pretext)!r}) trains a fresh encoder on every image: "
            f"encoder must be random, transfer finetune_all and labelled 1.0"
        )
    if task is not None:
        inert(
            "digits_ssl",
            f"trains only its encoder in a pretext run (pretext {str(pretext)!r}), and its "
            "dropout layer sits in the classifier head",
            dropout,
        )
    span = getattr(task, "span", 0)
    if span > image_size or getattr(task, "patch", net.smallest_input) < net.smallest_input:
        raise ConfigError(
            f"pretext 'context' needs {span}x{span} images (image_size is {image_size}) "
            f"and patches of at least {net.smallest_input} px for the encoder's pools"
        )
    model.freeze({"probe": 0, "finetune_last": transfer_layers, "finetune_all": None}[transfer])
    data = DigitsDataModule(
        batch_size=batch_size,
        layout="image",
        seed=seed,
        preprocessing=preprocessing,
        labelled=labelled,
        image_size=image_size,
    )
    return Setup(data, model, pretext=task, encoder=encoder, encoder_study=encoder_study)
