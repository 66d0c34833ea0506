"""Contrastive baseline (SimCLR, Chen et al. 2020): two augmented views of each o_t, a projection
head, and InfoNCE (NT-Xent) over the 2B views of a batch: each view must pick its partner out of
the other 2B - 2 views. Views: random shift + brightness/contrast jitter for images, Gaussian
noise for states (settings in ContrastiveConfig)."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from actjepa_core.config import ContrastiveConfig, TrainConfig
from actjepa_core.data.augment import colour_jitter, gaussian_noise, is_image, random_shift
from actjepa_core.models.encoders import mlp
from actjepa_core.models.world_model import StepLoss
from actjepa_core.objectives.base import EncoderObjective, Obs


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of two (B, P) batches of projections, row i of z1 paired with row i of z2."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)  # (2B, P)
    logits = z @ z.T / temperature  # (2B, 2B)
    logits.fill_diagonal_(float("-inf"))  # a view is not its own partner
    batch = z1.shape[0]
    partner = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)]).to(z.device)
    return F.cross_entropy(logits, partner)


def view(obs: Obs, config: ContrastiveConfig, generator: torch.Generator | None) -> dict:
    """One augmented view of a model-side observation batch."""
    out = {}
    for key, x in obs.items():
        if is_image(x):
            out[key] = colour_jitter(random_shift(x, config.shift, generator), config.jitter,
                                     generator)
        else:
            out[key] = gaussian_noise(x, config.state_noise, generator)
    return out


class Contrastive(EncoderObjective):
    name = "contrastive"

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 config: TrainConfig):
        super().__init__(obs_shapes, action_dim, config)
        self.settings = config.contrastive
        d = config.model.latent_dim
        self.projection = mlp(d, self.settings.projection_hidden, d, config.model.activation)

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs,
             generator: torch.Generator | None = None) -> StepLoss:
        s1 = self.encode(view(obs, self.settings, generator))  # (B, D)
        s2 = self.encode(view(obs, self.settings, generator))
        loss = info_nce(self.projection(s1), self.projection(s2), self.settings.temperature)
        return StepLoss(loss, s1.detach())


def build(obs_shapes, action_dim, config: TrainConfig) -> Contrastive:
    return Contrastive(obs_shapes, action_dim, config)
