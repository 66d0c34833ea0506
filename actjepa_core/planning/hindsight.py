"""Hindsight goals: training pairs (state, goal) drawn from recorded episodes, where the goal is a
state the episode itself reached later (or the state itself, or any state of any episode).

A goal-conditioned value or policy needs goals it has seen reached; relabelling the episodes'
own future states as goals (Andrychowicz et al. 2017, as in OGBench's GCIQL/HIQL samplers) makes
every recorded transition a lesson about many goals, play data included. Rows index the episodes'
steps concatenated in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from actjepa_core.errors import ActJepaError


@dataclass
class GoalBatch:
    rows: torch.Tensor  # (B,) the state's row
    next_rows: torch.Tensor  # (B,) the row after it (same episode)
    goals: torch.Tensor  # (B,) the goal's row
    reached: torch.Tensor  # (B,) bool: the goal is the state itself


class HindsightSampler:
    """Draws (row, next row, goal row) for episodes of ``lengths`` steps: with ``p_current`` the
    goal is the state itself, with ``p_future`` a later state of the same episode (offset ~
    Geometric(1 - discount), clipped at the episode's end), otherwise a uniform random state."""

    def __init__(self, lengths: Sequence[int], discount: float, p_current: float,
                 p_future: float, generator: torch.Generator):
        if not lengths or min(lengths) < 2:
            raise ActJepaError(f"hindsight goals need episodes of >= 2 steps; got lengths "
                               f"{list(lengths)[:10]}")
        if not (0 <= p_current and 0 <= p_future and p_current + p_future <= 1):
            raise ActJepaError(f"goal shares must be >= 0 and sum to <= 1, got current "
                               f"{p_current}, future {p_future}")
        if not 0 < discount < 1:
            raise ActJepaError(f"discount must lie in (0, 1), got {discount}")
        lengths_t = torch.as_tensor(list(lengths))
        ends = torch.cumsum(lengths_t, 0) - 1
        self.end_of = torch.repeat_interleave(ends, lengths_t)  # (N,) last row of each row's ep.
        self.starts = torch.nonzero(torch.arange(len(self.end_of)) < self.end_of).squeeze(1)
        self.total = len(self.end_of)
        self.discount, self.p_current, self.p_future = discount, p_current, p_future
        self.generator = generator

    def sample(self, batch: int) -> GoalBatch:
        g = self.generator
        rows = self.starts[torch.randint(len(self.starts), (batch,), generator=g)]  # (B,)
        u = torch.rand(batch, generator=g)
        offset = geometric(batch, 1 - self.discount, g) + 1  # (B,) >= 1
        future = torch.minimum(rows + offset, self.end_of[rows])
        random = torch.randint(self.total, (batch,), generator=g)
        current = u < self.p_current
        goals = torch.where(current, rows,
                            torch.where(u < self.p_current + self.p_future, future, random))
        return GoalBatch(rows, rows + 1, goals, goals == rows)


def seeded_sampler(lengths: Sequence[int], config) -> HindsightSampler:
    """The sampler a training run draws from, its stream and torch's (network initialisation)
    seeded with ``config.seed``; ``config`` carries discount, p_current and p_future."""
    torch.manual_seed(config.seed)
    return HindsightSampler(lengths, config.discount, config.p_current, config.p_future,
                            torch.Generator().manual_seed(config.seed))


def geometric(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) draws of the number of failures before the first success, success probability p."""
    u = torch.rand(n, generator=generator).clamp_min(1e-12)
    return torch.floor(torch.log(u) / torch.log1p(torch.tensor(-p))).long()
