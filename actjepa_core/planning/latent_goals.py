"""Goals in latent space that carry a task's structure, and the costs a planner minimises.

A goal scheme answers one question per control tick: given the current latent s_t, which target
latent should each of the H predicted steps approach, and with what weight? Three schemes:

- ``FinalGoal``: one goal latent z_g (Protocol 3): terminal cost (last step only) or summed over
  the horizon;
- ``Subgoals``: a list of goal latents visited in order (V-JEPA 2-AC's image subgoals); the active
  one advances on progress: when s_t is nearer the next subgoal than the active one, or the
  squared latent distance to the active one fell below ``switch_ratio`` of what it was when it
  became active; or, with ``switch_after`` > 0, after that many ticks on it whatever the progress
  (V-JEPA 2-AC switches at fixed times), so a subgoal the planner cannot quite reach does not hold
  the arm there;
- ``Tracking``: a moving target from demonstrations: the demo step whose latent is nearest s_t
  (optionally among the demos that end nearest a goal latent), and that demo's next H latents as
  per-step targets, i.e. trajectory tracking in latent space.

Targets live in the target (EMA) encoder's space, where the predictor's outputs live; matching the
live latent to demo steps compares online-encoder latents with online-encoder latents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from actjepa_core.errors import ActJepaError
from actjepa_core.models.world_model import latent_distance


@dataclass
class Targets:
    latents: torch.Tensor  # (H, D) target latent for each predicted step
    weights: torch.Tensor  # (H,) weight of each step's distance


class GoalScheme(Protocol):
    def targets(self, latent: torch.Tensor, horizon: int) -> Targets: ...

    def reset(self) -> None: ...


def sequence_cost(predicted: torch.Tensor, targets: Targets, normalise: bool) -> torch.Tensor:
    """(N, H, D) predicted latents -> (N,) weighted sum of squared distances to the targets."""
    distance = latent_distance(predicted, targets.latents[None], normalise)  # (N, H)
    return (distance * targets.weights).sum(1)


def horizon_weights(horizon: int, terminal: bool, device: torch.device) -> torch.Tensor:
    weights = torch.zeros(horizon, device=device) if terminal else torch.ones(horizon,
                                                                             device=device)
    weights[-1] = 1.0
    return weights


class FinalGoal:
    def __init__(self, goal: torch.Tensor, terminal: bool = True):
        self.goal = goal.reshape(1, -1)  # (1, D)
        self.terminal = terminal

    def reset(self) -> None:
        """Stateless."""

    def targets(self, latent: torch.Tensor, horizon: int) -> Targets:
        return Targets(self.goal.expand(horizon, -1),
                       horizon_weights(horizon, self.terminal, self.goal.device))


class Subgoals:
    def __init__(self, goals: torch.Tensor, switch_ratio: float = 0.3, terminal: bool = False,
                 switch_after: int = 0):
        if goals.ndim != 2 or len(goals) < 1:
            raise ActJepaError(f"subgoals must be (M, D) with M >= 1, got {tuple(goals.shape)}")
        self.goals, self.switch_ratio, self.terminal = goals, switch_ratio, terminal
        self.switch_after = switch_after
        self.reset()

    def reset(self) -> None:
        self.index = 0
        self.ticks = 0  # update() calls on the active subgoal, this one included
        self.start_distance: float | None = None

    def update(self, latent: torch.Tensor) -> int:
        """Advance past every subgoal already reached (or held for ``switch_after`` ticks);
        returns the active index. Called once per control tick."""
        self.ticks += 1
        while self.index < len(self.goals) - 1:
            here = float(latent_distance(latent[0], self.goals[self.index]))
            if self.start_distance is None:
                self.start_distance = here
            nearer_next = float(latent_distance(latent[0], self.goals[self.index + 1])) < here
            timed_out = 0 < self.switch_after < self.ticks
            if not (nearer_next or timed_out or here < self.switch_ratio * self.start_distance):
                break
            self.index += 1
            self.ticks, self.start_distance = 1, None
        return self.index

    def targets(self, latent: torch.Tensor, horizon: int) -> Targets:
        goal = self.goals[self.update(latent)]
        return Targets(goal.expand(horizon, -1),
                       horizon_weights(horizon, self.terminal, goal.device))


class Tracking:
    """``online``: list of (T_i, D) online-encoder latents of each demo (for matching);
    ``target``: the same demos through the target encoder (the targets)."""

    def __init__(self, online: list[torch.Tensor], target: list[torch.Tensor],
                 goal: torch.Tensor | None = None, demos_near_goal: int = 0,
                 lookahead: int = 1):
        if not online or len(online) != len(target):
            raise ActJepaError("tracking needs at least one demo's latents (online and target)")
        keep = range(len(online))
        if goal is not None and demos_near_goal:
            ends = torch.stack([t[-1] for t in target])  # (M, D)
            order = latent_distance(ends, goal.reshape(1, -1)).argsort()
            keep = sorted(order[:demos_near_goal].tolist())
        self.online = torch.cat([online[i] for i in keep])  # (T, D)
        self.target = torch.cat([target[i] for i in keep])  # (T, D)
        lengths = torch.tensor([len(online[i]) for i in keep])
        ends = torch.cumsum(lengths, 0) - 1
        self.end_of = torch.repeat_interleave(ends, lengths).to(self.online.device)  # (T,)
        self.lookahead = lookahead

    def reset(self) -> None:
        """Stateless: the nearest demo step is found afresh every tick."""

    def nearest(self, latent: torch.Tensor) -> int:
        return int(latent_distance(self.online, latent.reshape(1, -1)).argmin())

    def targets(self, latent: torch.Tensor, horizon: int) -> Targets:
        row = self.nearest(latent)
        steps = torch.arange(self.lookahead, self.lookahead + horizon, device=self.online.device)
        index = torch.minimum(row + steps, self.end_of[row])  # clamped to that demo's end
        return Targets(self.target[index], torch.ones(horizon, device=self.online.device))
