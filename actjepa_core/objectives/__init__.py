"""Representation objectives, one module each, selected by ``TrainConfig.objective``:

- ``act-jepa``: the paper's method (latent prediction of o_{t+1} from s_t and a_t, EMA target);
- ``passive-jepa``: the same without the action (V-JEPA-style);
- ``autoencoder``: reconstruct o_t from s_t;
- ``action-reconstruction``: reconstruct o_{t+1} from g(s_t, a_t) (pixels instead of latents);
- ``contrastive``: SimCLR InfoNCE between two augmented views of o_t;
- ``raw``: the encoder trained end to end on the action loss (BC from scratch);
- ``bc``: a camera policy trained end to end (head keys joined late, action chunks, weight EMA),
  with ACT-JEPA as an optional auxiliary loss: what the ``e2e`` policy deploys.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from torch import nn

from actjepa_core.config import TrainConfig
from actjepa_core.objectives import (
    act_jepa,
    action_reconstruction,
    autoencoder,
    bc,
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
    "bc": bc.build,
}
# objectives whose batches are windowed otherwise than K = loss.rollout_steps inside a demo
WINDOWS: dict[str, Callable[[TrainConfig], tuple[int, bool, int]]] = {"bc": bc.window}


def build_objective(config: TrainConfig, obs_shapes: Mapping[str, Sequence[int]],
                    action_dim: int) -> nn.Module:
    """The model ``config.objective`` trains (its ``encoder`` is what policies freeze)."""
    return OBJECTIVES[config.objective](obs_shapes, action_dim, config)


def transition_window(config: TrainConfig) -> tuple[int, bool, int]:
    """(K, pad_end, K'): steps of actions per transition, whether windows may run past a demo's
    end (held at its last step), and how many next observations the objective reads."""
    window = WINDOWS.get(config.objective)
    steps = config.loss.rollout_steps
    return window(config) if window else (steps, False, steps)
