"""Decoders from a latent back to an observation, for the reconstruction baselines the paper
compares ACT-JEPA with (autoencoder, action-conditioned reconstruction).

Each mirrors its encoder: a state MLP with the encoder's widths reversed; for images a linear map
to the encoder's last feature map and stride-2 transposed convolutions back to (H, W, C), with a
sigmoid, since model-side images live in [0, 1].
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from actjepa_core.config import ModelConfig
from actjepa_core.models.encoders import (
    ACTIVATION_LAYERS,
    CONV_KERNEL,
    CONV_PADDING,
    CONV_STRIDE,
    mlp,
)


class StateDecoder(nn.Module):
    def __init__(self, state_dim: int, config: ModelConfig):
        super().__init__()
        self.net = mlp(config.latent_dim, list(reversed(config.state_hidden)), state_dim,
                       config.activation)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s)  # (B, K)


class ImageDecoder(nn.Module):
    def __init__(self, image_shape: Sequence[int], config: ModelConfig):
        super().__init__()
        height, width, channels = image_shape
        layers = len(config.image_channels)
        self.map_shape = (config.image_channels[-1], height >> layers, width >> layers)
        if min(self.map_shape[1:]) < 1:
            raise ValueError(f"image {tuple(image_shape)} is too small for {layers} stride-2 "
                             "layers")
        self.head = nn.Linear(config.latent_dim, int(torch.tensor(self.map_shape).prod()))
        act = ACTIVATION_LAYERS[config.activation]
        widths = [*reversed(config.image_channels), channels]
        deconvs: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            deconvs.append(nn.ConvTranspose2d(a, b, CONV_KERNEL, CONV_STRIDE, CONV_PADDING))
            if i < len(widths) - 2:
                deconvs.append(act())
        self.deconvs = nn.Sequential(*deconvs)
        self.out_shape = (height, width)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        x = self.head(s).view(-1, *self.map_shape)  # (B, C, h, w)
        x = torch.sigmoid(self.deconvs(x))  # (B, C, H', W'), H' = h * 2^layers
        x = x[..., :self.out_shape[0], :self.out_shape[1]]  # odd sizes: the encoder floored
        return x.permute(0, 2, 3, 1)  # (B, H, W, C)


def key_decoder(shape: Sequence[int], config: ModelConfig) -> nn.Module:
    if len(shape) == 1:
        return StateDecoder(shape[0], config)
    if len(shape) == 3:
        return ImageDecoder(shape, config)
    raise ValueError(f"observation shape {tuple(shape)} is neither a vector nor an (H, W, C) image")


class ObservationDecoder(nn.Module):
    """One decoder per observation key, all reading the same latent."""

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], config: ModelConfig):
        super().__init__()
        self.keys = sorted(obs_shapes)
        self.decoders = nn.ModuleDict({k: key_decoder(obs_shapes[k], config) for k in self.keys})

    def forward(self, s: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: self.decoders[k](s) for k in self.keys}

    def error(self, s: torch.Tensor, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Per-sample reconstruction error (B,): mean squared error per key, summed over keys
        (model-side units: standardised state, [0, 1] pixels)."""
        decoded = self(s)
        return sum((decoded[k].float() - obs[k].float()).pow(2).flatten(1).mean(1)
                   for k in self.keys)
