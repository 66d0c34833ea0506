"""Latent MPC's learned aids (TD-MPC2's recipe): the TD-learned goal value as the planning cost
and the goal-conditioned prior that seeds the search, on a real reach-v3 world model and real
demos."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_mpc import drive

from actjepa_core import cli
from actjepa_core.config import apply_overrides
from actjepa_core.errors import ActJepaError
from actjepa_core.planning.planners import snap
from actjepa_core.policies import FrozenWorld, load_policy
from actjepa_core.policies.mpc import MPCConfig, MPCPolicy

SMALL = ["horizon=3", "cem.samples=32", "cem.elites=4", "cem.iterations=2",
         "value.steps=200", "value.batch_size=128", "value.hidden=[32]",
         "prior.steps=200", "prior.batch_size=128", "prior.hidden=[32]"]


def config(*overrides: str) -> MPCConfig:
    return apply_overrides(MPCConfig(), [*SMALL, *overrides])


@pytest.fixture(scope="module")
def world(reach_explore_world):
    return FrozenWorld.from_checkpoint(reach_explore_world)


@pytest.fixture(scope="module")
def learned(world, reach_demos):
    """Value and prior weights trained once on the reach demos (the policy's parts)."""
    torch.manual_seed(0)
    policy = MPCPolicy.build(world, reach_demos, config("cost=value", "prior.mode=proposal"),
                             play=reach_demos.episodes[:2])
    return policy.parts()


@pytest.fixture(scope="module")
def start_and_goal(reach_demos):
    first = reach_demos.episodes[0]
    obs = {k: np.asarray(v[0]) for k, v in first.obs.items()}
    goal = {k: np.asarray(v[-1]) for k, v in first.obs.items()}
    return obs, goal


def test_value_cost_is_minus_the_value_of_the_last_predicted_latent(world, learned,
                                                                    start_and_goal):
    policy = MPCPolicy(world, config("cost=value"), **learned)
    policy.set_goal(start_and_goal[1])
    s = policy.encode(start_and_goal[0])  # (1, D)
    actions = torch.rand(6, 3, policy.action_dim) * 2 - 1  # (N, H, A)
    last = policy.model.rollout(s.expand(6, -1), actions)[:, -1]  # (N, D)
    targets = policy.goal_scheme().targets(s, 3)
    torch.testing.assert_close(policy.cost_fn(s, targets)(actions),
                               -policy.value(last, policy.goal[0]))


def test_direct_prior_acts_on_the_target_latent_without_search(world, learned, start_and_goal):
    policy = MPCPolicy(world, config("prior.mode=direct"), **learned)
    obs, goal = start_and_goal
    policy.set_goal(goal)
    action = policy.act(obs)
    assert policy.planner.last is None  # no search ran
    x = policy.processor.to_model(obs)
    want = snap(policy.prior(policy.model.encode_target(x), policy.goal)[0], [])
    np.testing.assert_allclose(action, policy.processor.to_robot(want), rtol=1e-5, atol=1e-6)


def test_proposal_is_where_the_search_starts(world, learned, start_and_goal):
    """With a search too narrow to move, the executed action is the prior's first proposed one;
    with the usual width it is not pinned there."""
    obs, goal = start_and_goal
    narrow = MPCPolicy(world, config("prior.mode=proposal", "cem.init_std=0.0001",
                                     "cem.min_std=0"), **learned)
    narrow.set_goal(goal)
    action = narrow.act(obs)
    x = narrow.processor.to_model(obs)
    proposed = narrow.prior(narrow.model.encode_target(x), narrow.goal)[0]
    np.testing.assert_allclose(action, narrow.processor.to_robot(proposed), atol=1e-3)
    wide = MPCPolicy(world, config("prior.mode=proposal", "cem.init_std=1.0"), **learned)
    wide.set_goal(goal)
    assert np.abs(wide.act(obs) - action).max() > 1e-2


def test_save_load_round_trip_keeps_the_learned_parts(world, learned, start_and_goal, tmp_path):
    policy = MPCPolicy(world, config("cost=value", "prior.mode=proposal"), **learned)
    before = drive(policy, start_and_goal[1])
    policy.save(tmp_path / "mpc.pt")
    loaded = load_policy(tmp_path / "mpc.pt", policy_type="mpc")
    np.testing.assert_array_equal(drive(loaded, start_and_goal[1]), before)


def test_missing_demos_or_weights_are_named(world):
    with pytest.raises(ActJepaError, match="no demonstrations"):
        MPCPolicy.build(world, None, config("cost=value"))
    with pytest.raises(ActJepaError, match="mpc value: expected trained weights"):
        MPCPolicy(world, config("cost=value"))


def test_train_policy_mpc_learns_the_value_from_demos_and_play(reach_explore_world,
                                                               reach_demos_path, tmp_path):
    settings = tmp_path / "mpc.yaml"
    settings.write_text("cost: value\nvalue: {steps: 50, batch_size: 64, hidden: [16]}\n")
    out = tmp_path / "mpc.pt"
    assert cli.main(["train-policy", "mpc", "--encoder", str(reach_explore_world),
                     "--data", str(reach_demos_path), "--play", str(reach_demos_path),
                     "--config", str(settings), "--out", str(out)]) == 0
    loaded = load_policy(out, policy_type="mpc")
    assert loaded.config.cost == "value" and loaded.value is not None


def test_the_guard_executes_the_plan_only_where_it_beats_the_priors_plan(world, learned,
                                                                        start_and_goal):
    """prior.guard: the wide search's action where its plan's value beats the prior's plan by
    the margin, the prior's own first action where it does not (an unreachable margin)."""
    obs, goal = start_and_goal

    def guarded(margin: float) -> tuple[MPCPolicy, np.ndarray]:
        policy = MPCPolicy(world, config("cost=value", "prior.mode=proposal", "cem.init_std=1.0",
                                         "prior.guard=true", f"prior.margin={margin}"), **learned)
        policy.set_goal(goal)
        return policy, policy.act(obs)

    free = MPCPolicy(world, config("cost=value", "prior.mode=proposal", "cem.init_std=1.0"),
                     **learned)
    free.set_goal(goal)
    searched = free.act(obs)
    kept, action = guarded(1e6)
    assert kept.kept_prior
    x = kept.processor.to_model(obs)
    proposed = kept.prior(kept.model.encode_target(x), kept.goal)[0]
    np.testing.assert_allclose(action, kept.processor.to_robot(proposed), atol=1e-5)
    assert np.abs(searched - action).max() > 1e-2  # the search alone went elsewhere
    used, action = guarded(0.0)
    assert not used.kept_prior  # the wide search's plan is valued above the prior's here
    np.testing.assert_allclose(action, searched, atol=1e-6)


def test_a_guard_without_a_proposal_is_refused():
    with pytest.raises(ActJepaError, match="prior.guard compares a search with the prior's plan"):
        config("prior.mode=direct", "prior.guard=true").validate()
    with pytest.raises(ActJepaError, match="prior.margin must be >= 0"):
        config("prior.mode=proposal", "prior.guard=true", "prior.margin=-1").validate()
