"""ACT-JEPA (the paper's Algorithm 1): predict the EMA target's latent of o_{t+1} from s_t and a_t.

The model and its loss are the world model of models/world_model.py; the config's ema, loss and
model sections choose the paper's ablations (no EMA, tau, normalised latents, predictor width,
action injection).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from actjepa_core.config import TrainConfig
from actjepa_core.models.world_model import ACTJEPA


def build(obs_shapes: Mapping[str, Sequence[int]], action_dim: int, config: TrainConfig,
          action_conditioned: bool = True) -> ACTJEPA:
    return ACTJEPA(obs_shapes, action_dim, config.model, ema=config.ema.enabled,
                   normalise_latents=config.loss.normalise,
                   stop_gradient=config.loss.stop_gradient,
                   action_conditioned=action_conditioned,
                   variance_weight=config.loss.variance_weight,
                   covariance_weight=config.loss.covariance_weight)
