"""Planners find the optimum of known convex costs in latent space; goal schemes move on with
progress; binary dimensions are planned as binary."""
from __future__ import annotations

import pytest
import torch

from actjepa_core.errors import ActJepaError
from actjepa_core.planning.icem import coloured_noise
from actjepa_core.planning.latent_goals import FinalGoal, Subgoals, Tracking, sequence_cost
from actjepa_core.planning.planners import PLANNERS, Planner, PlannerConfig, snap

D, A, H = 8, 3, 5


def linear_world(seed: int = 0):
    """s_{k+1} = s_k + B a_k: a latent world whose terminal cost is convex in the actions."""
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(D, A, generator=g) * 0.3

    def rollout(s: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        steps = torch.einsum("da,nha->nhd", b, actions)  # (N, H, D)
        return s[:, None] + steps.cumsum(1)  # (N, H, D)

    return b, rollout


@pytest.mark.parametrize("name", PLANNERS)
def test_each_planner_reaches_the_optimum_of_a_convex_latent_cost(name):
    b, rollout = linear_world()
    start = torch.zeros(1, D)
    true_actions = torch.tensor([[0.5, -0.4, 0.3]]).expand(H, A)
    goal = rollout(start, true_actions[None])[0, -1]  # reachable in H steps
    scheme = FinalGoal(goal, terminal=True)
    config = PlannerConfig(name=name, horizon=H).validate("test", A)
    planner = Planner(config, A, torch.Generator().manual_seed(0))

    def cost(actions):
        return sequence_cost(rollout(start.expand(len(actions), -1), actions),
                             scheme.targets(start, H), False)

    initial = float(cost(torch.zeros(1, H, A))[0])
    for _ in range(8):  # replans from the warm start, as in receding-horizon control
        result = planner.plan(cost)
    assert float(result.best_cost) < 0.02 * initial
    assert float(cost(result.mean[None])[0]) < 0.05 * initial


def test_the_planner_settings_are_checked():
    with pytest.raises(ActJepaError, match="planner.name is 'rrt'"):
        PlannerConfig(name="rrt").validate("mpc")
    with pytest.raises(ActJepaError, match="binary_dims"):
        PlannerConfig(binary_dims=[7]).validate("mpc", action_dim=4)


def test_binary_dimensions_are_scored_and_executed_as_open_or_closed():
    seen = []
    config = PlannerConfig(name="cem", horizon=2, binary_dims=[2]).validate("test", A)
    planner = Planner(config, A, torch.Generator().manual_seed(0))

    def cost(actions):
        seen.append(actions[..., 2].unique())
        return (actions[..., 2] - 1.0).pow(2).sum(1) + actions[..., :2].pow(2).sum((1, 2))

    planner.plan(cost)
    assert all(set(v.tolist()) <= {-1.0, 1.0} for v in seen)
    assert float(planner.first_action()[2]) == 1.0
    assert snap(torch.tensor([0.25, -0.1, 0.0]), [1, 2]).tolist() == [0.25, -1.0, 1.0]


def test_coloured_noise_is_smoother_than_white_noise():
    g = torch.Generator().manual_seed(0)
    white = coloured_noise(2000, 16, 1, 0.0, g)
    brown = coloured_noise(2000, 16, 1, 2.0, g)
    step = lambda x: (x[:, 1:] - x[:, :-1]).pow(2).mean()  # noqa: E731
    assert brown.std() == pytest.approx(1.0, abs=0.05)
    assert step(brown) < 0.3 * step(white)


def test_subgoals_advance_on_progress_and_not_before():
    goals = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    scheme = Subgoals(goals, switch_ratio=0.2)  # of the squared distance
    assert scheme.update(torch.tensor([[0.0, 0.0]])) == 0  # far from the first
    assert scheme.update(torch.tensor([[0.5, 0.0]])) == 0  # closer, not yet there
    assert scheme.update(torch.tensor([[0.95, 0.0]])) == 1  # 0.0025 < 0.2 x 1.0
    assert scheme.update(torch.tensor([[2.6, 0.0]])) == 2  # nearer the next than the active one
    assert scheme.update(torch.tensor([[5.0, 0.0]])) == 2  # the last one stays
    targets = scheme.targets(torch.tensor([[5.0, 0.0]]), 4)
    assert torch.equal(targets.latents, goals[2].expand(4, -1))
    scheme.reset()
    assert scheme.index == 0


def test_subgoals_with_switch_after_advance_on_time_when_progress_stalls():
    goals = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    stuck = torch.tensor([[0.0, 5.0]])  # no progress toward any subgoal
    scheme = Subgoals(goals, switch_ratio=0.2, switch_after=3)
    assert [scheme.update(stuck) for _ in range(8)] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert [Subgoals(goals, switch_ratio=0.2).update(stuck) for _ in range(8)] == [0] * 8
    scheme.reset()
    assert scheme.update(torch.tensor([[0.0, 0.0]])) == 0
    assert scheme.update(torch.tensor([[0.95, 0.0]])) == 1  # progress: advance, new clock
    assert [scheme.update(stuck) for _ in range(4)] == [1, 1, 2, 2]


def test_tracking_targets_the_nearest_demos_next_latents_within_that_demo():
    demo_a = torch.arange(10.0)[:, None].repeat(1, 2)  # latents (t, t)
    demo_b = 100 + torch.arange(5.0)[:, None].repeat(1, 2)
    scheme = Tracking([demo_a, demo_b], [demo_a * 2, demo_b * 2])
    t = scheme.targets(torch.tensor([[3.1, 3.1]]), 3)
    assert t.latents[:, 0].tolist() == [8.0, 10.0, 12.0]  # target latents of steps 4, 5, 6
    t = scheme.targets(torch.tensor([[103.0, 103.0]]), 3)
    assert t.latents[:, 0].tolist() == [208.0, 208.0, 208.0]  # clamped to demo b's last step
    near_goal = Tracking([demo_a, demo_b], [demo_a, demo_b], goal=torch.tensor([9.0, 9.0]),
                         demos_near_goal=1)
    assert near_goal.targets(torch.tensor([[101.0, 101.0]]), 1).latents[0, 0] <= 9.0
