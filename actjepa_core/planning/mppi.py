"""MPPI (model-predictive path integral, Williams et al. 2017; TD-MPC2's planner): sample
sequences around the current plan, weight every sample by exp(-cost / T), refit mean and std to
the weighted samples, repeat.

The temperature is scale-free: costs are divided by their spread in the population before the
softmax, so one ``temperature`` works whatever the scale of the latent distances (which differs
by model, task and goal).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.planning.cem import (
    WARM_FILLS,
    CostFn,
    Plan,
    sample,
    search_start,
)

COST_SPREAD_FLOOR = 1e-8


@dataclass
class MPPIConfig:
    samples: int = 256  # N per iteration
    iterations: int = 3
    init_std: float = 0.5  # normalised action units
    min_std: float = 0.05
    temperature: float = 0.1  # in units of the population's cost std: lower = greedier
    warm_fill: str = "last"

    def validate(self, where: str) -> None:
        if self.samples < 2 or self.iterations < 1:
            raise ActJepaError(f"{where}: samples must be >= 2 and iterations >= 1, got "
                               f"{self.samples}/{self.iterations}")
        if self.init_std <= 0 or not 0 <= self.min_std <= self.init_std:
            raise ActJepaError(f"{where}: expected 0 <= min_std <= init_std and init_std > 0")
        if self.temperature <= 0:
            raise ActJepaError(f"{where}: temperature must be > 0, got {self.temperature}")
        check_choice(where, "warm_fill", self.warm_fill, WARM_FILLS)


def plan(cost: CostFn, horizon: int, action_dim: int, config: MPPIConfig,
         generator: torch.Generator, init_mean: torch.Tensor | None = None) -> Plan:
    mean, std, best, best_cost = search_start(horizon, action_dim, config.init_std, generator,
                                              init_mean)
    for _ in range(config.iterations):
        actions = sample(mean, std, config.samples, generator)  # (N, H, A)
        actions[0] = mean  # the current plan competes too
        costs = cost(actions)  # (N,)
        i = torch.argmin(costs)
        better = costs[i] < best_cost
        best = torch.where(better, actions[i], best)
        best_cost = torch.minimum(best_cost, costs[i])
        scale = costs.std().clamp_min(COST_SPREAD_FLOOR) * config.temperature
        weights = torch.softmax(-(costs - costs[i]) / scale, dim=0)[:, None, None]  # (N, 1, 1)
        mean = (weights * actions).sum(0)  # (H, A)
        std = (weights * (actions - mean).pow(2)).sum(0).sqrt().clamp_min(config.min_std)
    return Plan(mean, std, best, best_cost, config.iterations)
