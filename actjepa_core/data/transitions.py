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
    next_obs: dict[str, torch.Tensor]  # key -> (B, K, ...); empty when the objective reads none


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
                 normaliser: Normaliser, steps: int = 1, device: str | torch.device = "cpu",
                 pad_end: bool = False, next_steps: int | None = None):
        """``pad_end``: windows may run past a demo's end, their indices held at its last step
        (action chunks: the expert holds still at the end, so every step but the last starts a
        window); otherwise a window must fit inside its demo. ``next_steps``: how many of the K
        next observations a batch carries (default all K; an objective that reads none, such
        as plain end-to-end BC, skips gathering and scaling K images per sample)."""
        self.steps = steps
        self.next_steps = steps if next_steps is None else next_steps
        self.device = torch.device(device)
        starts, ends, offset = [], [], 0
        for ep in episodes:
            n = ep.num_steps - (1 if pad_end else steps)  # windows t..t+K inside this demo
            if n > 0:
                starts.append(np.arange(offset, offset + n))
                ends.append(np.full(n, offset + ep.num_steps - 1))
            offset += ep.num_steps
        if not starts:
            raise ActJepaError(f"no demo is longer than {steps} step(s); cannot form a transition")
        self.starts = torch.as_tensor(np.concatenate(starts), device=self.device)
        # the last index each window may reach: its demo's last step
        self.ends = torch.as_tensor(np.concatenate(ends), device=self.device)
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
        end = self.ends[positions, None]  # (B, 1)
        window = torch.minimum(t[:, None] + self._window, end)  # (B, K)
        following = torch.minimum(t[:, None] + self._window[:self.next_steps] + 1, end)  # (B, K')
        obs = self.processor.expand({k: v[t] for k, v in self.obs.items()})
        next_obs = (self.processor.expand({k: v[following] for k, v in self.obs.items()})
                    if self.next_steps else {})
        return Batch(obs, self.actions[window], next_obs)

    def epoch_batches(self, batch_size: int, generator: torch.Generator):
        """Shuffled full batches covering the set once (the last partial batch is dropped when
        the set holds at least one full batch, so every step has the same shape)."""
        sampler = EpochSampler(len(self), batch_size, generator, self.device)
        for _ in range(sampler.batches_per_epoch):
            yield next(sampler)

    def ordered_batches(self, batch_size: int):
        """Every transition once, in order (for validation)."""
        for i in range(0, len(self), batch_size):
            yield torch.arange(i, min(i + batch_size, len(self)), device=self.device)

    def ordered(self, batch_size: int):
        """Every transition once, in order, as batches (validation)."""
        for positions in self.ordered_batches(batch_size):
            yield self.batch(positions)


class EpochSampler:
    """Endless shuffled batches of positions, epoch after epoch, as Algorithm 1 draws them.

    Each epoch is one ``torch.randperm`` from ``generator`` cut into full global batches (the last
    partial one is dropped; a set smaller than one batch is a single short batch). Under DDP every
    rank draws the same permutation and takes its contiguous slice ``rank`` of each global batch,
    so the ranks' batches together are exactly the single-process batch (a
    ``DistributedSampler`` whose global batches match the one-process run's).

    The state (the generator's state when the current epoch was drawn, and the batches taken from
    it) makes a resumed run draw the very batches an uninterrupted one would.
    """

    def __init__(self, size: int, batch_size: int, generator: torch.Generator,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ActJepaError(f"batch size {batch_size} does not split evenly over "
                               f"{world_size} processes; choose a multiple of {world_size}")
        if world_size > 1 and size < batch_size:
            raise ActJepaError(f"{size} training transitions are fewer than one global batch of "
                               f"{batch_size}; use a smaller batch or fewer processes")
        self.size, self.batch_size, self.generator = size, batch_size, generator
        self.device, self.rank, self.world_size = torch.device(device), rank, world_size
        self.local = batch_size // world_size
        self.batches_per_epoch = max(1, size // batch_size)
        self.epoch_state: torch.Tensor | None = None
        self.perm: torch.Tensor | None = None
        self.taken = 0

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        if self.perm is None or self.taken == self.batches_per_epoch:
            self.epoch_state = self.generator.get_state()
            self._draw()
        i, self.taken = self.taken, self.taken + 1
        if self.size < self.batch_size:  # one short batch (single process only)
            return self.perm
        start = i * self.batch_size + self.rank * self.local
        return self.perm[start:start + self.local]

    def _draw(self) -> None:
        self.perm = torch.randperm(self.size, generator=self.generator,
                                   device="cpu").to(self.device)
        self.taken = 0

    def state_dict(self) -> dict:
        return {"epoch_generator": (self.epoch_state if self.epoch_state is not None
                                    else self.generator.get_state()), "taken": self.taken}

    def load_state_dict(self, state: dict) -> None:
        """Continue where ``state`` stopped: redraw its epoch, skip the batches it had taken."""
        self.generator.set_state(state["epoch_generator"].cpu())
        self.epoch_state = self.generator.get_state()
        self._draw()
        self.taken = int(state["taken"])
