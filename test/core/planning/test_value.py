"""The TD-learned goal value on a corridor whose steps-to-go are known exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actjepa_core.errors import ActJepaError
from actjepa_core.planning.value import ValueConfig, fit_value

CELLS = 12
FAST = ValueConfig(hidden=[64, 64], steps=1500, batch_size=256, lr=1e-3, discount=0.9,
                   target_tau=0.02)


def cell_latents(cells: list[int]) -> torch.Tensor:
    """A cell of the corridor as a 2-D latent: a point on a spiral, so distance in latent space
    is not steps along the corridor."""
    angle = torch.tensor(cells, dtype=torch.float32) * 0.5
    radius = 1.0 + 0.1 * torch.tensor(cells, dtype=torch.float32)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], -1)  # (T, 2)


def walks(direct: int, detours: int) -> tuple[torch.Tensor, list[int]]:
    """Episodes along the corridor: ``direct`` ones step +1 from cell 0 to the end, ``detours``
    ones step back and forth (+1, -1, +1, +1, ...) and take three times as long."""
    paths = [list(range(CELLS))] * direct
    for _ in range(detours):
        cells, x = [], 0
        while x < CELLS - 1:
            cells += [x, x + 1, x]
            x += 1
        paths.append(cells + [CELLS - 1])
    return torch.cat([cell_latents(p) for p in paths]), [len(p) for p in paths]


def discounted_steps(k: np.ndarray, discount: float) -> np.ndarray:
    return -(1 - discount ** k) / (1 - discount)


@pytest.fixture
def corridor_value(one_torch_thread):
    latents, lengths = walks(direct=8, detours=0)
    return fit_value(latents, lengths, FAST)[0]


def test_value_counts_the_steps_to_the_goal(corridor_value):
    """V(s, g) ~ -(1 - discount^k) / (1 - discount) for a goal k steps ahead, and it orders
    every cell of the corridor by its steps to the goal."""
    goal = cell_latents([CELLS - 1])
    v = corridor_value(cell_latents(list(range(CELLS))), goal).numpy()
    want = discounted_steps(np.arange(CELLS)[::-1], FAST.discount)
    assert (np.diff(v) > 0).all()
    assert np.abs(v - want).max() < 1.0, (v.round(2), want.round(2))


def test_the_upper_expectile_follows_the_best_recorded_way(one_torch_thread):
    """From the same cells, the direct walks and 4x as many detours: an expectile near 1 values
    a cell by the direct way (fewer steps), the plain mean (0.5) by the mix."""
    latents, lengths = walks(direct=2, detours=8)
    goal, start = cell_latents([CELLS - 1]), cell_latents([2])
    values = {tau: float(fit_value(latents, lengths, ValueConfig(
        **{**FAST.__dict__, "expectile": tau}))[0](start, goal)) for tau in (0.5, 0.95)}
    direct = discounted_steps(np.array(CELLS - 3), FAST.discount)
    assert values[0.95] > values[0.5] + 0.5
    assert abs(values[0.95] - direct) < abs(values[0.5] - direct)


def test_bad_settings_and_data_are_named():
    with pytest.raises(ActJepaError, match="expectile"):
        ValueConfig(expectile=0.3).validate("test")
    with pytest.raises(ActJepaError, match="12 latents"):
        fit_value(cell_latents(list(range(12))), [5, 5], FAST)


def test_an_ensembles_heads_disagree_off_the_data_and_pessimism_lowers_the_value_there(
        one_torch_thread):
    latents, lengths = walks(direct=8, detours=0)
    config = ValueConfig(**{**FAST.__dict__, "heads": 3, "pessimism": 1.0, "steps": 500})
    value = fit_value(latents, lengths, config)[0]
    goal = cell_latents([CELLS - 1])
    on_data = cell_latents(list(range(CELLS)))  # (T, 2)
    off_data = on_data * 6.0  # far outside the spiral the heads were trained on
    spread_on = value.each(on_data, goal).std(0).mean()
    spread_off = value.each(off_data, goal).std(0).mean()
    assert spread_off > 3 * spread_on
    values = value.each(off_data, goal)  # (E, T)
    torch.testing.assert_close(value(off_data, goal),
                               values.mean(0) - values.std(0, unbiased=False))


@pytest.mark.parametrize("imagined", ["random", "search"])
def test_the_conservative_term_keeps_imagined_latents_below_where_they_came_from(
        imagined, one_torch_thread):
    """A world model whose rollouts leave the corridor (each latent pushed 20-60% outward, off
    the spiral): without the term V rates some of those points above the recorded cell they came
    from, the values a planner's search exploits; with it none is, and the recorded cells keep
    their order toward the goal."""
    latents, lengths = walks(direct=8, detours=0)
    goal, cells = cell_latents([CELLS - 1]), cell_latents(list(range(CELLS)))
    generator = torch.Generator().manual_seed(0)

    def rollouts(s: torch.Tensor, n: int) -> torch.Tensor:
        return s[:, None] * (1.2 + 0.4 * torch.rand((len(s), n, 1), generator=generator))

    excess = {}
    for weight in (0.0, 0.3):
        config = ValueConfig(**{**FAST.__dict__, "conservative": weight,
                                "imagined": imagined, "search_rows": 64, "search_samples": 8})
        value = fit_value(latents, lengths, config, rollouts)[0]
        excess[weight] = float((value(cells * 1.4, goal) - value(cells, goal)).max())
        assert (np.diff(value(cells, goal).numpy()) > 0).all()
    assert excess[0.0] > 0.5 and excess[0.3] < 0.0, excess


def test_the_conservative_term_needs_the_world_models_rollouts():
    config = ValueConfig(**{**FAST.__dict__, "conservative": 1.0})
    with pytest.raises(ActJepaError, match="needs the world model's rollouts"):
        fit_value(*walks(direct=2, detours=0), config)


def test_the_search_picks_the_rollout_the_value_rates_best():
    """``searched`` is a random-shooting planner's choice: per row, the candidate end with the
    highest V for that row's goal."""
    from actjepa_core.planning.value import GoalValue, searched

    torch.manual_seed(0)
    value = GoalValue(2, [16], heads=1)
    s, g = torch.randn(5, 2), torch.randn(5, 2)
    candidates = torch.randn(5, 7, 2)  # (R, N, D)
    best = searched(value, lambda latents, n: candidates[:, :n], s, g, 7)
    scores = value(candidates, g[:, None].expand_as(candidates))  # (R, N)
    assert torch.equal(best, candidates[torch.arange(5), scores.argmax(1)])
    assert torch.allclose(value(best, g), scores.max(1).values)
