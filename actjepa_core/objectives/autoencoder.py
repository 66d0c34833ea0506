"""Autoencoder baseline: the latent of o_t must reconstruct o_t (pixels for images)."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from actjepa_core.config import TrainConfig
from actjepa_core.models.decoders import ObservationDecoder
from actjepa_core.models.world_model import StepLoss
from actjepa_core.objectives.base import EncoderObjective, Obs


class AutoEncoder(EncoderObjective):
    name = "autoencoder"

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 config: TrainConfig):
        super().__init__(obs_shapes, action_dim, config)
        self.decoder = ObservationDecoder(obs_shapes, config.model)

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs) -> StepLoss:
        s = self.encode(obs)  # (B, D)
        return StepLoss(self.decoder.error(s, obs).mean(), s.detach())


def build(obs_shapes, action_dim, config: TrainConfig) -> AutoEncoder:
    return AutoEncoder(obs_shapes, action_dim, config)
