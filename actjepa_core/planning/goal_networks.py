"""The network shape the planner's learned aids share: an MLP on a (latent, goal) pair.

Both the goal value and the goal-conditioned prior read target-encoder latents, whose dims differ
in scale by orders of magnitude; each input is standardised with the training latents' mean and
std, stored as buffers so a policy file carries them.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from actjepa_core.models import mlp

STD_FLOOR = 1e-6  # keeps a dim that never varied in training from dividing by zero


class GoalConditionedMLP(nn.Module):
    """(…, D) latent, (…, D) goal -> (…, out): an MLP on both, standardised."""

    def __init__(self, latent_dim: int, out_dim: int, hidden: Sequence[int],
                 latents: torch.Tensor | None = None):
        super().__init__()
        self.net = mlp(2 * latent_dim, list(hidden), out_dim, "gelu")
        self.register_buffer("mean", torch.zeros(latent_dim) if latents is None
                             else latents.mean(0))
        self.register_buffer("std", torch.ones(latent_dim) if latents is None
                             else latents.std(0) + STD_FLOOR)

    def features(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        s, g = torch.broadcast_tensors(s, g)
        x = torch.cat([(s - self.mean) / self.std, (g - self.mean) / self.std], -1)  # (…, 2D)
        return self.net(x)  # (…, out)
