"""End-to-end behavioural cloning for camera policies (objective ``bc``), with ACT-JEPA as an
optional auxiliary loss on the same encoder.

The image encoder and an MLP head train together on the action loss. Vector keys such as the
arm's own pose (``bc.head_keys``) bypass the encoder and join the latent at the head: fused into
the encoder they let the policy lean on the pose and ignore the camera. The head predicts
``bc.chunk`` actions (a[t..t+chunk-1], windows held at the demo's end), which the ``e2e`` policy
ensembles at run time. ``bc.policy_ema`` keeps an exponential average of encoder and head, the
weights a policy deploys. ``bc.jepa_weight`` > 0 adds the paper's latent prediction loss
(predictor and action encoder on the online latent, an EMA target encoder on o_{t+1}) so the
representation is shaped by both objectives at once.
"""
from __future__ import annotations

import copy
from typing import Mapping, Sequence

import torch
from torch import nn

from actjepa_core.config import TrainConfig
from actjepa_core.errors import ActJepaError
from actjepa_core.models.encoders import ActionEncoder, ObservationEncoder, mlp
from actjepa_core.models.predictor import Predictor
from actjepa_core.models.regularisers import variance_penalty
from actjepa_core.models.world_model import StepLoss, latent_distance
from actjepa_core.objectives.base import Obs

EMA_WARMUP = 10  # policy EMA decay ramps as (1 + n) / (EMA_WARMUP + n) over the first steps


class EndToEndBC(nn.Module):
    name = "bc"
    scale_free = False  # the loss is an action MSE (plus latent terms), not a latent ratio

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 config: TrainConfig):
        super().__init__()
        bc = config.bc
        missing = sorted(set(bc.head_keys) - set(obs_shapes))
        if missing:
            raise ActJepaError(f"bc.head_keys {missing} are not observation keys of the data "
                               f"({sorted(obs_shapes)})")
        if any(len(obs_shapes[k]) != 1 for k in bc.head_keys):
            raise ActJepaError(f"bc.head_keys {bc.head_keys} must name vector observations")
        self.head_keys = sorted(bc.head_keys)
        encoded = {k: s for k, s in obs_shapes.items() if k not in self.head_keys}
        if not encoded:
            raise ActJepaError("objective bc: every observation key is a head key; expected at "
                               "least one for the encoder (a camera)")
        self.chunk, self.action_dim = bc.chunk, action_dim
        self.encoder = ObservationEncoder(encoded, config.model)
        width = config.model.latent_dim + sum(int(obs_shapes[k][0]) for k in self.head_keys)
        self.head = mlp(width, bc.hidden, bc.chunk * action_dim, config.model.activation)
        self.policy_ema = bc.policy_ema
        self.averaged = (nn.ModuleDict({"encoder": copy.deepcopy(self.encoder),
                                        "head": copy.deepcopy(self.head)}).requires_grad_(False)
                         if bc.policy_ema > 0 else None)
        self.register_buffer("averaged_steps", torch.zeros((), dtype=torch.long))
        self.jepa_weight = bc.jepa_weight
        self.variance_weight = config.loss.variance_weight
        if self.jepa_weight > 0:
            self.action_encoder = ActionEncoder(action_dim, config.model)
            self.predictor = Predictor(config.model, action_conditioned=True)
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        else:
            self.target_encoder = None

    # ---- the trainer's interface -----------------------------------------------------------
    def encode(self, obs: Obs) -> torch.Tensor:
        return self.encoder({k: obs[k] for k in self.encoder.keys})  # (B, D)

    @torch.no_grad()
    def encode_target(self, obs: Obs) -> torch.Tensor:
        encoder = self.target_encoder if self.target_encoder is not None else self.encoder
        return encoder({k: obs[k] for k in encoder.keys})  # (B, D)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def loss(self, obs: Obs, actions: torch.Tensor, next_obs: Obs) -> StepLoss:
        """actions: (B, K, A) with K >= chunk; next_obs: key -> (B, K, ...)."""
        s = self.encode(obs)  # (B, D)
        predicted = self.head(self.head_input(s, obs)).float()  # (B, chunk * A)
        target = actions[:, :self.chunk].float().flatten(1)  # (B, chunk * A)
        total = (predicted - target).pow(2).mean()
        if self.jepa_weight > 0:
            total = total + self.jepa_weight * self.latent_loss(s, actions[:, 0], next_obs)
        return StepLoss(total, s.detach())

    def latent_loss(self, s: torch.Tensor, action: torch.Tensor, next_obs: Obs) -> torch.Tensor:
        """ACT-JEPA's term: || g(s_t, h(a_t)) - f_bar(o_{t+1}) ||^2, with VICReg's variance term
        on s_t when ``loss.variance_weight`` > 0."""
        s_hat = self.predictor(s, self.action_encoder(action))  # (B, D)
        target = self.encode_target({k: v[:, 0] for k, v in next_obs.items()})  # (B, D)
        term = latent_distance(s_hat.float(), target.float()).mean()
        if self.variance_weight:
            term = term + self.variance_weight * variance_penalty(s.float())
        return term

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """The JEPA target follows the online encoder at ``tau``; the deployed average at
        ``bc.policy_ema`` (warmed up, so it starts from the first weights, pretrained or not)."""
        if self.target_encoder is not None:
            torch._foreach_lerp_(list(self.target_encoder.parameters()),
                                 list(self.encoder.parameters()), 1.0 - tau)
        if self.averaged is not None:
            n = float(self.averaged_steps)
            decay = min(self.policy_ema, (1.0 + n) / (EMA_WARMUP + n))
            online = [*self.encoder.parameters(), *self.head.parameters()]
            torch._foreach_lerp_(list(self.averaged.parameters()), online, 1.0 - decay)
            self.averaged_steps += 1

    # ---- the policy's interface ------------------------------------------------------------
    def head_input(self, s: torch.Tensor, obs: Obs) -> torch.Tensor:
        """The latent with the head's vector keys appended: (B, D + V)."""
        return torch.cat([s, *(obs[k].to(s.dtype) for k in self.head_keys)], dim=-1)

    def act_chunk(self, obs: Obs, averaged: bool = True) -> torch.Tensor:
        """Normalised observation batch -> (B, chunk, A) normalised actions, from the averaged
        weights when there are any (``averaged``) and the trained ones otherwise."""
        use = averaged and self.averaged is not None
        encoder = self.averaged["encoder"] if use else self.encoder
        head = self.averaged["head"] if use else self.head
        s = encoder({k: obs[k] for k in encoder.keys})  # (B, D)
        return head(self.head_input(s, obs)).view(-1, self.chunk, self.action_dim)


def build(obs_shapes, action_dim, config: TrainConfig) -> EndToEndBC:
    return EndToEndBC(obs_shapes, action_dim, config)


def window(config: TrainConfig) -> tuple[int, bool, int]:
    """Steps of actions a batch carries (the chunk), windows held at a demo's end, and the one
    next observation the auxiliary latent loss reads (none without it)."""
    return config.bc.chunk, True, 1 if config.bc.jepa_weight > 0 else 0
