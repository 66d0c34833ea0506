"""The CEM planner on costs with a known minimum (no model needed)."""
from __future__ import annotations

import pytest
import torch

from actjepa_core.errors import ActJepaError
from actjepa_core.planning import cem

H, A = 4, 3


def quadratic(target: torch.Tensor, calls: list[int] | None = None) -> cem.CostFn:
    """Squared distance of each sequence (N, H, A) to ``target`` (H, A); records batch sizes."""
    def cost(actions: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append(actions.shape[0])
        return (actions - target).pow(2).sum((1, 2))  # (N,)
    return cost


def target_in_box() -> torch.Tensor:
    return torch.linspace(-0.8, 0.8, H * A).reshape(H, A)


def test_cem_finds_the_minimum_of_a_quadratic():
    config = cem.CEMConfig(samples=256, elites=32, iterations=8)
    result = cem.plan(quadratic(target_in_box()), H, A, config, torch.Generator().manual_seed(0))
    assert torch.allclose(result.mean, target_in_box(), atol=0.05)
    assert result.best_cost < 0.05


def test_cem_stays_in_the_action_box_when_the_minimum_lies_outside():
    target = torch.full((H, A), 3.0)
    config = cem.CEMConfig(iterations=6)
    result = cem.plan(quadratic(target), H, A, config, torch.Generator().manual_seed(0))
    assert result.mean.max() <= 1.0 and result.best.max() <= 1.0
    assert result.mean.min() > 0.5  # pushed toward the nearest corner of the box


def test_every_iteration_scores_all_samples_in_one_call():
    calls: list[int] = []
    config = cem.CEMConfig(samples=64, elites=8, iterations=3)
    result = cem.plan(quadratic(target_in_box(), calls), H, A, config,
                      torch.Generator().manual_seed(0))
    assert calls == [64, 64, 64]
    assert result.cost_calls == 3


def test_same_generator_seed_gives_the_same_plan_and_another_seed_does_not():
    config = cem.CEMConfig(samples=32, elites=4, iterations=2)
    runs = [cem.plan(quadratic(target_in_box()), H, A, config, torch.Generator().manual_seed(s))
            for s in (7, 7, 8)]
    assert torch.equal(runs[0].mean, runs[1].mean) and torch.equal(runs[0].std, runs[1].std)
    assert not torch.equal(runs[0].mean, runs[2].mean)


def test_warm_start_shifts_the_plan_one_step_and_fills_the_end():
    mean = torch.arange(H * A, dtype=torch.float32).reshape(H, A)
    zeros = cem.warm_start(mean, "zeros")
    last = cem.warm_start(mean, "last")
    assert torch.equal(zeros[:-1], mean[1:]) and torch.equal(zeros[-1], torch.zeros(A))
    assert torch.equal(last[:-1], mean[1:]) and torch.equal(last[-1], mean[-1])


def test_a_warm_start_at_the_optimum_needs_fewer_iterations():
    """Starting from the previous solution is the point of warm starting: one iteration from
    the optimum beats one iteration from zeros."""
    target = target_in_box()
    config = cem.CEMConfig(samples=64, elites=8, iterations=1, init_std=0.2)
    cold = cem.plan(quadratic(target), H, A, config, torch.Generator().manual_seed(0))
    warm = cem.plan(quadratic(target), H, A, config, torch.Generator().manual_seed(0),
                    init_mean=target)
    assert warm.best_cost < cold.best_cost


def test_momentum_and_temperature_smooth_the_update():
    target = target_in_box()
    plain = cem.plan(quadratic(target), H, A, cem.CEMConfig(iterations=1, momentum=0.0),
                     torch.Generator().manual_seed(0))
    smooth = cem.plan(quadratic(target), H, A, cem.CEMConfig(iterations=1, momentum=0.5),
                      torch.Generator().manual_seed(0))
    # with momentum 0.5 the first update moves exactly half way from the zero start
    assert torch.allclose(smooth.mean, 0.5 * plain.mean, atol=1e-6)
    weighted = cem.plan(quadratic(target), H, A, cem.CEMConfig(iterations=1, momentum=0.0,
                                                                 temperature=1e-3),
                        torch.Generator().manual_seed(0))
    # a tiny temperature puts (nearly) all weight on the best elite
    assert torch.allclose(weighted.mean, weighted.best, atol=1e-3)


@pytest.mark.parametrize("change, word", [({"elites": 0}, "elites"), ({"elites": 300}, "elites"),
                                          ({"min_std": 2.0}, "min_std"),
                                          ({"momentum": 1.0}, "momentum"),
                                          ({"warm_fill": "mean"}, "warm_fill")])
def test_bad_settings_are_named(change, word):
    with pytest.raises(ActJepaError, match=word):
        cem.CEMConfig(**change).validate("cem")


def test_a_cost_with_the_wrong_shape_is_an_error():
    with pytest.raises(ActJepaError, match="one cost per sampled sequence"):
        cem.plan(lambda a: a.sum(-1), H, A, cem.CEMConfig(), torch.Generator().manual_seed(0))
