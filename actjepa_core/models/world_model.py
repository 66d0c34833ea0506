"""ACT-JEPA: online encoder, EMA target encoder, action encoder and predictor, and the latent loss.

Gradients reach only the online encoder, the action encoder and the predictor; the target encoder
starts as an exact copy of the online encoder and afterwards changes only through `update_target`
(Algorithm 1, lines 11-18).
"""
from __future__ import annotations

import copy
from typing import Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actjepa_core.config import ModelConfig
from actjepa_core.models.encoders import ActionEncoder, ObservationEncoder
from actjepa_core.models.predictor import Predictor
from actjepa_core.models.regularisers import covariance_penalty, variance_penalty

Obs = Mapping[str, torch.Tensor]


class StepLoss(NamedTuple):
    loss: torch.Tensor  # scalar, differentiable
    latent: torch.Tensor  # (B, D) s_t, detached: for the collapse metric at log steps only


class ACTJEPA(nn.Module):
    """The world model. ``action_conditioned=False`` gives the passive-JEPA baseline (the predictor
    sees s_t only; there is no action encoder at all)."""

    scale_free = True  # the loss divided by the target latents' spread compares across runs

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 config: ModelConfig, ema: bool = True, normalise_latents: bool = False,
                 stop_gradient: bool = True, action_conditioned: bool = True,
                 variance_weight: float = 0.0, covariance_weight: float = 0.0):
        super().__init__()
        self.variance_weight, self.covariance_weight = variance_weight, covariance_weight
        self.encoder = ObservationEncoder(obs_shapes, config)
        self.action_conditioned = action_conditioned
        self.action_encoder = ActionEncoder(action_dim, config) if action_conditioned else None
        self.predictor = Predictor(config, action_conditioned)
        self.normalise_latents = normalise_latents
        if not stop_gradient and ema:
            raise ValueError("stop_gradient=False is an ablation of the no-EMA model only")
        self.stop_gradient = stop_gradient
        # ema=False is the paper's 'No EMA' ablation: the target is the online encoder itself
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False) if ema else None
        # (target, online) parameter lists for the per-step EMA, built once: Module.to() and
        # load_state_dict() update parameters in place, so these stay the live tensors
        self._ema_pairs = ((list(self.target_encoder.parameters()), list(self.encoder.parameters()))
                           if ema else None)

    def trainable_parameters(self) -> list[nn.Parameter]:
        actions = [] if self.action_encoder is None else [*self.action_encoder.parameters()]
        return [*self.encoder.parameters(), *actions, *self.predictor.parameters()]

    def encode(self, obs: Obs) -> torch.Tensor:
        return self.encoder(obs)  # (B, D)

    def predict(self, s: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One step of the latent forward model: s_hat_{t+1} = g(s_t, h(a_t))."""
        return self.predictor(s, self.embed_actions(action))  # (B, D)

    def embed_actions(self, actions: torch.Tensor) -> torch.Tensor | None:
        """h(a): (..., A) -> (..., D); None for the passive model, whose predictor takes none."""
        return None if self.action_encoder is None else self.action_encoder(actions)

    def rollout(self, s: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Apply the predictor autoregressively: (B, D), (B, H, A) -> (B, H, D) predicted
        latents."""
        e_a = self.embed_actions(actions)  # (B, H, D): all steps' actions in one pass
        latents = []
        for k in range(actions.shape[1]):
            s = self.predictor(s, None if e_a is None else e_a[:, k])
            latents.append(s)
        return torch.stack(latents, dim=1)  # (B, H, D)

    @torch.no_grad()
    def encode_target(self, obs: Obs) -> torch.Tensor:
        encoder = self.target_encoder if self.target_encoder is not None else self.encoder
        return encoder(obs)  # (B, D), stop-gradient

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs) -> StepLoss:
        """Latent L2 loss over K predicted steps.

        obs: key -> (B, ...); actions: (B, K, A); next_obs: key -> (B, K, ...), the K observations
        after ``obs``. K = 1 is the paper's Algorithm 1; K > 1 adds multi-step rollout terms.
        """
        batch, steps = actions.shape[:2]
        s = self.encode(obs)  # (B, D)
        s_hat = self.rollout(s, actions)  # (B, K, D)
        flat_next = {k: v.flatten(0, 1) for k, v in next_obs.items()}  # (B*K, ...)
        target = (self.encode_target(flat_next) if self.stop_gradient
                  else self.encode(flat_next)).view(batch, steps, -1)  # (B, K, D)
        # the distance in fp32 even under bf16 autocast: a sum of D squares needs the mantissa
        distance = latent_distance(s_hat.float(), target.float(), self.normalise_latents)
        return StepLoss(distance.mean() + self.regulariser(s.float()), s.detach())

    def regulariser(self, s: torch.Tensor) -> torch.Tensor:
        """VICReg's anti-collapse terms on the online latents (0 with the paper's weights)."""
        total = s.new_zeros(())
        if self.variance_weight:
            total = total + self.variance_weight * variance_penalty(s)
        if self.covariance_weight:
            total = total + self.covariance_weight * covariance_penalty(s)
        return total

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """theta_bar <- tau * theta_bar + (1 - tau) * theta, for all parameters in one fused op."""
        if self._ema_pairs is not None:
            torch._foreach_lerp_(*self._ema_pairs, 1.0 - tau)


def latent_distance(a: torch.Tensor, b: torch.Tensor, normalise: bool = False) -> torch.Tensor:
    """Squared L2 distance over the last dim (paper §4.6); optionally on the unit hypersphere."""
    if normalise:
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    return (a - b).pow(2).sum(-1)


def collapse_metric(s: torch.Tensor) -> torch.Tensor:
    """Mean over latent dims of the batch std of s (B, D): 0 means every input maps to one point."""
    return s.std(dim=0).mean()
