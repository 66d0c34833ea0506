"""Transitions (o_t, a_t..a_{t+K-1}, o_{t+1}..o_{t+K}) drawn from inside one demo, never across
demos.

All demos are concatenated into device tensors once; a batch is a gather by index, so the training
step needs no DataLoader, no worker processes and no host-to-device copy per step.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

from actjepa_core.data.episodes import Episode
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.processor import ObservationProcessor
from actjepa_core.errors import ActJepaError


class Batch(NamedTuple):
    obs: dict[str, torch.Tensor]  # key -> (B, ...)
    actions: torch.Tensor  # (B, K, A), normalised
    next_obs: dict[str, torch.Tensor]  # key -> (B, K, ...)


def split_episodes(episodes: Sequence[Episode], val_fraction: float,
                   seed: int) -> tuple[list[Episode], list[Episode]]:
    """Hold out whole demos for validation (at least one when val_fraction > 0 and >= 2 demos)."""
    order = np.random.default_rng(seed).permutation(len(episodes))
    n_val = int(round(val_fraction * len(episodes)))
    if val_fraction > 0 and len(episodes) >= 2:
        n_val = min(max(n_val, 1), len(episodes) - 1)
    else:
        n_val = 0
    val = [episodes[i] for i in sorted(order[:n_val])]
    train = [episodes[i] for i in sorted(order[n_val:])]
    return train, val


class TransitionSet:
    """Model-ready tensors of a set of demos plus the valid start index of every K-step window."""

    def __init__(self, episodes: Sequence[Episode], obs_keys: Sequence[str],
                 normaliser: Normaliser, steps: int = 1, device: str | torch.device = "cpu"):
        self.steps = steps
        self.device = torch.device(device)
        starts, offset = [], 0
        for ep in episodes:
            n = ep.num_steps - steps  # windows t..t+K inside this demo
            if n > 0:
                starts.append(np.arange(offset, offset + n))
            offset += ep.num_steps
        if not starts:
            raise ActJepaError(f"no demo is longer than {steps} step(s); cannot form a transition")
        self.starts = torch.as_tensor(np.concatenate(starts), device=self.device)
        self.processor = ObservationProcessor.from_episodes(episodes, obs_keys, normaliser,
                                                            self.device)
        self.normaliser = self.processor.normaliser
        # states are normalised once here; uint8 images stay compact and are scaled per batch
        self.obs = {key: self.processor.compact(key, torch.as_tensor(rows).to(self.device))
                    for key, rows in self.processor.episode_rows(episodes).items()}
        self.actions = self.processor.episode_actions(episodes)
        self._window = torch.arange(steps, device=self.device)

    def __len__(self) -> int:
        return int(self.starts.numel())

    def batch(self, positions: torch.Tensor) -> Batch:
        """Gather the transitions at ``positions`` (indices into the valid starts)."""
        t = self.starts[positions]  # (B,)
        window = t[:, None] + self._window  # (B, K)
        obs = self.processor.expand({k: v[t] for k, v in self.obs.items()})
        next_obs = self.processor.expand({k: v[window + 1] for k, v in self.obs.items()})
        return Batch(obs, self.actions[window], next_obs)

    def epoch_batches(self, batch_size: int, generator: torch.Generator):
        """Shuffled full batches covering the set once (the last partial batch is dropped when
        the set holds at least one full batch, so every step has the same shape)."""
        perm = torch.randperm(len(self), generator=generator, device="cpu").to(self.device)
        n_full = len(self) // batch_size
        if n_full == 0:
            yield perm
            return
        for i in range(n_full):
            yield perm[i * batch_size:(i + 1) * batch_size]

    def ordered_batches(self, batch_size: int):
        """Every transition once, in order (for validation)."""
        for i in range(0, len(self), batch_size):
            yield torch.arange(i, min(i + batch_size, len(self)), device=self.device)
