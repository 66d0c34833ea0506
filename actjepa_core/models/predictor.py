"""The action-conditioned predictor g_phi(s_t, e_a) -> s_hat_{t+1} (the paper §4.3).

Three ways to inject the action: ``concat`` ([s; e_a], input 2D), ``add`` (s + e_a, input D) and
``film`` (e_a produces a per-layer scale and shift of the hidden features). The hidden widths are
kept <= D by default: the bottleneck is what stops the predictor from mapping anything to anything.
"""
from __future__ import annotations

import torch
from torch import nn

from actjepa_core.config import ModelConfig
from actjepa_core.models.encoders import ACTIVATION_LAYERS, mlp


class Predictor(nn.Module):
    """g_phi. ``action_conditioned=False`` is the passive (V-JEPA-style) predictor of the paper's
    'no action conditioning' ablation: it maps s_t alone to s_hat_{t+1} and has no action input."""

    def __init__(self, config: ModelConfig, action_conditioned: bool = True):
        super().__init__()
        d = config.latent_dim
        self.injection = config.action_injection if action_conditioned else "none"
        if self.injection == "none":
            self.net = mlp(d, config.predictor_hidden, d, config.activation)
        elif self.injection == "film":
            widths = [d, *config.predictor_hidden]
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
            # one (gamma, beta) pair per hidden layer, produced from e_a in one matmul
            self.film = nn.Linear(d, 2 * sum(config.predictor_hidden))
            self.act = ACTIVATION_LAYERS[config.activation]()
            self.out = nn.Linear(widths[-1], d)
        else:
            in_dim = 2 * d if self.injection == "concat" else d
            self.net = mlp(in_dim, config.predictor_hidden, d, config.activation)

    def forward(self, s: torch.Tensor, e_a: torch.Tensor | None) -> torch.Tensor:
        if self.injection == "none":
            return self.net(s)  # (B, D): the action never enters
        if self.injection == "concat":
            return self.net(torch.cat([s, e_a], dim=-1))  # (B, 2D) -> (B, D)
        if self.injection == "add":
            return self.net(s + e_a)  # (B, D)
        return self._film(s, e_a)

    def _film(self, s: torch.Tensor, e_a: torch.Tensor) -> torch.Tensor:
        film = self.film(e_a)  # (B, 2 * sum(hidden))
        h, offset = s, 0
        for layer in self.layers:
            width = layer.out_features
            gamma = film[..., offset:offset + width]
            beta = film[..., offset + width:offset + 2 * width]
            offset += 2 * width
            # 1 + gamma: an untrained FiLM starts near the identity modulation
            h = self.act((1 + gamma) * layer(h) + beta)  # (B, width)
        return self.out(h)  # (B, D)
