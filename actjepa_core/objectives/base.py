"""What every representation objective provides to the trainer, the checkpoint and the policies.

All objectives share the observation encoder (architecture, latent size D) and the training
budget; a results-table row differs from another in the objective alone. ACT-JEPA itself is the
world model in models/world_model.py (it satisfies this interface); the baselines derive from
``EncoderObjective``, which supplies the encoder and the defaults of a model without an EMA
target.
"""
from __future__ import annotations

from typing import ClassVar, Mapping, Protocol, Sequence

import torch
from torch import nn

from actjepa_core.config import TrainConfig
from actjepa_core.models.encoders import ObservationEncoder
from actjepa_core.models.world_model import StepLoss

Obs = Mapping[str, torch.Tensor]


class Objective(Protocol):
    """The trainer's view of a model: a loss over (o_t, a_t..., o_{t+1}...) batches."""

    encoder: nn.Module
    scale_free: bool  # True: loss / spread of target latents is comparable across runs

    def encode(self, obs: Obs) -> torch.Tensor: ...  # (B, D)

    def encode_target(self, obs: Obs) -> torch.Tensor: ...  # (B, D), no gradient

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs) -> StepLoss: ...

    def trainable_parameters(self) -> list[nn.Parameter]: ...

    def update_target(self, tau: float) -> None: ...


class EncoderObjective(nn.Module):
    """Base of the baselines: the shared encoder, no target network (tau is ignored)."""

    name: ClassVar[str]
    scale_free: ClassVar[bool] = False

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 config: TrainConfig):
        super().__init__()
        self.encoder = ObservationEncoder(obs_shapes, config.model)

    def encode(self, obs: Obs) -> torch.Tensor:
        return self.encoder(obs)  # (B, D)

    @torch.no_grad()
    def encode_target(self, obs: Obs) -> torch.Tensor:
        return self.encoder(obs)  # (B, D)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def update_target(self, tau: float) -> None:
        """No target network."""

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs) -> StepLoss:
        raise NotImplementedError
