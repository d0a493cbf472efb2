"""Normalization layers, one name for MLP features (N, C) and CNN maps (N, C, H, W).

A factory takes ``(num_features, dims)`` where ``dims`` is 1 for feature vectors and
2 for image maps, so a study can sweep ``norm`` without knowing the architecture.
Flag ``dims`` lists which of the two an entry supports.
"""

from __future__ import annotations

from torch import nn

from dlbench.errors import ConfigError
from dlbench.registry import Registry

NORMS: Registry[nn.Module] = Registry("norm")


@NORMS.register("none", description="No normalization (identity)", dims=(1, 2))
def none(num_features: int, dims: int, /) -> nn.Module:
    return nn.Identity()


@NORMS.register(
    "batchnorm",
    description="BatchNorm: batch statistics in train mode, running averages in eval mode",
    dims=(1, 2),
)
def batchnorm(num_features: int, dims: int, /, *, momentum: float = 0.1) -> nn.Module:
    cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    return cls(num_features, momentum=momentum)


@NORMS.register(
    "layernorm",
    description="LayerNorm: each sample over all its features (C, or C,H,W); same in train and eval",
    dims=(1, 2),
)
def layernorm(num_features: int, dims: int, /) -> nn.Module:
    # On maps, GroupNorm with one group normalizes over (C, H, W) like LayerNorm, with a
    # per-channel affine instead of a per-element one, so the layer works at any H, W.
    return nn.LayerNorm(num_features) if dims == 1 else nn.GroupNorm(1, num_features)


@NORMS.register(
    "instancenorm",
    description="InstanceNorm: each sample and channel over its spatial positions (maps only)",
    dims=(2,),
)
def instancenorm(num_features: int, dims: int, /) -> nn.Module:
    if dims != 2:
        # On a feature vector each value would be its own instance and normalize to 0.
        raise ConfigError(
            "norm 'instancenorm' needs 2-D feature maps (a CNN); allowed for MLPs: "
            + ", ".join(n.name for n in NORMS if 1 in n.flags["dims"])
        )
    return nn.GroupNorm(num_features, num_features)


@NORMS.register(
    "groupnorm",
    description="GroupNorm: each sample over groups of channels; independent of batch size",
    dims=(1, 2),
)
def groupnorm(num_features: int, dims: int, /, *, groups: int = 8) -> nn.Module:
    if groups < 1 or num_features % groups:
        raise ConfigError(f"norm 'groupnorm': groups={groups} must divide the width {num_features}")
    return nn.GroupNorm(groups, num_features)
