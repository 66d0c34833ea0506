"""The paper's reference implementation (act-jepa-method.txt §6), copied verbatim.

Used only by `actjepa bench train` to measure our trainer against it on the same data, sizes, batch
and machine. Do not "improve" it: it is the baseline as published.
"""
# flake8: noqa
import torch
import torch.nn as nn
import copy

class ACTJEPAEncoder(nn.Module):
    """Observation encoder f_θ."""
    def __init__(self, obs_dim: int, repr_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, 256), nn.ReLU(),
            nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, repr_dim),
        )
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)  # (B, D)

class ActionEncoder(nn.Module):
    """Action encoder h_ψ."""
    def __init__(self, action_dim: int, repr_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(action_dim, 128), nn.ReLU(),
            nn.Linear(128, repr_dim),
        )
    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return self.net(action)  # (B, D)

class Predictor(nn.Module):
    """Action-conditioned predictor g_φ."""
    def __init__(self, repr_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(repr_dim * 2, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),  # bottleneck
            nn.Linear(128, repr_dim),
        )
    def forward(self, s_t: torch.Tensor, e_a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([s_t, e_a], dim=-1))  # (B, D)

class ACTJEPA:
    def __init__(self, obs_dim, action_dim, repr_dim=128, tau=0.996, lr=1e-3):
        self.encoder = ACTJEPAEncoder(obs_dim, repr_dim)
        self.action_encoder = ActionEncoder(action_dim, repr_dim)
        self.predictor = Predictor(repr_dim)
        # Target encoder: EMA copy, no gradients
        self.target_encoder = copy.deepcopy(self.encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad = False
        self.tau = tau
        self.optimizer = torch.optim.Adam(
            list(self.encoder.parameters()) +
            list(self.action_encoder.parameters()) +
            list(self.predictor.parameters()),
            lr=lr,
        )

    @torch.no_grad()
    def update_target_encoder(self):
        for p, tp in zip(self.encoder.parameters(),
                         self.target_encoder.parameters()):
            tp.data.mul_(self.tau).add_(p.data, alpha=1 - self.tau)

    def train_step(self, o_t, a_t, o_next):
        s_t = self.encoder(o_t)                    # (B, D)
        e_a = self.action_encoder(a_t)             # (B, D)
        s_hat = self.predictor(s_t, e_a)           # (B, D)

        with torch.no_grad():
            s_target = self.target_encoder(o_next)  # (B, D)

        loss = ((s_hat - s_target) ** 2).mean()

        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.update_target_encoder()
        return loss.item()
