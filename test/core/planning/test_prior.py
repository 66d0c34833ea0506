"""The goal-conditioned prior: it learns which way to go for a goal, and proposes a plan through
the predictor."""
from __future__ import annotations

import pytest
import torch

from actjepa_core.errors import ActJepaError
from actjepa_core.planning.prior import GoalPrior, PriorConfig, fit_prior, propose

FAST = PriorConfig(hidden=[64, 64], steps=1500, batch_size=256, discount=0.8)


def line_demos(count: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Demos on a line in a 2-D latent: half walk right (+1 actions), half left (-1); so the
    action is a function of where the goal lies, not of the state."""
    latents, actions, lengths = [], [], []
    for i in range(count):
        step = 1.0 if i % 2 == 0 else -1.0
        x = torch.arange(10, dtype=torch.float32) * 0.1 * step + 0.05 * i  # (T,)
        latents.append(torch.stack([x, torch.zeros_like(x)], -1))  # (T, 2)
        actions.append(torch.full((10, 1), step))
        lengths.append(10)
    return torch.cat(latents), torch.cat(actions), lengths


def test_the_prior_heads_for_the_goal(one_torch_thread):
    latents, actions, lengths = line_demos(8)
    prior, losses = fit_prior(latents, actions, lengths, FAST)
    s = torch.tensor([[0.2, 0.0]])
    right, left = torch.tensor([[0.7, 0.0]]), torch.tensor([[-0.4, 0.0]])
    assert float(prior(s, right)) > 0.8 and float(prior(s, left)) < -0.8
    assert losses[-1] < losses[0]


def test_propose_rolls_the_prior_through_the_predictor():
    """Each proposed action is the prior's on the latent the predictor reached: with a predictor
    that adds the action, a prior that moves toward the goal stops at it."""
    prior = GoalPrior(1, 1, [8])
    prior.forward = lambda s, g: (g - s).clamp(-1, 1) * 0.5  # type: ignore[method-assign]
    plan = propose(prior, lambda s, a: s + a, torch.tensor([[0.0]]), torch.tensor([[0.0]]),
                   torch.tensor([1.0]), horizon=4)  # (H, A)
    torch.testing.assert_close(plan[:, 0], torch.tensor([0.5, 0.25, 0.125, 0.0625]))


def test_bad_settings_are_named():
    with pytest.raises(ActJepaError, match="prior.mode"):
        PriorConfig(mode="sometimes").validate("test")
