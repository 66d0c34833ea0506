"""One interface over the planners: ``Planner.plan(cost)`` runs CEM, MPPI or iCEM with the
receding-horizon warm start each needs, and snaps near-binary action dimensions (a gripper that is
either open or closed) to -1/+1 in what is scored and what is executed.

Every planner scores its whole population with one cost call per iteration: one batched
predictor pass per horizon step for all samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.planning import cem, icem, mppi

PLANNERS = ("cem", "mppi", "icem")


@dataclass
class PlannerConfig:
    name: str = "cem"  # cem | mppi | icem
    horizon: int = 5
    binary_dims: list[int] = field(default_factory=list)  # snapped to -1/+1 (e.g. gripper: [3])
    cem: cem.CEMConfig = field(default_factory=cem.CEMConfig)
    mppi: mppi.MPPIConfig = field(default_factory=mppi.MPPIConfig)
    icem: icem.ICEMConfig = field(default_factory=icem.ICEMConfig)

    def validate(self, where: str, action_dim: int | None = None) -> "PlannerConfig":
        check_choice(where, "planner.name", self.name, PLANNERS)
        if self.horizon < 1:
            raise ActJepaError(f"{where}: planner.horizon must be >= 1, got {self.horizon}")
        if action_dim is not None and any(not 0 <= d < action_dim for d in self.binary_dims):
            raise ActJepaError(f"{where}: planner.binary_dims {self.binary_dims} must index the "
                               f"{action_dim} action dims")
        getattr(self, self.name).validate(f"{where}: planner.{self.name}")
        return self


def snap(actions: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """(..., A) with ``dims`` set to -1/+1 by sign (0 -> +1)."""
    if not dims:
        return actions
    out = actions.clone()
    out[..., dims] = torch.where(actions[..., dims] >= 0, 1.0, -1.0)
    return out


class Planner:
    def __init__(self, config: PlannerConfig, action_dim: int, generator: torch.Generator):
        self.config, self.action_dim, self.generator = config, action_dim, generator
        self.last: cem.Plan | None = None

    def reset(self) -> None:
        self.last = None

    def plan(self, cost: cem.CostFn, proposal: torch.Tensor | None = None) -> cem.Plan:
        """``proposal`` (H, A): where the search starts (a policy prior's rollout) instead of
        the last plan shifted by one step."""
        c = self.config
        settings = getattr(c, c.name)
        scored = (lambda a: cost(snap(a, c.binary_dims))) if c.binary_dims else cost
        init = (None if self.last is None
                else cem.warm_start(self.last.mean, settings.warm_fill))
        if proposal is not None:
            init = proposal
        if c.name == "cem":
            result = cem.plan(scored, c.horizon, self.action_dim, settings, self.generator, init)
        elif c.name == "mppi":
            result = mppi.plan(scored, c.horizon, self.action_dim, settings, self.generator, init)
        else:
            elites = (None if self.last is None or self.last.elites is None
                      else icem.shift_elites(self.last.elites))
            result = icem.plan(scored, c.horizon, self.action_dim, settings, self.generator,
                               init, elites)
        self.last = result
        return result

    def first_action(self) -> torch.Tensor:
        """The step to execute: the refitted mean's first action, binary dims snapped."""
        return snap(self.last.mean[0], self.config.binary_dims)  # (A,)
