"""Representation objectives, one module each, selected by ``TrainConfig.objective``:

- ``act-jepa``: the paper's method (latent prediction of o_{t+1} from s_t and a_t, EMA target);
- ``passive-jepa``: the same without the action (V-JEPA-style);
- ``autoencoder``: reconstruct o_t from s_t;
- ``action-reconstruction``: reconstruct o_{t+1} from g(s_t, a_t) (pixels instead of latents);
- ``contrastive``: SimCLR InfoNCE between two augmented views of o_t;
- ``raw``: the encoder trained end to end on the action loss (BC from scratch).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from torch import nn

from actjepa_core.config import TrainConfig
from actjepa_core.objectives import (
    act_jepa,
    action_reconstruction,
    autoencoder,
    contrastive,
    passive_jepa,
    raw,
)

Builder = Callable[[Mapping[str, Sequence[int]], int, TrainConfig], nn.Module]

OBJECTIVES: dict[str, Builder] = {
    "act-jepa": act_jepa.build,
    "passive-jepa": passive_jepa.build,
    "autoencoder": autoencoder.build,
    "action-reconstruction": action_reconstruction.build,
    "contrastive": contrastive.build,
    "raw": raw.build,
}


def build_objective(config: TrainConfig, obs_shapes: Mapping[str, Sequence[int]],
                    action_dim: int) -> nn.Module:
    """The model ``config.objective`` trains (its ``encoder`` is what policies freeze)."""
    return OBJECTIVES[config.objective](obs_shapes, action_dim, config)
