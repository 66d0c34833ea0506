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
change, so an online-encoded goal would rank sequences by the encoders' disagreement instead of
by progress. The live observation goes through the online
encoder, as in training. Without EMA (the ablation) both are the online encoder.

The world model decides whether this works. In expert-only demos the action is a function of the
state, so the predictor can learn to ignore it: train MPC's world model on demos with exploration
and with rollout_steps ~ the horizon (what each choice gives: docs/results/mpc.md).

Learned planning aids (TD-MPC2's recipe, planning/value.py and planning/prior.py), both goal-
conditioned so goals stay a run-time input: ``cost: value`` scores a sequence by a value V(s, g)
learned by temporal differences on the demos and play data (-V at the horizon's end: the steps
still to go), and ``prior.mode: proposal`` starts each search at the rollout of a goal-conditioned
BC prior instead of the shifted last plan (``direct``: execute the prior, no search).

An MPC policy file is the world model plus ``MPCConfig`` (plus, for ``goal: tracking``, the
demos' latents, and the value and prior networks when used). Goals are per episode and therefore
not stored: call ``set_goal(obs)`` / ``set_subgoals([obs, ...])`` (or the ``_latent`` forms)
before acting.
"""
from __future__ import annotations

from collections import deque
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
from actjepa_core.planning.planners import PLANNERS, Planner, PlannerConfig, snap
from actjepa_core.planning.prior import GoalPrior, PriorConfig, fit_prior, propose
from actjepa_core.planning.value import GoalValue, ValueConfig, fit_value
from actjepa_core.policies.base import Policy, episode_list
from actjepa_core.policies.world import FrozenWorld

COSTS = ("terminal", "sum", "value")
GUARD_HISTORY = 10000  # guarded ticks kept for statistics: a 50-episode cell of 150 ticks fits
GOALS = ("final", "subgoals", "tracking")


@dataclass
class TrackingConfig:
    demos_near_goal: int = 0  # > 0: track only the demos whose last latent is nearest the goal
    lookahead: int = 1  # the first target is this many demo steps past the nearest one


@dataclass
class MPCConfig:
    """Protocol 3 settings; the defaults were chosen by measurement (docs/results/mpc.md).
    Where goals come from is the caller's business (`actjepa eval --goal`, the node's goal
    topics), not the policy's."""

    horizon: int = 5  # H: predicted steps per candidate sequence
    cost: str = "terminal"  # terminal (last step's latent distance) | sum (every step) | value
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
    value: ValueConfig = field(default_factory=ValueConfig)  # cost: value
    prior: PriorConfig = field(default_factory=PriorConfig)

    @property
    def learns(self) -> bool:
        """Whether build() trains networks on the demonstrations (value cost or prior)."""
        return self.cost == "value" or self.prior.mode != "none"

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
        self.value.validate(where)
        self.prior.validate(where)
        self.planner_config().validate(where)
        return self


class MPCPolicy(Policy):
    policy_type = "mpc"
    config_class = MPCConfig
    needs_demos = False  # except with goal: tracking, cost: value or a prior
    needs_goal = True
    dropped_config_keys = ("goal_source",)  # files before `actjepa eval --goal` stored it here

    def __init__(self, world: FrozenWorld, config: MPCConfig | None = None,
                 demo_online: torch.Tensor | None = None,
                 demo_target: torch.Tensor | None = None,
                 demo_lengths: torch.Tensor | None = None,
                 value_state: dict[str, torch.Tensor] | None = None,
                 prior_state: dict[str, torch.Tensor] | None = None):
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
        v = self.config.value
        self.value = self._learned(GoalValue(self.latent_dim, v.hidden, None, v.heads,
                                             v.pessimism),
                                   value_state, self.config.cost == "value", "value")
        self.prior = self._learned(GoalPrior(self.latent_dim, self.action_dim,
                                             self.config.prior.hidden),
                                   prior_state, self.config.prior.mode != "none", "prior")
        self.live_target: torch.Tensor | None = None  # (1, D) the last observation, target enc.
        self.goal: torch.Tensor | None = None  # (1, D)
        self.subgoals: torch.Tensor | None = None  # (M, D)
        self.scheme: GoalScheme | None = None
        self.last_targets: Targets | None = None
        self.kept_prior = False  # prior.guard: whether the last tick executed the prior's action
        # prior.guard: the prior's plan cost minus the plan's, per tick (the plan ran where it is
        # >= margin); bounded, since a node runs for hours
        self.guard_gains: deque[float] = deque(maxlen=GUARD_HISTORY)
        self.reset()

    def _learned(self, module: torch.nn.Module, state: dict | None, used: bool,
                 what: str) -> torch.nn.Module | None:
        if not used:
            return None
        if state is None:
            raise ActJepaError(f"mpc {what}: expected trained weights; build the policy with "
                               "`actjepa train-policy mpc --data DEMOS`")
        module.load_state_dict(state)
        return module.to(self.device).eval().requires_grad_(False)

    @classmethod
    def build(cls, world: FrozenWorld, demos: EpisodeSet | Sequence[Episode] | None = None,
              config: MPCConfig | None = None,
              play: Sequence[Episode] = (),
              learned: dict[str, dict] | None = None) -> "MPCPolicy":
        """With ``goal: tracking`` the demos' latents are encoded once (online encoder for
        matching, target encoder for the targets) and stored in the policy file. With ``cost:
        value`` the value is trained on the demos plus ``play`` (episodes off the expert's path:
        they teach what else is reachable); a prior is trained on the demos alone. ``learned``
        (``value_state`` / ``prior_state``) supplies weights already trained, which are used
        instead (a benchmark shares them across settings)."""
        config = (config or MPCConfig()).validate()
        parts: dict[str, Any] = dict(learned or {})
        train_value = config.cost == "value" and "value_state" not in parts
        train_prior = config.prior.mode != "none" and "prior_state" not in parts
        if config.goal != "tracking" and not (train_value or train_prior):
            return cls(world, config, **parts)
        eps = episode_list(demos)
        target = world.encode_episodes(eps, target=True)  # (N, D)
        if config.goal == "tracking":
            parts.update(demo_online=world.encode_episodes(eps), demo_target=target,
                         demo_lengths=torch.tensor([ep.num_steps for ep in eps]))
        if train_value:
            parts["value_state"] = learn_value(world, eps, play, config.value, target,
                                               config.horizon)
        if train_prior:
            parts["prior_state"] = learn_prior(world, eps, config.prior, target)
        return cls(world, config, **parts)

    def summary(self) -> str:
        c = self.config
        if c.prior.mode == "direct":
            return f"mpc policy: goal-conditioned prior, no search, {c.goal} goal"
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
        if c.prior.mode != "none":
            extras.append("search from a goal-conditioned prior")
        if c.prior.guard:
            extras.append(f"the prior's action unless the plan beats its plan by "
                          f"{c.prior.margin:g}")
        return (f"mpc policy: {c.planner}, horizon {c.horizon}, {s.samples} samples x "
                f"{s.iterations} iterations, {c.goal} goal, {c.cost} cost"
                + "".join(f", {e}" for e in extras))

    def parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        if self.demos is not None:
            online, target, lengths = self.demos
            parts.update(demo_online=online.cpu(), demo_target=target.cpu(),
                         demo_lengths=lengths)
        for name, module in (("value_state", self.value), ("prior_state", self.prior)):
            if module is not None:
                parts[name] = {k: v.cpu() for k, v in module.state_dict().items()}
        return parts

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
        """The cost of the plan chosen at the last tick (nan before the first, and always with
        ``prior.mode: direct``, which does not search)."""
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
    def encode(self, obs: Mapping[str, np.ndarray]) -> torch.Tensor:
        """The online latent (what the predictor starts from), keeping the target encoder's
        latent of the same input for the prior (which works in the target space)."""
        x = self.model_input(obs)
        self.live_target = self.model.encode_target(x) if self.prior is not None else None
        return self.model.encode(x)

    @torch.no_grad()
    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        c = self.config
        self.last_targets = self.goal_scheme().targets(latent, c.horizon)
        goal = self.last_targets.latents[-1:]  # (1, D) where the horizon should end
        if self.prior is not None:
            start = self.live_target if self.live_target is not None else latent
            self.live_target = None  # used once: act_latent may be called without encode
            if c.prior.mode == "direct":
                return snap(self.prior(start, goal)[0], c.binary_dims)  # (A,)
            proposal = propose(self.prior, self.model.predict, latent, start, goal, c.horizon)
            cost = self.cost_fn(latent, self.last_targets)
            self.planner.plan(cost, proposal)
            if c.prior.guard:
                return self.guarded_action(cost, proposal)
        else:
            self.planner.plan(self.cost_fn(latent, self.last_targets))
        return self.planner.first_action()  # (A,)

    def guarded_action(self, cost: cem.CostFn, proposal: torch.Tensor) -> torch.Tensor:
        """The plan's first action if the cost ranks the plan below the prior's ``proposal``
        (H, A) by more than ``prior.margin``, else the proposal's (the prior's own action)."""
        dims = self.config.binary_dims
        both = snap(torch.stack([self.planner.last.mean, proposal]), dims)  # (2, H, A)
        planned, prior = cost(both).tolist()
        gain = prior - planned
        self.kept_prior = gain < self.config.prior.margin
        self.guard_gains.append(gain)
        return both[1 if self.kept_prior else 0, 0]  # (A,)

    def cost_fn(self, latent: torch.Tensor, targets: Targets) -> cem.CostFn:
        """Cost of sequences (N, H, A) from ``latent`` (1, D): weighted latent distance of the
        predicted latents to the targets, or (``cost: value``) minus the value of the last
        predicted latent for the last target."""
        normalise = self.model.normalise_latents

        def cost(actions: torch.Tensor) -> torch.Tensor:
            predicted = self.model.rollout(latent.expand(actions.shape[0], -1), actions)
            if self.value is not None:
                return -self.value(predicted[:, -1], targets.latents[-1])  # (N,)
            return sequence_cost(predicted, targets, normalise)  # (N,)

        return cost


def learn_value(world: FrozenWorld, demos: Sequence[Episode], play: Sequence[Episode],
                config: ValueConfig, demo_latents: torch.Tensor | None = None,
                horizon: int = 5) -> dict[str, torch.Tensor]:
    """The goal value's weights, trained on the demos' and play episodes' target latents
    (``demo_latents``: the demos' already encoded, (N, D)); with ``value.conservative`` its
    imagined latents are the world model's ``horizon``-step rollouts of uniform random actions,
    the predictions the planner's search scores."""
    play = list(play)
    parts = [world.encode_episodes(demos, target=True) if demo_latents is None
             else demo_latents]
    if play:
        parts.append(world.encode_episodes(play, target=True))
    lengths = [ep.num_steps for ep in [*demos, *play]]
    rollouts = random_rollouts(world, horizon, config.seed) if config.conservative > 0 else None
    value, _ = fit_value(torch.cat(parts).cpu(), lengths, config, rollouts)
    return value.state_dict()


def random_rollouts(world: FrozenWorld, horizon: int, seed: int):
    """(latents (B, D), n) -> where n sequences of ``horizon`` uniform random actions in the
    planners' normalised box take each latent: (B, n, D)."""
    generator = torch.Generator(device=world.device).manual_seed(seed)

    @torch.no_grad()
    def rollouts(latents: torch.Tensor, n: int) -> torch.Tensor:
        s = latents.to(world.device).repeat_interleave(n, dim=0)  # (B * n, D)
        unit = torch.rand((len(s), horizon, world.action_dim), generator=generator,
                          device=world.device)  # (B * n, H, A) in [0, 1]
        actions = cem.ACTION_LOW + (cem.ACTION_HIGH - cem.ACTION_LOW) * unit  # the search's box
        ends = world.model.rollout(s, actions)[:, -1]  # (B * n, D)
        return ends.view(len(latents), n, -1).cpu()  # (B, n, D)

    return rollouts


def learn_prior(world: FrozenWorld, demos: Sequence[Episode], config: PriorConfig,
                demo_latents: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The goal-conditioned prior's weights, trained on the demos alone."""
    latents = (world.encode_episodes(demos, target=True) if demo_latents is None
               else demo_latents)
    actions = world.processor.episode_actions(demos)  # (N, A) normalised
    prior, _ = fit_prior(latents.cpu(), actions.cpu(), [ep.num_steps for ep in demos], config)
    return prior.state_dict()
