"""A goal-conditioned value V(s, g) over latents, learned by temporal differences: the planning
cost that sees past the horizon.

A latent distance to the goal rewards any step that makes the latent look more like the goal's,
so on push the hand goes to where the puck should end, without the puck (measured: every latent
cost 0/20). V(s, g) instead estimates -(discounted steps to reach g from s), learned from what the
recorded episodes (expert and play) actually reached: reward -1 per step until the goal is the
state, bootstrapped through an EMA target network. The expectile loss (IQL, Kostrikov et al. 2022;
the action-free form of HIQL, Park et al. 2023) fits an upper expectile of the bootstrapped
target, so V follows the best of the recorded ways to a goal rather than their average: play
data that reached a state by a detour does not make it look far. The planner then minimises
-V(s_hat_H, g) at the end of its predicted horizon (TD-MPC2's terminal value).

Inputs are target-encoder latents, the space the predictor outputs; they are standardised with
the training latents' mean and std, stored in the module.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.planning.goal_networks import GoalConditionedMLP
from actjepa_core.planning.hindsight import seeded_sampler


@dataclass
class ValueConfig:
    """Defaults after OGBench's GCIQL/HIQL on navigation and manipulation."""

    hidden: list[int] = field(default_factory=lambda: [256, 256])
    discount: float = 0.99  # per tick; also sets the future-goal offsets' geometric law
    expectile: float = 0.9  # 0.5: the mean over recorded ways (plain TD); -> 1: the best one
    steps: int = 20000  # why this many: experiments/mpc/value_probe.py (docs/results/mpc.md)
    batch_size: int = 1024
    lr: float = 3e-4  # Adam
    target_tau: float = 0.005  # EMA rate of the bootstrap target network
    p_current: float = 0.2  # goal shares: the state itself / a later state / any state
    p_future: float = 0.5
    seed: int = 0
    heads: int = 1  # > 1: an ensemble, scored as mean - pessimism * spread
    pessimism: float = 0.0
    # > 0: a conservative term on imagined latents (the world model's H-step rollouts of random
    # actions from recorded states; after COMBO), weighted by this: an imagined latent valued
    # above the recorded state it came from is pushed down, so the planner's search cannot find
    # value in predictions that random actions reach
    conservative: float = 0.0
    # which imagined latents: random = fixed rollouts of random actions, imagined_per_state per
    # recorded latent | search = refreshed every search_every steps, for search_rows sampled
    # (state, goal) pairs, the best of search_samples random rollouts under the current value
    # (a random-shooting planner's pick: the predictions a search exploits)
    imagined: str = "random"
    imagined_per_state: int = 4
    search_rows: int = 256
    search_samples: int = 32
    search_every: int = 10

    def validate(self, where: str) -> "ValueConfig":
        if not 0 < self.discount < 1 or not 0.5 <= self.expectile < 1:
            raise ActJepaError(f"{where}: value.discount must lie in (0, 1) and value.expectile "
                               f"in [0.5, 1), got {self.discount} / {self.expectile}")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or not 0 < self.target_tau <= 1:
            raise ActJepaError(f"{where}: value.steps, batch_size, lr and target_tau must be "
                               "positive (target_tau <= 1)")
        if self.heads < 1 or self.pessimism < 0:
            raise ActJepaError(f"{where}: value.heads must be >= 1 and value.pessimism >= 0, got "
                               f"{self.heads} / {self.pessimism}")
        check_choice(where, "value.imagined", self.imagined, IMAGINED)
        counts = (self.imagined_per_state, self.search_rows, self.search_samples,
                  self.search_every)
        if self.conservative < 0 or min(counts) < 1:
            raise ActJepaError(f"{where}: value.conservative must be >= 0 and "
                               "value.imagined_per_state, search_rows, search_samples and "
                               f"search_every >= 1, got {self.conservative} / {counts}")
        return self


