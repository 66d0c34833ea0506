"""AdamW as the paper trains with it (§5): lr and betas from the config, weight decay on weights
only."""
from __future__ import annotations

import torch

from actjepa_core.config import TrainConfig


def decay_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on weight matrices and conv kernels only, never on biases or
    norm gains (the I-JEPA / V-JEPA recipe): decaying a bias pulls it toward 0 for no gain in
    generalisation, and decaying a norm gain shrinks the features it is there to scale."""
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def make_optimizer(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.AdamW:
    o = config.optim
    return torch.optim.AdamW(decay_groups(params, o.weight_decay), lr=o.lr, betas=tuple(o.betas),
                             fused=True)
