"""Latent model-predictive control (the paper's §8, Protocol 3): CEM over action sequences, rolled
out by the ACT-JEPA predictor toward a goal latent, receding horizon with warm start.

Each tick: encode the live observation to s (1, D); CEM samples N action sequences (N, H, A); the
predictor rolls all of them out in one batched forward per horizon step (N, H, D); the cost is the
latent distance of the predicted terminal latent (or of every predicted latent, summed) to the goal
latent s_g; the first action of the refitted plan is executed and the rest of the plan, shifted by
one step, seeds the next tick's search.

The goal is encoded with the TARGET (EMA) encoder: the predictor was trained to output target
latents, and online and target latents of one observation differ by far more than one step's
change (measured on reach-v3: ~7 vs ~2 squared L2), so an online-encoded goal would rank sequences
by the encoders' disagreement instead of by progress. The live observation goes through the online
encoder, as in training. Without EMA (the ablation) both are the online encoder.

The world model decides whether this works. In expert-only demos the action is a function of the
state, so the predictor can learn to ignore it. Measured MPC success on reach-v3 (20 episodes, the
default MPCConfig): expert demos, 1-step training 4/20; expert demos, ``loss.rollout_steps=5`` 7/20;
demos where half the ticks take a random action, 1-step 2/20, 5-step 16/20; random policy 0/20.
So: train MPC's world model on demos with exploration and with rollout_steps ~ the horizon.

No training: an MPC policy file is the world model plus ``MPCConfig``. The goal is per episode
and therefore not stored: call ``set_goal(obs)`` (or ``set_goal_latent``) before acting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.models.world_model import latent_distance
from actjepa_core.planning import cem
from actjepa_core.policies.base import Policy
from actjepa_core.policies.world import FrozenWorld

COSTS = ("terminal", "sum")


@dataclass
class MPCConfig:
    """Protocol 3 settings; the defaults were measured on reach-v3 (config/policy_mpc.yaml).
    Where goals come from is the caller's business (`actjepa eval --goal`, the node's goal
    topics), not the policy's."""

    horizon: int = 5  # H: predicted steps per candidate sequence
    cost: str = "terminal"  # terminal: distance of the last predicted latent | sum: over all H
    seed: int = 0  # CEM's generator is re-seeded with this at every reset(): episodes replay
    cem: cem.CEMConfig = field(default_factory=cem.CEMConfig)

    def validate(self, where: str = "mpc config") -> "MPCConfig":
        if self.horizon < 1:
            raise ActJepaError(f"{where}: horizon must be >= 1, got {self.horizon}")
        check_choice(where, "cost", self.cost, COSTS)
        self.cem.validate(f"{where}: cem")
        return self


class MPCPolicy(Policy):
    policy_type = "mpc"
    config_class = MPCConfig
    needs_demos = False
    needs_goal = True
    dropped_config_keys = ("goal_source",)  # files before `actjepa eval --goal` stored it here

    def __init__(self, world: FrozenWorld, config: MPCConfig | None = None):
        super().__init__(world, config or MPCConfig())
        self.latent_dim = world.latent_dim  # D
        self.generator = torch.Generator(device=self.device)
        self.goal: torch.Tensor | None = None  # (1, D)
        self.last_plan: cem.Plan | None = None
        self.reset()

    @classmethod
    def build(cls, world: FrozenWorld, demos: EpisodeSet | Sequence[Episode] | None = None,
              config: MPCConfig | None = None) -> "MPCPolicy":
        """Nothing to learn: the world model and the settings (demos are not used)."""
        return cls(world, config)

    def summary(self) -> str:
        c = self.config
        return (f"mpc policy: horizon {c.horizon}, {c.cem.samples} samples x {c.cem.iterations} "
                f"iterations, {c.cost} cost")

    # ---- goal ------------------------------------------------------------------------------
    def set_goal(self, obs: Mapping[str, np.ndarray]) -> None:
        """Encode a goal observation (raw, like act()'s input; never noised) as the target."""
        self.goal = self.world.encode_goal(obs)  # (1, D)

    def set_goal_latent(self, latent: torch.Tensor) -> None:
        """Use an already encoded goal, (D,) or (1, D), from the target encoder
        (``model.encode_target``) like set_goal's."""
        latent = torch.as_tensor(latent, dtype=torch.float32, device=self.device).reshape(1, -1)
        if latent.shape[1] != self.latent_dim:
            raise ActJepaError(f"goal latent has {latent.shape[1]} values; expected "
                               f"{self.latent_dim} (D)")
        if not torch.isfinite(latent).all():
            raise ActJepaError("goal latent contains NaN or Inf; expected finite values")
        self.goal = latent

    # ---- control ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop the warm start and replay the same random stream: an episode depends only on its
        observations (the goal is kept: it is set per episode by the caller)."""
        self.last_plan = None
        self.generator.manual_seed(self.config.seed)

    @torch.no_grad()
    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        if self.goal is None:
            raise ActJepaError("MPC policy has no goal; expected set_goal(obs) or "
                               "set_goal_latent(latent) before act()")
        init = (None if self.last_plan is None
                else cem.warm_start(self.last_plan.mean, self.config.cem.warm_fill))
        self.last_plan = cem.plan(self.cost_fn(latent), self.config.horizon, self.action_dim,
                                  self.config.cem, self.generator, init)
        return self.last_plan.mean[0]  # (A,)

    def cost_fn(self, latent: torch.Tensor) -> cem.CostFn:
        """Cost of sequences (N, H, A) from ``latent`` (1, D): latent distance to the goal."""
        goal, terminal = self.goal, self.config.cost == "terminal"
        normalise = self.model.normalise_latents

        def cost(actions: torch.Tensor) -> torch.Tensor:
            s = latent.expand(actions.shape[0], -1)  # (N, D)
            predicted = self.model.rollout(s, actions)  # (N, H, D)
            if terminal:
                return latent_distance(predicted[:, -1], goal, normalise)  # (N,)
            return latent_distance(predicted, goal[:, None], normalise).sum(1)  # (N,)

        return cost
