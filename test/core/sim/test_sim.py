"""SimArm and expert collection against the real Meta-World / MuJoCo simulator (no mocks)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from actjepa_core.data.episodes import read_episodes, write_episodes  # noqa: E402
from actjepa_core.errors import ActJepaError  # noqa: E402
from actjepa_core.sim.arm import ACTION_DIM, STATE_DIM, TASKS_PER_BENCHMARK, SimArm  # noqa: E402
from actjepa_core.sim.collect import collect_episodes  # noqa: E402
from actjepa_core.sim.experts import TASKS  # noqa: E402

GOAL = slice(36, 39)  # goal xyz in the Meta-World state
OBJECT = slice(4, 7)  # first object's xyz
GREY_SATURATION = 20  # max-min over RGB: backdrop measured ~5, table ~43


@pytest.mark.parametrize("task", ["reach-v3", "push-v3"])
def test_expert_solves_task_and_records_applied_actions(task: str) -> None:
    episodes = list(collect_episodes(task, 3, seed=0, progress=False))
    assert len(episodes) == 3
    replay = SimArm(task, seed=0)
    for i, ep in enumerate(episodes):
        assert ep.success is True
        assert ep.attrs == {"task": task, "episode_index": i, "seed": 0, "explore": 0.0,
                            "dart_noise": 0.0, "expert_aim": "hand"}
        assert ep.obs["state"].shape == (ep.num_steps, STATE_DIM)
        assert ep.obs["state"].dtype == np.float32
        assert ep.actions.shape == (ep.num_steps, ACTION_DIM)
        assert np.abs(ep.actions).max() <= 1.0
        # Replaying the recorded actions reproduces the recorded observations exactly: what was
        # recorded is what was applied.
        obs = replay.reset(i)
        for t in range(ep.num_steps):
            np.testing.assert_array_equal(obs["state"], ep.obs["state"][t])
            obs, _ = replay.step(ep.actions[t])
            np.testing.assert_array_equal(replay.last_action, ep.actions[t])
    replay.close()


def test_out_of_range_action_is_clipped_and_applied_clipped() -> None:
    wild, clipped = SimArm("reach-v3"), SimArm("reach-v3")
    wild.reset(0)
    clipped.reset(0)
    obs_wild, _ = wild.step(np.array([5.0, -3.0, 0.5, 2.0]))
    obs_clip, _ = clipped.step(np.array([1.0, -1.0, 0.5, 1.0]))
    np.testing.assert_array_equal(wild.last_action, np.array([1, -1, 0.5, 1], dtype=np.float32))
    np.testing.assert_array_equal(obs_wild["state"], obs_clip["state"])
    expert = wild.expert_action()
    assert expert.dtype == np.float32 and expert.shape == (ACTION_DIM,)
    assert np.abs(expert).max() <= 1.0


def test_start_configuration_depends_only_on_seed_and_episode() -> None:
    arm = SimArm("push-v3", seed=0)
    first = arm.reset(3)["state"]
    for _ in range(20):  # disturb the simulator; the next reset must not remember it
        arm.step(arm.expert_action())
    arm.reset(0)
    again = arm.reset(3)["state"]
    fresh = SimArm("push-v3", seed=0).reset(3)["state"]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fresh)

    other_episode = arm.reset(4)["state"]
    assert not np.allclose(first[GOAL], other_episode[GOAL])
    assert not np.allclose(first[OBJECT], other_episode[OBJECT])
    # Episode indices past one benchmark's 50 configurations use a new benchmark seed.
    next_block = arm.reset(3 + TASKS_PER_BENCHMARK)["state"]
    assert not np.allclose(first[GOAL], next_block[GOAL])

    seed0 = arm.reset(0)["state"]
    seed1 = SimArm("push-v3", seed=1).reset(0)["state"]
    assert not np.allclose(seed0[GOAL], seed1[GOAL])
    assert not np.allclose(seed0[OBJECT], seed1[OBJECT])


def test_joint_states_follow_the_arm() -> None:
    arm = SimArm("reach-v3", max_steps=15)
    arm.reset(0)
    assert len(arm.joint_names) == 9 and "right_j0" in arm.joint_names
    before = arm.joint_positions()
    while arm.steps < arm.max_steps:
        arm.step(arm.expert_action())
    after = arm.joint_positions()
    assert before.shape == after.shape == arm.joint_velocities().shape == (9,)
    assert np.isfinite(after).all() and not np.allclose(before, after)
    assert np.abs(arm.joint_velocities()).max() > 0
    with pytest.raises(ActJepaError, match="max_steps=15"):
        arm.step(np.zeros(ACTION_DIM))


def test_bad_inputs_raise_actjepa_error() -> None:
    with pytest.raises(ActJepaError, match="lift-the-car-v3") as info:
        SimArm("lift-the-car-v3")
    assert all(task in str(info.value) for task in TASKS)
    with pytest.raises(ActJepaError, match="lift-the-car-v3"):
        next(collect_episodes("lift-the-car-v3", 1, progress=False))
    arm = SimArm("reach-v3")
    with pytest.raises(ActJepaError, match="before reset"):
        arm.step(np.zeros(ACTION_DIM))
    arm.reset(0)
    with pytest.raises(ActJepaError, match="NaN"):
        arm.step(np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(ActJepaError, match=r"shape \(3,\)"):
        arm.step(np.zeros(3))
    with pytest.raises(ActJepaError, match="episode"):
        arm.reset(-1)
    with pytest.raises(ActJepaError, match="image_size"):
        SimArm("reach-v3", image_size=0)


def test_image_episodes_are_small_uint8_pictures() -> None:
    episodes = list(collect_episodes("reach-v3", 2, image_size=32, max_steps=4, progress=False))
    for ep in episodes:
        images = ep.obs["image"]
        assert images.dtype == np.uint8
        assert images.shape == (4, 32, 32, 3)
        assert images.std() > 10  # a real scene, not a blank frame
        assert ep.obs["state"].shape == (4, STATE_DIM)
        assert ep.success is False  # 4 steps are too few to reach the goal
    assert not np.array_equal(episodes[0].obs["image"][0], episodes[1].obs["image"][0])
    # Up is up: the grey backdrop fills the top rows, the wooden (brown) table the bottom rows.
    image = episodes[0].obs["image"][0].astype(int)
    saturation = image.max(axis=2) - image.min(axis=2)
    assert np.median(saturation[:4]) < GREY_SATURATION < np.median(saturation[-4:])


def test_collected_episodes_round_trip_through_the_episodes_file(tmp_path) -> None:
    episodes = list(collect_episodes("reach-v3", 2, seed=1, max_steps=30, progress=False))
    path = tmp_path / "demos.hdf5"
    assert write_episodes(path, episodes, source="sim:reach-v3") == 2
    loaded = read_episodes(path)
    assert loaded.obs_keys == ["state"] and loaded.action_dim == ACTION_DIM
    for ep, back in zip(episodes, loaded.episodes):
        np.testing.assert_array_equal(ep.obs["state"], back.obs["state"])
        np.testing.assert_array_equal(ep.actions, back.actions)
        assert back.success == ep.success
    with h5py.File(path, "r") as f:
        attrs = f["data/demo_1"].attrs
        assert attrs["task"] == "reach-v3"
        assert (int(attrs["episode_index"]), int(attrs["seed"])) == (1, 1)


def test_exploration_mixes_random_actions_and_runs_the_full_length():
    from actjepa_core.sim.collect import collect_episodes

    plain = next(collect_episodes("reach-v3", 1, seed=0, max_steps=40, progress=False))
    mixed = next(collect_episodes("reach-v3", 1, seed=0, max_steps=40, progress=False,
                                  explore=0.5))
    assert mixed.num_steps == 40 and mixed.attrs["explore"] == 0.5
    arm = SimArm("reach-v3", seed=0, max_steps=40)
    arm.reset(0)
    expert_ticks = 0
    for t in range(mixed.num_steps):  # replay: ticks where the expert would have acted alike
        expert_ticks += np.allclose(arm.expert_action(), mixed.actions[t], atol=1e-6)
        arm.step(mixed.actions[t])
    assert 0.25 * 40 < expert_ticks < 0.75 * 40
    assert not np.allclose(plain.actions[:10], mixed.actions[:10])
    with pytest.raises(ActJepaError, match="explore"):
        next(collect_episodes("reach-v3", 1, explore=1.5, progress=False))


def test_dart_demos_leave_the_expert_path_and_record_the_expert_s_action_for_each_state():
    from actjepa_core.sim.experts import expert_action, make_expert

    plain = next(collect_episodes("reach-v3", 1, seed=0, progress=False))
    noisy = next(collect_episodes("reach-v3", 1, seed=0, max_steps=150, progress=False,
                                  dart_noise=0.5))  # the expert still solves it, more slowly
    assert noisy.attrs["dart_noise"] == 0.5 and noisy.success
    steps = min(plain.num_steps, noisy.num_steps)
    hand = slice(0, 3)
    drift = np.abs(noisy.obs["state"][:steps, hand] - plain.obs["state"][:steps, hand]).max()
    assert drift > 0.005  # metres: the noise moved the arm off the clean demo's path
    expert = make_expert("reach-v3")
    labels = np.stack([expert_action(expert, state) for state in noisy.obs["state"]])
    np.testing.assert_allclose(noisy.actions, labels, atol=1e-4)  # the state's own expert action
    with pytest.raises(ActJepaError, match="dart_noise"):
        next(collect_episodes("reach-v3", 1, dart_noise=float("nan"), progress=False))
    with pytest.raises(ActJepaError, match="explore and dart_noise"):
        next(collect_episodes("reach-v3", 1, dart_noise=0.1, explore=0.5, progress=False))


def test_proprioception_is_the_hand_and_gripper_part_of_the_state() -> None:
    arm = SimArm("reach-v3", seed=0, proprio=True)
    try:
        for obs in (arm.reset(0), arm.step(np.array([1.0, 0.0, 0.0, -1.0]))[0]):
            assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (4,)
            assert (obs["proprio"] == obs["state"][:4]).all()
    finally:
        arm.close()
    plain = SimArm("reach-v3", seed=0)
    try:
        assert "proprio" not in plain.reset(0)  # recorded episodes keep their keys
    finally:
        plain.close()


def test_task_metrics_measure_success_at_the_tool_centre_not_the_observed_hand() -> None:
    """reach-v3's expert steers the observed hand onto the goal; success is measured a few cm
    lower (experiments/mpc/demo_goal_margin.py reads this metric for the demo goals' margin)."""
    arm = SimArm("reach-v3", seed=1)
    with pytest.raises(ActJepaError, match="before reset"):
        arm.task_metrics()
    obs, success = arm.reset(0), False
    while not success:
        obs, success = arm.step(arm.expert_action())
    metrics = arm.task_metrics()
    assert metrics["success"] == 1.0 and metrics["obj_to_target"] <= 0.05
    hand_to_goal = float(np.linalg.norm(obs["state"][:3] - obs["state"][GOAL]))
    assert abs(metrics["obj_to_target"] - hand_to_goal) > 0.01  # not the observed hand's distance
    arm.close()


def settled_tool_distance(arm: SimArm, aim: str, ticks: int = 100) -> float:
    """The success metric after the expert, aimed ``aim``, has had ``ticks`` to settle."""
    arm.reset(0)
    for _ in range(ticks):
        arm.step(arm.expert_action(aim))
    return arm.task_metrics()["obj_to_target"]


def test_the_tool_aimed_reach_expert_settles_the_tool_centre_on_the_goal() -> None:
    """Meta-World's reach expert parks the hand on the goal: its tool centre rests ~4.5 cm off,
    inside the 5 cm radius by millimetres. Aimed at the tool centre it rests on the goal."""
    arm = SimArm("reach-v3", seed=1)
    try:
        assert settled_tool_distance(arm, "hand") > 0.04
        assert settled_tool_distance(arm, "tool") < 0.015
        with pytest.raises(ActJepaError, match="expert aim 'elbow'"):
            arm.expert_action("elbow")
    finally:
        arm.close()
    push = SimArm("push-v3", seed=1)
    push.reset(0)
    with pytest.raises(ActJepaError, match="expert aim 'tool' on push-v3"):
        push.expert_action("tool")
    push.close()
    ep = next(collect_episodes("reach-v3", 1, seed=1, expert_aim="tool", progress=False))
    assert ep.success and ep.attrs["expert_aim"] == "tool"
