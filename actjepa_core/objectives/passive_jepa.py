"""Passive JEPA (V-JEPA-style, the paper's 'no action conditioning' row): the same latent
prediction of o_{t+1} from s_t, but the predictor never sees the action, so the latent must carry
what predicts the future without knowing what the robot will do."""
from __future__ import annotations

from typing import Mapping, Sequence

from actjepa_core.config import TrainConfig
from actjepa_core.models.world_model import ACTJEPA
from actjepa_core.objectives import act_jepa


def build(obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
          config: TrainConfig) -> ACTJEPA:
    return act_jepa.build(obs_shapes, action_dim, config, action_conditioned=False)
