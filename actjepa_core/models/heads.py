"""Action heads on a latent: their default shape, shared by the BC policy's head (on a frozen
encoder) and the raw objective's head (trained end to end with the encoder), so a table row that
compares the two differs in training only. Lives with the models, so an objective never has to
import the policies for a width."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from actjepa_core.models.encoders import mlp

HEAD_HIDDEN = (256, 256)  # widths between the latent (D) and the action (A)
HEAD_ACTIVATION = "relu"


def action_head(latent_dim: int, action_dim: int, hidden: Sequence[int] = HEAD_HIDDEN,
                activation: str = HEAD_ACTIVATION) -> nn.Sequential:
    """An MLP from a latent to an action (or a chunk of them, ``action_dim`` = chunk * A)."""
    return mlp(latent_dim, hidden, action_dim, activation)
