"""iCEM (Pinneri et al. 2020): CEM made sample-efficient for real-time control.

- coloured noise: action sequences are drawn with a 1/f^beta power spectrum over the horizon
  (beta = 0 is CEM's white noise; beta ~ 2 gives smooth, low-frequency motions that reach further
  for the same number of samples);
- a shrinking population: iteration i draws samples * decay^-i sequences (at least ``elites``);
- elite reuse: a share of the previous iteration's elites joins each new population, and at a
  replan the previous plan's elites, shifted by one step, seed the first population;
- the best sequence found so far always competes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.planning.cem import (
    ACTION_HIGH,
    ACTION_LOW,
    WARM_FILLS,
    CostFn,
    Plan,
    refit,
    search_start,
)


@dataclass
class ICEMConfig:
    samples: int = 256  # first iteration's population
    elites: int = 16
    iterations: int = 3
    beta: float = 2.0  # noise colour: 0 white, 1 pink, 2 brown
    decay: float = 1.25  # population shrink factor per iteration
    keep_elites: float = 0.3  # share of elites carried into the next population
    init_std: float = 0.5
    min_std: float = 0.05
    momentum: float = 0.1
    warm_fill: str = "last"

    def validate(self, where: str) -> None:
        if self.samples < 1 or self.iterations < 1 or not 1 <= self.elites <= self.samples:
            raise ActJepaError(f"{where}: expected samples, iterations >= 1 and 1 <= elites <= "
                               f"samples, got {self.samples}/{self.iterations}/{self.elites}")
        if self.beta < 0 or self.decay < 1 or not 0 <= self.keep_elites <= 1:
            raise ActJepaError(f"{where}: expected beta >= 0, decay >= 1 and keep_elites in "
                               "[0, 1]")
        if self.init_std <= 0 or not 0 <= self.min_std <= self.init_std:
            raise ActJepaError(f"{where}: expected 0 <= min_std <= init_std and init_std > 0")
        if not 0 <= self.momentum < 1:
            raise ActJepaError(f"{where}: momentum must lie in [0, 1), got {self.momentum}")
        check_choice(where, "warm_fill", self.warm_fill, WARM_FILLS)


def coloured_noise(n: int, horizon: int, action_dim: int, beta: float,
                   generator: torch.Generator) -> torch.Tensor:
    """(n, H, A) unit-variance noise with power spectrum ~ 1/f^beta along the horizon."""
    device = generator.device
    if beta == 0 or horizon < 2:
        return torch.randn((n, horizon, action_dim), device=device, generator=generator)
    freqs = torch.fft.rfftfreq(horizon, device=device)  # (F,)
    freqs[0] = freqs[1]  # no infinite DC power
    amplitude = freqs.pow(-beta / 2.0)  # (F,)
    spectrum = torch.complex(torch.randn((n, action_dim, len(freqs)), device=device,
                                         generator=generator),
                             torch.randn((n, action_dim, len(freqs)), device=device,
                                         generator=generator)) * amplitude
    signal = torch.fft.irfft(spectrum, n=horizon)  # (n, A, H)
    # unit marginal variance per action dim (over samples and steps): per-sequence scaling would
    # remove the low-frequency drift that makes the colour worth having
    dims = (0, 2) if n > 1 else (2,)
    signal = signal / signal.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return signal.transpose(1, 2).contiguous()  # (n, H, A)


def population(mean: torch.Tensor, std: torch.Tensor, n: int, beta: float,
               generator: torch.Generator) -> torch.Tensor:
    noise = coloured_noise(n, *mean.shape, beta, generator)
    return (mean + std * noise).clamp(ACTION_LOW, ACTION_HIGH)  # (n, H, A)


def plan(cost: CostFn, horizon: int, action_dim: int, config: ICEMConfig,
         generator: torch.Generator, init_mean: torch.Tensor | None = None,
         init_elites: torch.Tensor | None = None) -> Plan:
    """``init_elites`` (E, H, A): the previous plan's elites, already shifted (warm start)."""
    mean, std, best, best_cost = search_start(horizon, action_dim, config.init_std, generator,
                                              init_mean)
    carried = init_elites
    elites = None
    for i in range(config.iterations):
        n = max(config.elites, int(config.samples * config.decay ** -i))
        actions = population(mean, std, n, config.beta, generator)
        extra = [best[None]]
        if carried is not None and len(carried):
            extra.append(carried[:max(1, int(config.keep_elites * len(carried)))])
        if i == config.iterations - 1:
            extra.append(mean[None])  # the refitted mean is what gets executed
        actions = torch.cat([actions, *extra])  # (n + extra, H, A)
        costs = cost(actions)
        k = min(config.elites, len(costs))
        top, idx = torch.topk(costs, k, largest=False)
        elites = actions[idx]  # (E, H, A)
        better = top[0] < best_cost
        best = torch.where(better, elites[0], best)
        best_cost = torch.minimum(best_cost, top[0])
        new_mean, new_std = refit(elites, top, 0.0)
        mean = config.momentum * mean + (1.0 - config.momentum) * new_mean
        std = (config.momentum * std + (1.0 - config.momentum) * new_std).clamp_min(config.min_std)
        carried = elites
    result = Plan(mean, std, best, best_cost, config.iterations)
    result.elites = elites  # reused, shifted, by the next replan
    return result


def shift_elites(elites: torch.Tensor) -> torch.Tensor:
    """(E, H, A) elites one step later: drop the executed step, repeat the last."""
    return torch.cat([elites[:, 1:], elites[:, -1:]], dim=1)
