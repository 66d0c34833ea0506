"""How informative a trained encoder's latents are, beyond the (scale-dependent) collapse metric.

- effective rank: exp(entropy) of the normalised singular values of the centred latents, from 1
  (everything on a line or a point) to D;
- probe R^2: a ridge regression from the latent to the raw observation vector, fitted on the
  training demos and scored on the held-out ones. A collapsed encoder scores ~0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from actjepa_core.config import TrainConfig, from_dict
from actjepa_core.data.episodes import read_episodes
from actjepa_core.data.transitions import split_episodes
from actjepa_core.models.world_model import collapse_metric
from actjepa_core.policies.world import FrozenWorld

RIDGE = 1e-3


def effective_rank(latents: torch.Tensor) -> float:
    centred = latents - latents.mean(0)
    s = torch.linalg.svdvals(centred.double())
    p = s / s.sum().clamp_min(1e-12)
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))


def probe_r2(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
             test_y: torch.Tensor) -> float:
    """Held-out R^2 (averaged over the target dims that vary) of a ridge probe."""
    mu_x, mu_y = train_x.mean(0), train_y.mean(0)
    x, y = (train_x - mu_x).double(), (train_y - mu_y).double()
    w = torch.linalg.solve(x.T @ x + RIDGE * len(x) * torch.eye(x.shape[1], dtype=x.dtype), x.T @ y)
    pred = (test_x - mu_x).double() @ w + mu_y.double()
    var = test_y.double().var(0)
    keep = var > 1e-8
    r2 = 1 - ((pred - test_y.double()) ** 2).mean(0)[keep] / var[keep]
    return float(r2.mean())


@torch.no_grad()
def latent_diagnostics(checkpoint: str | Path, data_path: str | Path) -> dict[str, float]:
    world = FrozenWorld.from_checkpoint(checkpoint)
    config = from_dict(TrainConfig, world.config, str(checkpoint))
    data = read_episodes(data_path, world.processor.keys)
    train_eps, val_eps = split_episodes(data.episodes, config.data.val_fraction, config.run.seed)
    val_eps = val_eps or train_eps

    def encode(eps):
        target = torch.as_tensor(np.concatenate([e.obs[data.obs_keys[0]] for e in eps]))
        return world.encode_episodes(eps), target.flatten(1).float()

    z_train, y_train = encode(train_eps)
    z_val, y_val = encode(val_eps)
    return {"collapse": collapse_metric(z_val).item(),
            "mean_latent_norm": z_val.norm(dim=1).mean().item(),
            "effective_rank": effective_rank(z_val),
            "probe_r2": probe_r2(z_train, y_train, z_val, y_val)}


@torch.no_grad()
def rollout_errors(world: FrozenWorld, episodes, horizon: int) -> list[float]:
    """The predictor's k-step latent error on whole demos, k = 1..horizon, as MPC uses it: from
    the online latent of o_t, roll the predictor through the demo's actions a_t..a_{t+k-1} and
    compare with the target latent of o_{t+k}. Each error is the mean squared distance divided
    by the total variance of the target latents (0: perfect; ~2: no better than a random demo
    latent), so models with different latent scales compare."""
    if not getattr(world.model, "action_conditioned", False):
        return []
    sums, counts = torch.zeros(horizon), torch.zeros(horizon)
    online = world.encode_episodes(episodes)  # (N, D)
    target = world.encode_episodes(episodes, target=True)  # (N, D)
    actions = world.processor.episode_actions(episodes)  # (N, A), normalised
    spread = target.var(0).sum().clamp_min(1e-12)
    offset = 0
    for ep in episodes:
        n = ep.num_steps
        starts = torch.arange(offset, offset + n - horizon)
        if len(starts):
            window = starts[:, None] + torch.arange(horizon)  # (S, H)
            predicted = world.model.rollout(online[starts], actions[window])  # (S, H, D)
            sums += (predicted - target[window + 1]).pow(2).sum(-1).sum(0).cpu()
            counts += len(starts)
        offset += n
    return (sums / counts.clamp_min(1) / spread.cpu()).tolist()
