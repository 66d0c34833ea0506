"""A goal-conditioned policy prior pi(s, g) over latents: where the planner starts its search.

Sampling planners find a multi-stage manoeuvre (approach, contact, push) only if their samples
come near it; from a zero or shifted mean a 5-step horizon rarely does. TD-MPC2 (Hansen et al.
2024) seeds its MPPI population with a learned policy's rollouts. Here the prior is goal-
conditioned behavioural cloning on the demos with hindsight goals (a later state of the same demo,
Ghosh et al. 2021), so goals stay a run-time input: rolled out through the predictor it proposes
an (H, A) sequence, the planner searches around it, and the value or latent cost picks.

``mode: direct`` executes the prior's first action without any search: the measurement of what
planning adds on top of the prior. ``guard`` keeps the prior's action unless the search's plan
beats the prior's own plan by ``margin`` under the same cost: safe policy improvement in the
spirit of SPIBB (Laroche et al. 2019), since a learned cost rewards the search for finding its
errors (measured: every unguarded search around the prior scored below the prior alone).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.planning.goal_networks import GoalConditionedMLP
from actjepa_core.planning.hindsight import seeded_sampler

PRIOR_MODES = ("none", "proposal", "direct")


@dataclass
class PriorConfig:
    mode: str = "none"  # none | proposal (search starts at its rollout) | direct (no search)
    # proposal: execute the search's plan only where the planner's own cost ranks it below the
    # prior's plan by more than ``margin`` (cost units: with cost value, steps to go), else the
    # prior's first action; a search whose cost is exploitable can then cost little
    guard: bool = False
    margin: float = 0.0
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    discount: float = 0.99  # future-goal offsets ~ Geometric(1 - discount)
    p_current: float = 0.0  # goal shares as in value training; the rest: random states
    p_future: float = 1.0
    steps: int = 3000
    batch_size: int = 512
    lr: float = 1e-3  # Adam
    seed: int = 0

    def validate(self, where: str) -> "PriorConfig":
        check_choice(where, "prior.mode", self.mode, PRIOR_MODES)
        if self.guard and self.mode != "proposal":
            raise ActJepaError(f"{where}: prior.guard compares a search with the prior's plan; "
                               f"expected prior.mode proposal, got {self.mode!r}")
        if self.margin < 0:
            raise ActJepaError(f"{where}: prior.margin must be >= 0, got {self.margin}")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ActJepaError(f"{where}: prior.steps, batch_size and lr must be positive")
        return self


class GoalPrior(GoalConditionedMLP):
    """(…, D) latent, (…, D) goal -> (…, A) normalised action in [-1, 1]; ``latents`` (N, D):
    the training latents, for the input standardisation."""

    def __init__(self, latent_dim: int, action_dim: int, hidden: Sequence[int],
                 latents: torch.Tensor | None = None):
        super().__init__(latent_dim, action_dim, hidden, latents)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.features(s, g))


def fit_prior(latents: torch.Tensor, actions: torch.Tensor, lengths: Sequence[int],
              config: PriorConfig) -> tuple[GoalPrior, list[float]]:
    """Goal-conditioned BC on demos' target latents (N, D) and normalised actions (N, A):
    a_t from (s_t, a later s of the same demo). Returns the prior (eval mode) and the loss
    every 10% of the steps."""
    if not len(latents) == len(actions) == sum(lengths):
        raise ActJepaError(f"prior training: {len(latents)} latents and {len(actions)} actions "
                           f"for demos of {sum(lengths)} steps in total")
    sampler = seeded_sampler(lengths, config)
    prior = GoalPrior(latents.shape[1], actions.shape[1], config.hidden, latents)
    optimizer = torch.optim.Adam(prior.parameters(), lr=config.lr)
    losses, report_every = [], max(1, config.steps // 10)
    for step in range(config.steps):
        b = sampler.sample(config.batch_size)
        target = actions[b.rows].clamp(-1.0, 1.0)  # (B, A)
        loss = (prior(latents[b.rows], latents[b.goals]) - target).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % report_every == 0:
            losses.append(float(loss.detach()))
    return prior.eval().requires_grad_(False), losses


@torch.no_grad()
def propose(prior: GoalPrior, predict, start: torch.Tensor, start_target: torch.Tensor,
            goal: torch.Tensor, horizon: int) -> torch.Tensor:
    """The prior's (H, A) plan: act on the live target latent ``start_target`` (1, D), then on
    the predictor's latents, stepping ``predict(s, a)`` from the online latent ``start`` (1, D)."""
    actions, s, z = [], start, start_target
    for _ in range(horizon):
        a = prior(z, goal.reshape(1, -1))  # (1, A)
        actions.append(a[0])
        s = predict(s, a)  # (1, D), in the target space the prior was trained on
        z = s
    return torch.stack(actions)  # (H, A)
