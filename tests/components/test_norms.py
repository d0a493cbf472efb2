"""Normalization layers: shapes, the statistics they produce, and their equivalences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.components import NORMS

C = 16  # divisible by groupnorm's default 8 groups
EPS = 1e-5  # torch's default eps for every layer used here


def supported() -> list[tuple[str, int]]:
    return [(name, dims) for name in NORMS.names() for dims in NORMS.get(name).flags["dims"]]


def sample(dims: int, n: int = 32, *, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    shape = (n, C) if dims == 1 else (n, C, 5, 6)
    # Off-centre, non-unit scale per feature, so normalization has work to do.
    scale = torch.linspace(0.5, 4.0, C).view(1, C, *([1] * (len(shape) - 2)))
    return torch.randn(shape) * scale + 3.0


def normalize(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes``, biased variance, by hand."""
    mean = x.mean(dim=axes, keepdim=True)
    var = x.var(dim=axes, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + EPS)


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# --- contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NORMS.names())
def test_every_norm_has_description_and_dims_flag(name: str) -> None:
    entry = NORMS.get(name)
    assert entry.description.strip()
    dims = entry.flags["dims"]
    assert dims and set(dims) <= {1, 2}


@pytest.mark.parametrize(("name", "dims"), supported())
def test_output_shape_is_input_shape(name: str, dims: int) -> None:
    layer = NORMS.create(name, C, dims)
    x = sample(dims)
    for mode in (layer.train, layer.eval):
        mode()
        assert layer(x).shape == x.shape
    # Parameters, if any, are per channel.
    for p in layer.parameters():
        assert p.shape == (C,)


def test_instancenorm_is_maps_only() -> None:
    assert NORMS.get("instancenorm").flags["dims"] == (2,)


# --- none ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2])
def test_none_is_identity(dims: int) -> None:
    layer = NORMS.create("none", C, dims)
    x = sample(dims)
    assert torch.equal(layer(x), x)
    assert list(layer.parameters()) == []


# --- batchnorm ---------------------------------------------------------------------------


@pytest.mark.parametrize(("dims", "axes"), [(1, (0,)), (2, (0, 2, 3))])
def test_batchnorm_train_normalizes_each_feature_over_the_batch(
    dims: int, axes: tuple[int, ...]
) -> None:
    layer = NORMS.create("batchnorm", C, dims).train()
    x = sample(dims)
    y = layer(x)
    mean = y.mean(dim=axes)
    var = y.var(dim=axes, unbiased=False)
    close(mean, torch.zeros(C))
    torch.testing.assert_close(var, torch.ones(C), rtol=1e-3, atol=1e-3)
    close(y, normalize(x, axes))


@pytest.mark.parametrize(("dims", "axes"), [(1, (0,)), (2, (0, 2, 3))])
def test_batchnorm_running_stats_and_eval(dims: int, axes: tuple[int, ...]) -> None:
    momentum = 0.1
    layer = NORMS.create("batchnorm", C, dims).train()
    running_mean, running_var = torch.zeros(C), torch.ones(C)
    for step in range(5):
        x = sample(dims, seed=step)
        layer(x)
        # Exponential moving averages; the variance tracked is the unbiased batch variance.
        running_mean = (1 - momentum) * running_mean + momentum * x.mean(dim=axes)
        running_var = (1 - momentum) * running_var + momentum * x.var(dim=axes, unbiased=True)
    close(layer.running_mean, running_mean)
    close(layer.running_var, running_var)

    layer.eval()
    x = sample(dims, n=4, seed=99)
    shape = (1, C) + (1,) * (x.dim() - 2)
    expected = (x - running_mean.view(shape)) / torch.sqrt(running_var.view(shape) + EPS)
    y = layer(x)
    close(y, expected)
    # In eval mode each sample is normalized on its own: batch composition does not matter.
    close(layer(x[:1]), y[:1])
    # Eval does not update the running statistics.
    close(layer.running_mean, running_mean)


