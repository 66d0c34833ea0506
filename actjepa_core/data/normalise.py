"""Normalisation statistics, computed from the training split and stored in every checkpoint.

States are standardised per dimension; images (uint8) go to float in [0, 1]; actions are mapped to
[-1, 1] with the dataset's per-dimension bounds, and mapped back at the robot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from actjepa_core.data.episodes import Episode

STD_FLOOR = 1e-6  # dims with (near) constant value (e.g. Meta-World's padding) get std 1
RANGE_FLOOR = 1e-6  # likewise for action dims that never move
PIXEL_SCALE = 255.0


@dataclass
class Normaliser:
    obs_mean: dict[str, torch.Tensor]  # float keys only
    obs_std: dict[str, torch.Tensor]
    action_low: torch.Tensor  # (A,)
    action_high: torch.Tensor  # (A,)

    @classmethod
    def fit(cls, episodes: Sequence[Episode], obs_keys: Sequence[str]) -> "Normaliser":
        mean, std = {}, {}
        for key in obs_keys:
            if episodes[0].obs[key].dtype == np.uint8:
                continue
            values = np.concatenate([ep.obs[key] for ep in episodes]).astype(np.float64)
            sd = values.std(axis=0)
            mean[key] = torch.as_tensor(values.mean(axis=0), dtype=torch.float32)
            std[key] = torch.as_tensor(np.where(sd < STD_FLOOR, 1.0, sd), dtype=torch.float32)
        actions = np.concatenate([ep.actions for ep in episodes])
        low, high = actions.min(axis=0), actions.max(axis=0)
        flat = (high - low) < RANGE_FLOOR
        low, high = np.where(flat, low - 1.0, low), np.where(flat, high + 1.0, high)
        return cls(mean, std, torch.as_tensor(low, dtype=torch.float32),
                   torch.as_tensor(high, dtype=torch.float32))

    def obs(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Raw observation tensors -> model inputs (any leading batch dims)."""
        return {k: self.obs_key(k, v) for k, v in obs.items()}

    def obs_key(self, key: str, value: torch.Tensor) -> torch.Tensor:
        if value.dtype == torch.uint8:
            return value.float() / PIXEL_SCALE
        return (value.float() - self.obs_mean[key]) / self.obs_std[key]

    def action(self, a: torch.Tensor) -> torch.Tensor:
        """Robot units -> [-1, 1]."""
        return 2.0 * (a - self.action_low) / (self.action_high - self.action_low) - 1.0

    def unaction(self, a: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> robot units."""
        return (a + 1.0) * 0.5 * (self.action_high - self.action_low) + self.action_low

    def to(self, device: torch.device | str) -> "Normaliser":
        return Normaliser({k: v.to(device) for k, v in self.obs_mean.items()},
                          {k: v.to(device) for k, v in self.obs_std.items()},
                          self.action_low.to(device), self.action_high.to(device))

    def state_dict(self) -> dict:
        return {"obs_mean": dict(self.obs_mean), "obs_std": dict(self.obs_std),
                "action_low": self.action_low, "action_high": self.action_high}

    @classmethod
    def from_state_dict(cls, state: Mapping) -> "Normaliser":
        return cls(dict(state["obs_mean"]), dict(state["obs_std"]), state["action_low"],
                   state["action_high"])