class GoalValue(nn.Module):
    """(…, D) latent, (…, D) goal -> (…,) value, in [-1 / (1 - discount), 0]; ``latents``
    (N, D): the training latents, for the input standardisation.

    With ``heads`` > 1 it is an ensemble of independently initialised and bootstrapped networks,
    and the value is their mean minus ``pessimism`` times their spread: where the planner's
    predicted latents leave the data, the heads disagree and the value drops (TD-MPC2's and
    MOPO's answer to a planner that exploits the value's errors)."""

    def __init__(self, latent_dim: int, hidden: Sequence[int],
                 latents: torch.Tensor | None = None, heads: int = 1, pessimism: float = 0.0):
        super().__init__()
        self.heads = nn.ModuleList(GoalConditionedMLP(latent_dim, 1, hidden, latents)
                                   for _ in range(heads))
        self.pessimism = pessimism

    def each(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.stack([head.features(s, g).squeeze(-1) for head in self.heads])  # (E, …)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        values = self.each(s, g)  # (E, …)
        if len(self.heads) == 1:
            return values[0]
        return values.mean(0) - self.pessimism * values.std(0, unbiased=False)


def expectile_loss(error: torch.Tensor, weight_sign: torch.Tensor, expectile: float
                   ) -> torch.Tensor:
    """Asymmetric squares: ``error`` weighted by tau where ``weight_sign`` >= 0, else 1 - tau."""
    weight = torch.where(weight_sign >= 0, expectile, 1 - expectile)
    return (weight * error.pow(2)).mean()


IMAGINED = ("random", "search")
# the world model's imagination: latents (B, D), n -> where n random action sequences take each
# of them (B, n, D)
Rollouts = Callable[[torch.Tensor, int], torch.Tensor]


def imagined_pool(latents: torch.Tensor, rollouts: Rollouts, per_state: int,
                  chunk: int = 4096) -> torch.Tensor:
    """(N, D) recorded latents -> (N, K, D): K imagined latents from each, computed once."""
    return torch.cat([rollouts(latents[i:i + chunk], per_state)
                      for i in range(0, len(latents), chunk)])  # (N, K, D)


@torch.no_grad()
def searched(value: GoalValue, rollouts: Rollouts, s: torch.Tensor, g: torch.Tensor,
             samples: int) -> torch.Tensor:
    """For each (s, g) row, the rollout end the value rates best among ``samples``: (R, D)."""
    candidates = rollouts(s, samples)  # (R, N, D)
    scores = value(candidates, g[:, None].expand_as(candidates))  # (R, N)
    return candidates[torch.arange(len(s)), scores.argmax(1)]  # (R, D)


def fit_value(latents: torch.Tensor, lengths: Sequence[int], config: ValueConfig,
              rollouts: Rollouts | None = None) -> tuple[GoalValue, list[float]]:
    """Train V on episodes' target latents (N, D), concatenated in order with ``lengths``;
    ``rollouts`` (needed with ``config.conservative`` > 0) is the world model's imagination.
    Returns the value network (eval mode) and the loss every 10% of the steps."""
    if len(latents) != sum(lengths):
        raise ActJepaError(f"value training: {len(latents)} latents for episodes of "
                           f"{sum(lengths)} steps in total")
    if config.conservative > 0 and rollouts is None:
        raise ActJepaError("value training: value.conservative > 0 needs the world model's "
                           "rollouts (rollouts=...)")
    random_pool = config.conservative > 0 and config.imagined == "random"
    pool = (imagined_pool(latents, rollouts, config.imagined_per_state)
            if random_pool else None)  # (N, K, D)
    sampler = seeded_sampler(lengths, config)
    pick = torch.Generator().manual_seed(config.seed)
    exploited = None  # search: (states, goals, picked latents) of the last refresh
    value = GoalValue(latents.shape[1], config.hidden, latents, config.heads, config.pessimism)
    target = copy.deepcopy(value).requires_grad_(False)
    optimizer = torch.optim.Adam(value.parameters(), lr=config.lr)
    floor = -1.0 / (1.0 - config.discount)
    losses, report_every = [], max(1, config.steps // 10)
    for step in range(config.steps):
        b = sampler.sample(config.batch_size)
        s, s_next, g = latents[b.rows], latents[b.next_rows], latents[b.goals]  # (B, D) each
        reward = b.reached.float() - 1.0  # (B,) 0 at the goal, -1 per step before it
        with torch.no_grad():
            # each head bootstraps from its own target: their spread stays an uncertainty
            bootstrap = (reward + config.discount * (~b.reached) * target.each(s_next, g)
                         ).clamp(floor, 0.0)  # (E, B)
            advantage = bootstrap - target.each(s, g)
        values = value.each(s, g)  # (E, B)
        loss = expectile_loss(bootstrap - values, advantage, config.expectile)
        if config.conservative > 0:
            if pool is not None:  # random: one of each batch state's precomputed rollouts
                k = torch.randint(pool.shape[1], (len(b.rows),), generator=pick)  # (B,)
                recorded, g_i, imagined = values.detach(), g, pool[b.rows, k]  # (E, B), (B, D) x2
            else:  # search: the picks are refreshed every search_every steps, then reused
                if step % config.search_every == 0:
                    a = sampler.sample(config.search_rows)
                    s_a, g_a = latents[a.rows], latents[a.goals]  # (R, D) each
                    exploited = (s_a, g_a, searched(value, rollouts, s_a, g_a,
                                                    config.search_samples))
                s_a, g_i, imagined = exploited
                with torch.no_grad():
                    recorded = value.each(s_a, g_i)  # (E, R)
            # a hinge, not COMBO's linear gap: an imagined latent is pushed down only while it is
            # valued above the recorded state it came from, so nothing runs off to -infinity
            excess = value.each(imagined, g_i) - recorded  # (E, B) or (E, R)
            loss = loss + config.conservative * torch.relu(excess).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for p_target, p in zip(target.parameters(), value.parameters()):
                p_target.lerp_(p, config.target_tau)
        if (step + 1) % report_every == 0:
            losses.append(float(loss.detach()))
    return value.eval().requires_grad_(False), losses
