"""Observation encoders f_theta (state MLP, image CNN, several keys fused) and the action encoder
h_psi.

Inputs arrive already normalised (see `normalise.py`): state vectors standardised, images as float
in [0, 1] with shape (B, H, W, C), so an encoder never needs the dataset statistics.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from actjepa_core.config import ModelConfig

ACTIVATION_LAYERS = {"relu": nn.ReLU, "gelu": nn.GELU}
CONV_KERNEL, CONV_STRIDE, CONV_PADDING = 4, 2, 1  # each conv halves the image side
NORM_GROUPS = 8  # GroupNorm groups per conv (image_norm=group); widths not divisible use 1


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int,
        activation: str = "relu") -> nn.Sequential:
    """Linear layers through ``hidden`` widths to ``out_dim``, activation between, none at the
    end."""
    widths = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(ACTIVATION_LAYERS[activation]())
    return nn.Sequential(*layers)


class StateEncoder(nn.Module):
    """MLP over a flat proprioceptive/state vector (the paper §5: 3 layers, hidden 256)."""

    def __init__(self, state_dim: int, config: ModelConfig):
        super().__init__()
        self.net = mlp(state_dim, config.state_hidden, config.latent_dim, config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, D)


class SpatialSoftmax(nn.Module):
    """Keypoints from a conv map: a 1x1 conv to K channels, a softmax over each channel's cells,
    and the expected (x, y) under it.

    The expectation interpolates between cells, so a small target (a goal dot) is located more
    finely than the map's resolution, which flattening a coarse map cannot do.
    """

    def __init__(self, channels: int, height: int, width: int, keypoints: int):
        super().__init__()
        self.project = nn.Conv2d(channels, keypoints, kernel_size=1)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width),
                                indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=-1))  # (HW, 2)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        weights = self.project(maps).flatten(2).softmax(dim=-1)  # (B, K, HW)
        return (weights @ self.grid).flatten(1)  # (B, K, 2) -> (B, 2K)


class ImageEncoder(nn.Module):
    """Small CNN: stride-2 convs, then a linear projection of the map to D.

    The map is flattened (image_pool=flatten) or reduced to keypoints (image_pool=keypoints);
    both keep *where* things are in the image, which a manipulation latent needs and global
    pooling would throw away.
    """

    def __init__(self, image_shape: Sequence[int], config: ModelConfig):
        super().__init__()
        height, width, channels = image_shape
        act = ACTIVATION_LAYERS[config.activation]
        layers: list[nn.Module] = []
        for out_ch in config.image_channels:
            layers.append(nn.Conv2d(channels, out_ch, CONV_KERNEL, CONV_STRIDE, CONV_PADDING))
            if config.image_norm == "group":
                groups = NORM_GROUPS if out_ch % NORM_GROUPS == 0 else 1
                layers.append(nn.GroupNorm(groups, out_ch))
            layers.append(act())
            channels = out_ch
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            probe = torch.zeros(1, image_shape[2], height, width)
            _, out_ch, map_h, map_w = self.convs(probe).shape
        if config.image_pool == "keypoints":
            self.pool: nn.Module = SpatialSoftmax(out_ch, map_h, map_w, config.image_keypoints)
            pooled = 2 * config.image_keypoints
        else:
            self.pool, pooled = nn.Flatten(1), out_ch * map_h * map_w
        self.head = nn.Linear(pooled, config.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        return self.head(self.pool(self.convs(x)))  # (B, D)


def key_encoder(shape: Sequence[int], config: ModelConfig) -> nn.Module:
    """A state MLP for 1-d observations, a CNN for (H, W, C) images."""
    if len(shape) == 1:
        return StateEncoder(shape[0], config)
    if len(shape) == 3:
        return ImageEncoder(shape, config)
    raise ValueError(f"observation shape {tuple(shape)} is neither a vector nor an (H, W, C) image")


class ObservationEncoder(nn.Module):
    """Per-key encoders; several keys are concatenated and projected to D (multi-modal ACT-JEPA)."""

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], config: ModelConfig):
        super().__init__()
        self.keys = sorted(obs_shapes)
        made: dict[tuple[int, ...], nn.Module] = {}  # image shape -> its CNN, when shared
        encoders = {}
        for k in self.keys:
            shape = tuple(obs_shapes[k])
            if config.shared_image_encoder and len(shape) == 3:
                encoders[k] = made.setdefault(shape, key_encoder(shape, config))
            else:
                encoders[k] = key_encoder(shape, config)
        self.encoders = nn.ModuleDict(encoders)
        self.fuse = (nn.Linear(len(self.keys) * config.latent_dim, config.latent_dim)
                     if len(self.keys) > 1 else None)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.fuse is None:
            return self.encoders[self.keys[0]](obs[self.keys[0]])  # (B, D)
        parts = [self.encoders[k](obs[k]) for k in self.keys]  # K x (B, D)
        return self.fuse(torch.cat(parts, dim=-1))  # (B, K*D) -> (B, D)


class ActionEncoder(nn.Module):
    """h_psi: a shallow MLP lifting the A-dim action into the latent space (the paper §4.4)."""

    def __init__(self, action_dim: int, config: ModelConfig):
        super().__init__()
        self.net = mlp(action_dim, config.action_hidden, config.latent_dim, config.activation)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.net(a)  # (..., D)
