"""Latent model-predictive control (the paper's §8, Protocol 3): a sampling planner (CEM, MPPI or
iCEM, planning/) over action sequences, rolled out by the ACT-JEPA predictor toward latent goals,
receding horizon with warm start.

Each tick: encode the live observation to s (1, D); the goal scheme (planning/latent_goals.py)
names a target latent and weight for each of the H steps (a final goal, the active subgoal, or the
nearest demo's next H latents); the planner samples N sequences (N, H, A), the predictor rolls all
of them out in one batched forward per horizon step (N, H, D), the cost is the weighted latent
distance to the targets; the first action of the refitted plan is executed and the plan, shifted
by one step, seeds the next tick's search.

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

No training: an MPC policy file is the world model plus ``MPCConfig`` (plus, for ``goal:
tracking``, the demos' latents). Goals are per episode and therefore not stored: call
``set_goal(obs)`` / ``set_subgoals([obs, ...])`` (or the ``_latent`` forms) before acting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.planning import cem, icem, mppi
from actjepa_core.planning.latent_goals import (
    FinalGoal,
    GoalScheme,
    Subgoals,
    Targets,
    Tracking,
    sequence_cost,
)
from actjepa_core.planning.planners import PLANNERS, Planner, PlannerConfig
from actjepa_core.policies.base import Policy, episode_list
from actjepa_core.policies.world import FrozenWorld

COSTS = ("terminal", "sum")
GOALS = ("final", "subgoals", "tracking")


@dataclass
class TrackingConfig:
    demos_near_goal: int = 0  # > 0: track only the demos whose last latent is nearest the goal
    lookahead: int = 1  # the first target is this many demo steps past the nearest one


@dataclass
class MPCConfig:
    """Protocol 3 settings; the defaults were measured on reach-v3 (config/policy_mpc.yaml).
    Where goals come from is the caller's business (`actjepa eval --goal`, the node's goal
    topics), not the policy's."""

    horizon: int = 5  # H: predicted steps per candidate sequence
    cost: str = "terminal"  # final goal / subgoals: terminal (last step) | sum (every step)
    seed: int = 0  # the planner's generator is re-seeded with this at every reset()
    planner: str = "cem"  # cem | mppi | icem
    goal: str = "final"  # final | subgoals | tracking (moving target from the demos)
    binary_dims: list[int] = field(default_factory=list)  # planned as -1/+1 (gripper: [3])
    switch_ratio: float = 0.3  # subgoals: advance below this share of the start sq. distance
    switch_after: int = 0  # subgoals: advance after this many ticks on one anyway; 0: never
    cem: cem.CEMConfig = field(default_factory=cem.CEMConfig)
    mppi: mppi.MPPIConfig = field(default_factory=mppi.MPPIConfig)
    icem: icem.ICEMConfig = field(default_factory=icem.ICEMConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def planner_config(self) -> PlannerConfig:
        return PlannerConfig(self.planner, self.horizon, list(self.binary_dims), self.cem,
                             self.mppi, self.icem)

    def validate(self, where: str = "mpc config") -> "MPCConfig":
        check_choice(where, "cost", self.cost, COSTS)
        check_choice(where, "planner", self.planner, PLANNERS)
        check_choice(where, "goal", self.goal, GOALS)
        if self.switch_after < 0:
            raise ActJepaError(f"{where}: switch_after must be >= 0, got {self.switch_after}")
        if not 0 < self.switch_ratio < 1:
            raise ActJepaError(f"{where}: switch_ratio must lie in (0, 1), got "
                               f"{self.switch_ratio}")
        if self.tracking.demos_near_goal < 0 or self.tracking.lookahead < 0:
            raise ActJepaError(f"{where}: tracking.demos_near_goal and lookahead must be >= 0")
        self.planner_config().validate(where)
        return self


class MPCPolicy(Policy):
    policy_type = "mpc"
    config_class = MPCConfig
    needs_demos = False  # except with goal: tracking
    needs_goal = True
    dropped_config_keys = ("goal_source",)  # files before `actjepa eval --goal` stored it here

    def __init__(self, world: FrozenWorld, config: MPCConfig | None = None,
                 demo_online: torch.Tensor | None = None,
                 demo_target: torch.Tensor | None = None,
                 demo_lengths: torch.Tensor | None = None):
        super().__init__(world, config or MPCConfig())
        if not getattr(self.model, "action_conditioned", False):
            raise ActJepaError("latent MPC needs an action-conditioned world model (objective "
                               f"act-jepa); this encoder was trained with objective "
                               f"{world.config.get('objective', 'act-jepa')!r}")
        self.latent_dim = world.latent_dim  # D
        self.generator = torch.Generator(device=self.device)
        self.planner = Planner(self.config.planner_config(), self.action_dim, self.generator)
        self.demos = None
        if self.config.goal == "tracking":
            if demo_online is None or demo_target is None or demo_lengths is None:
                raise ActJepaError("mpc goal 'tracking' needs demonstrations; expected "
                                   "`actjepa train-policy mpc --data DEMOS`")
            self.demos = (demo_online.to(self.device), demo_target.to(self.device),
                          demo_lengths.cpu())
        self.goal: torch.Tensor | None = None  # (1, D)
        self.subgoals: torch.Tensor | None = None  # (M, D)
        self.scheme: GoalScheme | None = None
        self.last_targets: Targets | None = None
        self.reset()

    @classmethod
    def build(cls, world: FrozenWorld, demos: EpisodeSet | Sequence[Episode] | None = None,
              config: MPCConfig | None = None) -> "MPCPolicy":
        """Nothing to learn; with ``goal: tracking`` the demos' latents are encoded once (online
        encoder for matching, target encoder for the targets) and stored in the policy file."""
        config = config or MPCConfig()
        if config.goal != "tracking":
            return cls(world, config)
        eps = episode_list(demos)
        lengths = torch.tensor([ep.num_steps for ep in eps])
        return cls(world, config, world.encode_episodes(eps),
                   world.encode_episodes(eps, target=True), lengths)

    def summary(self) -> str:
        c = self.config
        s = getattr(c, c.planner)
        extras = []
        if self.demos is not None:
            near = c.tracking.demos_near_goal
            extras.append(f"tracking {len(self.demos[2])} demos"
                          + (f" ({near} nearest the goal)" if near else ""))
        if c.goal == "subgoals" and c.switch_after:
            extras.append(f"switch after {c.switch_after} ticks")
        if c.binary_dims:
            extras.append(f"binary dims {list(c.binary_dims)}")
        return (f"mpc policy: {c.planner}, horizon {c.horizon}, {s.samples} samples x "
                f"{s.iterations} iterations, {c.goal} goal, {c.cost} cost"
                + "".join(f", {e}" for e in extras))

    def parts(self) -> dict[str, Any]:
        if self.demos is None:
            return {}
        online, target, lengths = self.demos
        return {"demo_online": online.cpu(), "demo_target": target.cpu(),
                "demo_lengths": lengths}

    # ---- goals -----------------------------------------------------------------------------
    def set_goal(self, obs: Mapping[str, np.ndarray]) -> None:
        """Encode a goal observation (raw, like act()'s input; never noised) as the target."""
        self.set_goal_latent(self.world.encode_goal(obs))

    def set_goal_latent(self, latent: torch.Tensor) -> None:
        """Use an already encoded goal, (D,) or (1, D), from the target encoder
        (``model.encode_target``) like set_goal's."""
        self.goal = self._check_latents(latent, "goal latent").reshape(1, -1)
        self.scheme = None

    def set_subgoals(self, observations: Sequence[Mapping[str, np.ndarray]]) -> None:
        """Goal observations to visit in order (the last is the final goal)."""
        if not observations:
            raise ActJepaError("subgoals: expected at least one goal observation")
        self.set_subgoal_latents(torch.cat([self.world.encode_goal(o) for o in observations]))

    def set_subgoal_latents(self, latents: torch.Tensor) -> None:
        self.subgoals = self._check_latents(latents, "subgoal latents").reshape(-1,
                                                                                self.latent_dim)
        self.goal = self.subgoals[-1:]
        self.scheme = None

    def _check_latents(self, latent: torch.Tensor, what: str) -> torch.Tensor:
        latent = torch.as_tensor(latent, dtype=torch.float32, device=self.device)
        if latent.shape[-1] != self.latent_dim:
            raise ActJepaError(f"{what} has {latent.shape[-1]} values per latent; expected "
                               f"{self.latent_dim} (D)")
        if not torch.isfinite(latent).all():
            raise ActJepaError(f"{what} contains NaN or Inf; expected finite values")
        return latent

    def goal_scheme(self) -> GoalScheme:
        """The scheme this episode plans with, made on first use after a goal change."""
        if self.scheme is None:
            c = self.config
            if c.goal == "tracking":
                online, target, lengths = self.demos
                self.scheme = Tracking(list(online.split(lengths.tolist())),
                                       list(target.split(lengths.tolist())), self.goal,
                                       c.tracking.demos_near_goal, c.tracking.lookahead)
            elif self.goal is None:
                raise ActJepaError("MPC policy has no goal; expected set_goal(obs) or "
                                   "set_goal_latent(latent) before act()")
            elif c.goal == "subgoals" and self.subgoals is not None:
                self.scheme = Subgoals(self.subgoals, c.switch_ratio, c.cost == "terminal",
                                       c.switch_after)
            else:
                self.scheme = FinalGoal(self.goal, c.cost == "terminal")
        return self.scheme

    @property
    def subgoal_index(self) -> int:
        """The active subgoal (0 without subgoals): published by the policy node."""
        return self.scheme.index if isinstance(self.scheme, Subgoals) else 0

    @property
    def planned_cost(self) -> float:
        """The cost of the plan chosen at the last tick (nan before the first)."""
        plan = self.planner.last
        return float(plan.best_cost) if plan is not None else float("nan")

    # ---- control ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop the warm start and replay the same random stream: an episode depends only on its
        observations (goals are kept: they are set per episode by the caller)."""
        self.planner.reset()
        self.generator.manual_seed(self.config.seed)
        if self.scheme is not None:
            self.scheme.reset()

    @torch.no_grad()
    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        self.last_targets = self.goal_scheme().targets(latent, self.config.horizon)
        self.planner.plan(self.cost_fn(latent, self.last_targets))
        return self.planner.first_action()  # (A,)

    def cost_fn(self, latent: torch.Tensor, targets: Targets) -> cem.CostFn:
        """Cost of sequences (N, H, A) from ``latent`` (1, D): weighted latent distance of the
        predicted latents to the targets."""
        normalise = self.model.normalise_latents

        def cost(actions: torch.Tensor) -> torch.Tensor:
            predicted = self.model.rollout(latent.expand(actions.shape[0], -1), actions)
            return sequence_cost(predicted, targets, normalise)  # (N,)

        return cost
