"""Batched cross-entropy method (CEM) over H-step action sequences in the normalised [-1, 1] box.

CEM keeps a diagonal Gaussian over (H, A) action sequences. Each iteration draws ``samples``
sequences, scores them all with ONE call of the cost function (so a learned model evaluates the
whole population in one batched forward), keeps the ``elites`` cheapest and refits mean and std to
them. The refit is smoothed with ``momentum`` (part of the old mean/std is kept), which stops the
distribution from collapsing onto a lucky sample of a noisy cost; ``temperature`` > 0 weights the
elites by exp(-cost / temperature) instead of uniformly. ``min_std`` keeps some exploration alive.

Receding-horizon control replans every tick: ``warm_start`` shifts the last plan by one step, so
the next search starts from where the previous one ended instead of from scratch.

Everything random goes through a caller-provided ``torch.Generator``: same generator state, same
plan.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from actjepa_core.errors import ActJepaError, check_choice

ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # the normalised action box every policy plans in
WARM_FILLS = ("zeros", "last")

CostFn = Callable[[torch.Tensor], torch.Tensor]
"""actions (N, H, A) in [-1, 1] -> cost (N,), lower is better."""


@dataclass
class CEMConfig:
    """Search settings; the MPC policy's defaults were measured on the simulated arm (mpc.py)."""

    samples: int = 128  # N: sequences scored per iteration
    elites: int = 16  # kept per iteration to refit the Gaussian
    iterations: int = 4
    init_std: float = 1.0  # std of a fresh (or warm-started) search, in normalised action units
    min_std: float = 0.05  # floor on the std after each refit
    momentum: float = 0.1  # share of the old mean/std kept at each refit (0: plain CEM)
    temperature: float = 0.0  # > 0: elites weighted by exp(-cost / temperature); 0: uniform
    warm_fill: str = "last"  # what enters the plan's last step after a shift: zeros | last

    def validate(self, where: str) -> None:
        if self.samples < 1 or self.iterations < 1:
            raise ActJepaError(f"{where}: samples and iterations must be >= 1, got "
                               f"{self.samples}/{self.iterations}")
        if not 1 <= self.elites <= self.samples:
            raise ActJepaError(f"{where}: elites must lie in [1, samples={self.samples}], got "
                               f"{self.elites}")
        if self.init_std <= 0 or self.min_std < 0 or self.min_std > self.init_std:
            raise ActJepaError(f"{where}: expected 0 <= min_std <= init_std and init_std > 0, got "
                               f"min_std={self.min_std}, init_std={self.init_std}")
        if not 0.0 <= self.momentum < 1.0:
            raise ActJepaError(f"{where}: momentum must lie in [0, 1), got {self.momentum}")
        if self.temperature < 0:
            raise ActJepaError(f"{where}: temperature must be >= 0, got {self.temperature}")
        check_choice(where, "warm_fill", self.warm_fill, WARM_FILLS)


@dataclass
class Plan:
    mean: torch.Tensor  # (H, A): the refitted mean, what a receding-horizon controller executes
    std: torch.Tensor  # (H, A)
    best: torch.Tensor  # (H, A): the cheapest sequence sampled in any iteration
    best_cost: torch.Tensor  # () its cost
    cost_calls: int  # calls of the cost function (one per iteration)
    elites: torch.Tensor | None = None  # (E, H, A) last iteration's elites (iCEM reuses them)


def warm_start(mean: torch.Tensor, fill: str = "zeros") -> torch.Tensor:
    """Shift a plan (H, A) one step earlier: step k+1 becomes step k; the freed last step is
    zeros (no motion) or a copy of the old last step."""
    check_choice("warm_start", "fill", fill, WARM_FILLS)
    tail = mean[-1:].clone() if fill == "last" else torch.zeros_like(mean[-1:])  # (1, A)
    return torch.cat([mean[1:], tail], dim=0)  # (H, A)


def search_start(horizon: int, action_dim: int, init_std: float, generator: torch.Generator,
                 init_mean: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every sampling planner's starting point: mean (H, A) (zeros, or the warm start clipped to
    the box), std (H, A), the best sequence so far (the mean) and its cost (inf, on the device:
    no host sync in the loop)."""
    device = generator.device
    shape = (horizon, action_dim)
    mean = (torch.zeros(shape, device=device) if init_mean is None
            else init_mean.to(device).clamp(ACTION_LOW, ACTION_HIGH))
    if tuple(mean.shape) != shape:
        raise ActJepaError(f"planner init_mean has shape {tuple(mean.shape)}; expected {shape}")
    std = torch.full(shape, init_std, device=device)
    return mean, std, mean.clone(), torch.full((), float("inf"), device=device)


def plan(cost: CostFn, horizon: int, action_dim: int, config: CEMConfig,
         generator: torch.Generator, init_mean: torch.Tensor | None = None) -> Plan:
    """Minimise ``cost`` over (H, A) sequences in [-1, 1]; ``init_mean`` (H, A) warm-starts."""
    mean, std, best, best_cost = search_start(horizon, action_dim, config.init_std, generator,
                                              init_mean)
    for _ in range(config.iterations):
        actions = sample(mean, std, config.samples, generator)  # (N, H, A)
        costs = cost(actions)
        if tuple(costs.shape) != (config.samples,):
            raise ActJepaError(f"CEM cost returned shape {tuple(costs.shape)}; expected "
                               f"({config.samples},), one cost per sampled sequence")
        top, idx = torch.topk(costs, config.elites, largest=False)  # (E,), (E,)
        elites = actions[idx]  # (E, H, A)
        better = top[0] < best_cost  # kept on the device: no host sync inside the loop
        best = torch.where(better, elites[0], best)
        best_cost = torch.minimum(best_cost, top[0])
        new_mean, new_std = refit(elites, top, config.temperature)
        mean = config.momentum * mean + (1.0 - config.momentum) * new_mean
        std = (config.momentum * std + (1.0 - config.momentum) * new_std).clamp_min(config.min_std)
    return Plan(mean, std, best, best_cost, config.iterations)


def sample(mean: torch.Tensor, std: torch.Tensor, n: int,
           generator: torch.Generator) -> torch.Tensor:
    """n sequences from N(mean, std^2), clipped to the action box: (H, A) -> (N, H, A)."""
    noise = torch.randn((n, *mean.shape), device=mean.device, generator=generator)  # (N, H, A)
    return (mean + std * noise).clamp(ACTION_LOW, ACTION_HIGH)


def refit(elites: torch.Tensor, costs: torch.Tensor,
          temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (H, A) of the elites (E, H, A), uniformly or softmax(-cost/T)-weighted."""
    if temperature > 0:
        weights = torch.softmax(-(costs - costs.min()) / temperature, dim=0)  # (E,)
    else:
        weights = torch.full_like(costs, 1.0 / len(costs))
    w = weights[:, None, None]  # (E, 1, 1)
    mean = (w * elites).sum(0)  # (H, A)
    std = (w * (elites - mean).pow(2)).sum(0).sqrt()  # (H, A)
    return mean, std
