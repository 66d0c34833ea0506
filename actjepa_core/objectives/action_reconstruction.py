"""Action-conditioned reconstruction (the paper's 'pixel reconstruction instead of latent L2'
ablation): the same encoder, action encoder and predictor as ACT-JEPA, but the predicted latent
g(s_t, a_t) is decoded and compared with o_{t+1} itself, not with a target latent."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from actjepa_core.config import TrainConfig
from actjepa_core.models.decoders import ObservationDecoder
from actjepa_core.models.encoders import ActionEncoder
from actjepa_core.models.predictor import Predictor
from actjepa_core.models.world_model import StepLoss
from actjepa_core.objectives.base import EncoderObjective, Obs


class ActionReconstruction(EncoderObjective):
    name = "action-reconstruction"

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 config: TrainConfig):
        super().__init__(obs_shapes, action_dim, config)
        self.action_encoder = ActionEncoder(action_dim, config.model)
        self.predictor = Predictor(config.model)
        self.decoder = ObservationDecoder(obs_shapes, config.model)

    def rollout(self, s: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, K, A) -> (B, K, D) predicted latents."""
        e_a = self.action_encoder(actions)  # (B, K, D)
        latents = []
        for k in range(actions.shape[1]):
            s = self.predictor(s, e_a[:, k])
            latents.append(s)
        return torch.stack(latents, dim=1)

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs) -> StepLoss:
        s = self.encode(obs)  # (B, D)
        predicted = self.rollout(s, actions).flatten(0, 1)  # (B*K, D)
        targets = {k: v.flatten(0, 1) for k, v in next_obs.items()}  # (B*K, ...)
        return StepLoss(self.decoder.error(predicted, targets).mean(), s.detach())


def build(obs_shapes, action_dim, config: TrainConfig) -> ActionReconstruction:
    return ActionReconstruction(obs_shapes, action_dim, config)