def test_batchnorm_momentum_hyperparameter() -> None:
    assert NORMS.get("batchnorm").hyperparameters == {"momentum": 0.1}
    layer = NORMS.create("batchnorm", C, 1, momentum=0.5).train()
    x = sample(1)
    layer(x)
    close(layer.running_mean, 0.5 * x.mean(dim=0))


def test_batchnorm_train_output_depends_on_the_batch() -> None:
    layer = NORMS.create("batchnorm", C, 1).train()
    x = sample(1)
    assert not torch.allclose(layer(x)[:8], layer(x[:8]))


# --- layernorm ----------------------------------------------------------------------------


@pytest.mark.parametrize(("dims", "axes"), [(1, (1,)), (2, (1, 2, 3))])
def test_layernorm_normalizes_each_sample(dims: int, axes: tuple[int, ...]) -> None:
    layer = NORMS.create("layernorm", C, dims)
    x = sample(dims)
    y = layer(x)
    close(y.mean(dim=axes), torch.zeros(len(x)))
    torch.testing.assert_close(
        y.var(dim=axes, unbiased=False), torch.ones(len(x)), rtol=1e-3, atol=1e-3
    )
    close(y, normalize(x, axes))
    # Same in train and eval, and each sample independent of the rest of the batch.
    layer.eval()
    close(layer(x), y)
    close(layer(x[:1]), y[:1])


def test_layernorm_on_maps_works_at_any_spatial_size() -> None:
    layer = NORMS.create("layernorm", C, 2)
    for hw in ((3, 3), (7, 4)):
        x = torch.randn(2, C, *hw)
        close(layer(x), normalize(x, (1, 2, 3)))


# --- groupnorm / instancenorm -------------------------------------------------------------


def test_groupnorm_default_groups() -> None:
    assert NORMS.get("groupnorm").hyperparameters == {"groups": 8}
    layer = NORMS.create("groupnorm", C, 2)
    x = sample(2)
    n, _, h, w = x.shape
    grouped = x.view(n, 8, C // 8, h, w)
    expected = normalize(grouped, (2, 3, 4)).view_as(x)
    close(layer(x), expected)


def test_groupnorm_on_features_groups_channels() -> None:
    layer = NORMS.create("groupnorm", C, 1, groups=4)
    x = sample(1)
    expected = normalize(x.view(len(x), 4, C // 4), (2,)).view_as(x)
    close(layer(x), expected)


def test_groupnorm_one_group_equals_layernorm() -> None:
    x = sample(2)
    gn = NORMS.create("groupnorm", C, 2, groups=1)
    ln = NORMS.create("layernorm", C, 2)
    close(gn(x), ln(x))
    close(gn(x), nn.functional.layer_norm(x, x.shape[1:], eps=EPS))


def test_groupnorm_c_groups_equals_instancenorm() -> None:
    x = sample(2)
    gn = NORMS.create("groupnorm", C, 2, groups=C)
    inorm = NORMS.create("instancenorm", C, 2)
    close(gn(x), inorm(x))
    close(inorm(x), nn.functional.instance_norm(x, eps=EPS))
    close(inorm(x), normalize(x, (2, 3)))


@pytest.mark.parametrize(
    ("name", "dims"), [("groupnorm", 1), ("groupnorm", 2), ("instancenorm", 2)]
)
def test_group_based_norms_are_independent_of_batch(name: str, dims: int) -> None:
    layer = NORMS.create(name, C, dims)
    x = sample(dims)
    close(layer(x)[:3], layer(x[:3]))


@pytest.mark.parametrize(("name", "dims"), supported())
def test_affine_parameters_start_at_identity(name: str, dims: int) -> None:
    layer = NORMS.create(name, C, dims)
    params = dict(layer.named_parameters())
    if "weight" in params:
        assert torch.equal(params["weight"], torch.ones(C))
    if "bias" in params:
        assert torch.equal(params["bias"], torch.zeros(C))
