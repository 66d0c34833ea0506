"""The arm driven the way real cells drive one: hand velocity as TwistStamped (MoveIt Servo's
input) and the gripper on its own Float64 topic, instead of one 4-d array (issue 27).

sim_node and policy_node run as separate processes over real DDS in lock-step, twice from the
same start: once with the policy publishing the 4-d array on ``~/action``, once publishing a
twist on ``~/twist`` and the gripper on ``~/gripper``. The two episodes must be the same, step
for step: the same actions and, after every step, the very same 39-d task state. Both sides use
their default ``twist_scale`` (1.0: the twist is unitless, as Meta-World's action is), so the
split is exact, not merely close.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Bool, Float64, Float64MultiArray
from std_srvs.srv import SetBool

from ros_harness import REPO, NodeProcess, RosClient, domain_id

ARRAY_DOMAIN = domain_id(module_offset=27)
TWIST_DOMAIN = domain_id(module_offset=28)
START_TIMEOUT_S = 120.0  # two fresh processes import torch and MuJoCo on a busy 2-core box
STEPS = 40  # per episode; the episode ends at max_steps, then the simulator stops stepping
CHECKPOINT = REPO / "test" / "data" / "reach_bc_v1.pt"  # a shipped BC policy over the 39-d state
SETTLE_S = 0.5  # after discovery, before the policy is enabled
ARRAY = {"output_topic": "sim_node/action"}
SPLIT = {"output_type": "twist_stamped", "output_topic": "sim_node/twist",
         "gripper_topic": "sim_node/gripper", "output_frame_id": "base"}


def run_episode(folder: Path, domain: int, output: dict[str, str]) -> dict[str, list]:
    """One lock-step episode of the shipped BC policy on reach-v3 (episode 0): the task state
    after every step, the success flags and the commands the policy published. The policy starts
    disabled and is enabled once this client has discovered its command publishers: the whole
    episode takes well under a second, and no command may pass unseen."""
    sim = NodeProcess("actjepa_ros.sim_node", [
        "--params-file", "config/sim.yaml", "-p", f"max_steps:={STEPS}"],
        folder / f"sim{domain}.log", domain)
    ros = RosClient(domain)
    pol = None
    try:
        got = {"states": ros.collect(Float64MultiArray, "/sim_node/state", depth=1000),
               "success": ros.collect(Bool, "/sim_node/success", depth=1000),
               "array": ros.collect(Float64MultiArray, "/sim_node/action", depth=1000),
               "twist": ros.collect(TwistStamped, "/sim_node/twist", depth=1000),
               "gripper": ros.collect(Float64, "/sim_node/gripper", depth=1000)}
        assert ros.spin_until(lambda: got["states"], START_TIMEOUT_S), sim.log()
        pol = NodeProcess("actjepa_ros.policy_node", [
            "--params-file", "config/policy.yaml", "-p", f"checkpoint:={CHECKPOINT}",
            "-p", "use_sim_time:=true", "-p", "max_delta:=[2.0]", "-p", "start_enabled:=false",
            *[arg for k, v in output.items() for arg in ("-p", f"{k}:={v}")]],
            folder / f"policy{domain}.log", domain)
        topics = [f"/{v}" for k, v in output.items() if k.endswith("_topic")]
        assert ros.spin_until(lambda: all(ros.node.count_publishers(t) for t in topics)
                              and "active: disabled" in pol.log(), START_TIMEOUT_S), pol.log()
        ros.spin_for(SETTLE_S)
        assert ros.call(SetBool, "/policy_node/enable", SetBool.Request(data=True)).success
        done = ros.spin_until(lambda: len(got["success"]) >= STEPS, START_TIMEOUT_S)
        assert done, sim.log()[-2000:] + pol.log()[-3000:]
        ros.spin_for(0.5)  # anything late (there must be nothing) would show up
        assert "refused" not in sim.log(), sim.log()[-2000:]
    finally:
        ros.close()
        if pol is not None:
            pol.stop()
        sim.stop()
    return got


def test_a_twist_and_gripper_episode_equals_the_4d_array_episode_step_for_step(tmp_path):
    array = run_episode(tmp_path, ARRAY_DOMAIN, ARRAY)
    split = run_episode(tmp_path, TWIST_DOMAIN, SPLIT)
    assert len(array["success"]) == len(split["success"]) == STEPS  # one step per command
    assert not split["array"] and not array["twist"] and not array["gripper"]

    # the commands: the twist's linear part and the gripper are the array's four values
    sent = np.array([m.data for m in array["array"]])
    twists = np.array([[m.twist.linear.x, m.twist.linear.y, m.twist.linear.z]
                       for m in split["twist"]])
    grips = np.array([[m.data] for m in split["gripper"]])
    # one command per observation: STEPS, and one more for the last one (dropped: episode over)
    assert len(sent) == len(twists) == len(grips) == STEPS + 1, (len(sent), len(twists),
                                                                 len(grips))
    np.testing.assert_array_equal(np.hstack([twists, grips]), sent)
    assert all(m.header.frame_id == "base" for m in split["twist"])
    assert not any(m.twist.angular.x or m.twist.angular.y or m.twist.angular.z
                   for m in split["twist"])  # the gripper effort is not sent as a rotation
    assert np.abs(sent[:, :3]).max() > 0.1  # the hand is driven

    # the arm: the very same task state after every step (the start state may be re-sent)
    by_array = np.array([m.data for m in array["states"][-STEPS:]])
    by_split = np.array([m.data for m in split["states"][-STEPS:]])
    np.testing.assert_array_equal(by_split, by_array)
    assert [m.data for m in split["success"]] == [m.data for m in array["success"]]
    assert np.abs(by_array[-1, :3] - by_array[0, :3]).max() > 0.01  # the hand moved
