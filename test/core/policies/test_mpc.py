"""Latent MPC (Protocol 3) on a real, briefly trained reach-v3 world model and the real
simulator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from actjepa_core import cli
from actjepa_core.config import apply_overrides, load_yaml
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.evaluate import evaluate
from actjepa_core.evaluation.goals import GoalMaker, state_goal
from actjepa_core.models.world_model import latent_distance
from actjepa_core.planning.cem import CEMConfig
from actjepa_core.policies import FrozenWorld, load_policy
from actjepa_core.policies.mpc import MPCConfig, MPCPolicy
from actjepa_core.sim.arm import SimArm

from demo_data import (
    REACH_EVAL_EPISODES,
    REACH_EVAL_STEPS,
    UniformRandomPolicy,
    median_final_distance,
    reaches_closer_than_random,
)

FAST = MPCConfig(horizon=3, cem=CEMConfig(samples=32, elites=4, iterations=2))
STEPS = 4  # control ticks per mechanical check
SHIPPED_CONFIG = Path(__file__).resolve().parents[3] / "config" / "policy_mpc.yaml"


@pytest.fixture(scope="module")
def world(reach_explore_world):
    return FrozenWorld.from_checkpoint(reach_explore_world)


@pytest.fixture(scope="module")
def episode():
    """Start and demo-goal observations of reach-v3 evaluation episode 0 (seed 1)."""
    arm = SimArm("reach-v3", seed=1)
    start = arm.reset(0)
    arm.close()
    goals = GoalMaker("reach-v3", seed=1, source="demo")
    goal = goals.goal(0, start)
    goals.close()
    return start, goal


def drive(policy: MPCPolicy, goal: dict, steps: int = STEPS) -> np.ndarray:
    """Reset, set the goal and act for ``steps`` ticks on the real arm: (steps, A) actions."""
    arm = SimArm("reach-v3", seed=1)
    obs = arm.reset(0)
    policy.reset()
    policy.set_goal(goal)
    actions = []
    for _ in range(steps):
        actions.append(policy.act(obs))
        obs, _ = arm.step(actions[-1])
    arm.close()
    return np.stack(actions)


def test_the_prior_on_the_world_model_reaches_goals_a_random_policy_does_not(
        reach_explore_world, reach_demos, reach_random, one_torch_thread):
    """Closed loop on unseen start configurations (seed 1), goals from the expert's end state:
    the goal-conditioned prior (planning/prior.py) on the small world model's latents, the
    shipped goal-conditioned controller."""
    world = FrozenWorld.from_checkpoint(reach_explore_world)
    policy = MPCPolicy.build(world, reach_demos, apply_overrides(MPCConfig(),
                                                                 ["prior.mode=direct"]))
    result = evaluate(policy, "reach-v3", REACH_EVAL_EPISODES, seed=1,
                      max_steps=REACH_EVAL_STEPS, progress=False)
    assert reaches_closer_than_random(result, reach_random), (
        median_final_distance(result), median_final_distance(reach_random))


@pytest.mark.slow
def test_cem_planning_reaches_goals_a_random_policy_does_not(reach_explore_world,
                                                             one_torch_thread):
    """CEM with the shipped defaults on the same small world. Slow: its 10-episode success
    count changes between CPUs (the world's weights round differently), so it is judged over
    three times the episodes, on success and on the mean distance left."""
    policy = MPCPolicy(FrozenWorld.from_checkpoint(reach_explore_world))
    episodes = 3 * REACH_EVAL_EPISODES
    result, random = (evaluate(p, "reach-v3", episodes, seed=1, max_steps=REACH_EVAL_STEPS,
                               progress=False) for p in (policy, UniformRandomPolicy()))
    assert result.successes >= 2 and result.successes > random.successes
    assert result.mean_final_distance < random.mean_final_distance


def test_actions_are_finite_and_inside_the_dataset_bounds(world, episode):
    policy = MPCPolicy(world, FAST)
    actions = drive(policy, episode[1])
    low, high = policy.processor.action_low, policy.processor.action_high
    assert np.isfinite(actions).all()
    assert (actions >= low - 1e-6).all() and (actions <= high + 1e-6).all()


def test_save_load_round_trip_replays_the_same_actions(world, episode, tmp_path):
    policy = MPCPolicy(world, FAST)
    before = drive(policy, episode[1])
    policy.save(tmp_path / "mpc.pt")
    loaded = load_policy(tmp_path / "mpc.pt", policy_type="mpc")
    assert isinstance(loaded, MPCPolicy) and loaded.config == FAST
    np.testing.assert_array_equal(drive(loaded, episode[1]), before)


def test_reset_replays_and_warm_start_carries_the_plan(world, episode):
    policy = MPCPolicy(world, FAST)
    start, goal = episode
    policy.set_goal(goal)
    first = policy.act(start)
    plan = policy.planner.last.mean.clone()
    policy.act(start)  # same observation, but now warm-started from the shifted plan
    assert policy.planner.last is not None
    policy.reset()
    assert policy.planner.last is None
    np.testing.assert_array_equal(policy.act(start), first)
    assert torch.equal(policy.planner.last.mean, plan)


def test_one_batched_rollout_per_cem_iteration(world, episode, monkeypatch):
    policy = MPCPolicy(world, FAST)
    batches: list[tuple[int, ...]] = []
    rollout = policy.model.rollout

    def counting(s, actions):
        batches.append(tuple(actions.shape))
        return rollout(s, actions)

    monkeypatch.setattr(policy.model, "rollout", counting)
    policy.set_goal(episode[1])
    policy.act(episode[0])
    samples, horizon = FAST.cem.samples, FAST.horizon
    assert batches == [(samples, horizon, policy.action_dim)] * FAST.cem.iterations


@pytest.mark.parametrize("cost", ["terminal", "sum"])
def test_cost_is_the_latent_distance_to_the_goal(world, episode, cost):
    policy = MPCPolicy(world, MPCConfig(horizon=3, cost=cost))
    policy.set_goal(episode[1])
    s = policy.encode(episode[0])  # (1, D)
    actions = torch.rand(5, 3, policy.action_dim) * 2 - 1  # (N, H, A)
    predicted = policy.model.rollout(s.expand(5, -1), actions)  # (N, H, D)
    per_step = latent_distance(predicted, policy.goal[:, None])  # (N, H)
    want = per_step[:, -1] if cost == "terminal" else per_step.sum(1)
    targets = policy.goal_scheme().targets(s, 3)
    torch.testing.assert_close(policy.cost_fn(s, targets)(actions), want)


def test_goal_checks_name_what_is_wrong(world, episode):
    policy = MPCPolicy(world, FAST)
    with pytest.raises(ActJepaError, match="no goal"):
        policy.act(episode[0])
    state = episode[1]["state"]
    for bad, words in (({}, "goal observation is missing key"),
                       ({"state": state[:10]}, "goal observation 'state' has shape"),
                       ({"state": np.full_like(state, np.nan)}, "goal observation 'state' "
                                                                "contains NaN")):
        with pytest.raises(ActJepaError, match=words):
            policy.set_goal(bad)
    with pytest.raises(ActJepaError, match="goal latent has 3 values"):
        policy.set_goal_latent(torch.zeros(3))
    with pytest.raises(ActJepaError, match="NaN"):
        policy.set_goal_latent(torch.full((policy.latent_dim,), float("nan")))
    policy.set_goal_latent(torch.zeros(policy.latent_dim))
    assert np.isfinite(policy.act(episode[0])).all()


def test_state_goal_moves_the_hand_to_the_goal_position(episode):
    start = episode[0]
    goal = state_goal("reach-v3", start)["state"]
    np.testing.assert_array_equal(goal[0:3], start["state"][36:39])  # hand at the goal
    np.testing.assert_array_equal(goal[18:36], goal[0:18])  # standing still
    np.testing.assert_array_equal(goal[3:18], start["state"][3:18])  # the rest untouched
    with pytest.raises(ActJepaError, match="state-only"):
        state_goal("reach-v3", {**start, "image": np.zeros((8, 8, 3), np.uint8)})


def test_demo_goal_is_where_the_expert_ends(episode):
    start, goal = episode
    hand, target = goal["state"][0:3], start["state"][36:39]
    assert np.linalg.norm(hand - target) < 0.05  # reach-v3's success radius


def test_demo_waypoints_follow_the_experts_path_every_stride_ticks(episode):
    start, goal = episode
    waypoints = GoalMaker("reach-v3", seed=1, source="demo-waypoints")
    path = waypoints.goals(0, start)
    waypoints.close()
    hands = np.stack([p["state"][0:3] for p in [start, *path]])  # (M + 2, 3)
    np.testing.assert_array_equal(path[-1]["state"], goal["state"])  # ends where the expert ends
    assert len(path) >= 3
    gaps = np.linalg.norm(np.diff(hands, axis=0), axis=1)
    assert gaps[:-1].max() < 0.5 * np.linalg.norm(hands[-1] - hands[0])  # dense: many small legs
    to_target = np.linalg.norm(hands - start["state"][36:39], axis=1)
    assert to_target[-1] < to_target[len(to_target) // 2] < to_target[0]  # along the way


def test_shipped_yaml_holds_the_built_in_defaults():
    assert load_yaml(MPCConfig, SHIPPED_CONFIG) == MPCConfig()


def test_bad_config_is_named():
    with pytest.raises(ActJepaError, match="cost"):
        MPCConfig(cost="mean").validate()
    with pytest.raises(ActJepaError, match="elites"):
        MPCConfig(cem=CEMConfig(samples=4, elites=8)).validate()


def test_train_policy_mpc_command_writes_a_loadable_policy(reach_explore_world, tmp_path,
                                                           capsys):
    out = tmp_path / "mpc.pt"
    assert cli.main(["train-policy", "mpc", "--encoder", str(reach_explore_world),
                     "--out", str(out), "--config", str(SHIPPED_CONFIG)]) == 0
    assert "horizon" in capsys.readouterr().out
    assert load_policy(out).config == MPCConfig()


def test_policy_files_with_the_old_goal_source_setting_still_load(world, tmp_path):
    """Where goals come from moved to `actjepa eval --goal`; older MPC files stored it in their
    config, and load with it dropped."""
    MPCPolicy(world, FAST).save(tmp_path / "mpc.pt")
    content = torch.load(tmp_path / "mpc.pt", weights_only=True)
    content["policy"]["config"]["goal_source"] = "state"
    torch.save(content, tmp_path / "old.pt")
    assert load_policy(tmp_path / "old.pt", policy_type="mpc").config == FAST
