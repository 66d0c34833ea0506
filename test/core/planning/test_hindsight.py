"""Hindsight goals: what each share of the batch is, and that no transition crosses an episode."""
from __future__ import annotations

import pytest
import torch

from actjepa_core.errors import ActJepaError
from actjepa_core.planning.hindsight import HindsightSampler, geometric

LENGTHS = [5, 3, 8]


def episode_of(rows: torch.Tensor) -> torch.Tensor:
    return torch.bucketize(rows, torch.cumsum(torch.tensor(LENGTHS), 0), right=True)


def test_transitions_stay_in_their_episode_and_goals_follow_their_share():
    sampler = HindsightSampler(LENGTHS, 0.9, 0.25, 0.5, torch.Generator().manual_seed(0))
    b = sampler.sample(20000)
    assert (episode_of(b.rows) == episode_of(b.next_rows)).all()  # never the last row
    assert torch.equal(b.reached, b.goals == b.rows)
    later = (episode_of(b.goals) == episode_of(b.rows)) & (b.goals > b.rows)
    current = b.reached.float().mean()
    assert 0.25 <= current < 0.28  # the current share, plus random draws that hit the row
    assert 0.5 <= later.float().mean() < 0.56  # the future share, plus random draws after it


def test_future_offsets_shrink_with_the_discount():
    """A lower discount means nearer goals: the offsets follow Geometric(1 - discount)."""
    def mean_offset(discount: float) -> float:
        b = HindsightSampler([200], discount, 0.0, 1.0, torch.Generator().manual_seed(1)
                             ).sample(5000)
        return float((b.goals - b.rows).float().mean())

    assert mean_offset(0.5) < 3 < 8 < mean_offset(0.9)
    draws = geometric(100000, 0.25, torch.Generator().manual_seed(2)).float()
    assert abs(float(draws.mean()) - 3.0) < 0.1  # (1 - p) / p


def test_bad_episodes_and_shares_are_named():
    g = torch.Generator()
    with pytest.raises(ActJepaError, match=">= 2 steps"):
        HindsightSampler([4, 1], 0.9, 0.2, 0.5, g)
    with pytest.raises(ActJepaError, match="sum to <= 1"):
        HindsightSampler([4], 0.9, 0.6, 0.5, g)
