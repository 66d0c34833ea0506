"""End-to-end behavioural cloning (the paper's 'raw pixel BC' row): the same encoder and a head of
the BC policy's default shape, trained from scratch on the action loss (MSE on the normalised a_t).
No representation objective at all: what the other rows must beat."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from actjepa_core.config import TrainConfig
from actjepa_core.models.heads import action_head
from actjepa_core.models.world_model import StepLoss
from actjepa_core.objectives.base import EncoderObjective, Obs


class RawBC(EncoderObjective):
    name = "raw"

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 config: TrainConfig):
        super().__init__(obs_shapes, action_dim, config)
        self.head = action_head(config.model.latent_dim, action_dim)  # the BC head's default

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs) -> StepLoss:
        s = self.encode(obs)  # (B, D)
        error = (self.head(s).float() - actions[:, 0].float()).pow(2).mean()  # a_t: (B, A)
        return StepLoss(error, s.detach())


def build(obs_shapes, action_dim, config: TrainConfig) -> RawBC:
    return RawBC(obs_shapes, action_dim, config)
