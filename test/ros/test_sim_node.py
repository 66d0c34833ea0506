"""sim_node as a separate process over real DDS: topics, lock-step, reset, expert, realtime.

The lock-step test replays the same actions in an in-process SimArm and expects the very same
states: stepping over ROS adds nothing and loses nothing.
"""
from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray
from std_srvs.srv import Trigger

from actjepa_core.sim.arm import ARM_JOINTS, CAMERA, CAMERA_ROTATIONS, SimArm
from actjepa_core.sim.experts import TASKS
from actjepa_ros import params, security, sim_cameras

from ros_harness import NodeProcess, domain_id

DOMAIN = domain_id(module_offset=0)
START_TIMEOUT_S = 60.0  # a fresh process imports MuJoCo and Meta-World: seconds on a busy box
REPLY_TIMEOUT_S = 10.0
QUIET_S = 0.5  # how long "nothing arrives" is watched
IMAGE_SIZE = 24
HAND_X = 0
WRIST = "behindGripper"  # Meta-World's camera on the hand


@pytest.fixture
def start_sim(tmp_path):
    started: list[NodeProcess] = []

    def start(*overrides: str) -> NodeProcess:
        args = ["--params-file", "config/sim.yaml"]
        for item in overrides:
            args += ["-p", item]
        proc = NodeProcess("actjepa_ros.sim_node", args, tmp_path / f"sim{len(started)}.log",
                           DOMAIN)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def test_task_choices_match_the_simulator():
    assert params.SIM_TASKS == tuple(sorted(TASKS))


def test_camera_topics_follow_the_observation_keys_and_the_graph_lists_them():
    """The default camera keeps image_topic (key ``image``), any other C gets <ns>/C/<last>
    (key ``image_C``); the parameter names every simulated camera; the SROS2 policy allows each
    camera's topic."""
    assert sim_cameras.DEFAULT_CAMERA == CAMERA
    assert all(c in sim_cameras.CAMERAS_PARAM.description for c in CAMERA_ROTATIONS)
    assert sim_cameras.camera_topic("camera/image_raw", CAMERA) == "camera/image_raw"
    assert sim_cameras.camera_topic("camera/image_raw", WRIST) == f"camera/{WRIST}/image_raw"
    assert sim_cameras.camera_topic("image", "topview") == "topview/image"
    p = {s.name: s.default for s in params.SIM_PARAMS}
    assert sim_cameras.camera_outputs(p) == []  # image_size 0: no camera
    p.update(image_size=32, cameras=[CAMERA, WRIST])
    ends = security.sim_node_endpoints(p)
    assert {"/camera/image_raw", f"/camera/{WRIST}/image_raw"} <= ends.publish


def test_lockstep_publishes_after_each_action_and_matches_an_in_process_rollout(tester, start_sim):
    sim = start_sim("max_steps:=8", f"image_size:={IMAGE_SIZE}", "lockstep_republish_s:=2.0")
    states = tester.collect(Float64MultiArray, "/sim_node/state")
    joints = tester.collect(JointState, "/joint_states")
    images = tester.collect(Image, "/camera/image_raw")
    clocks = tester.collect(Clock, "/clock")
    success = tester.collect(Bool, "/sim_node/success")
    actions = tester.publisher(Float64MultiArray, "/sim_node/action")
    # the start observation (re-sent until someone answers: we may have joined late)
    assert tester.spin_until(lambda: states and joints and images, START_TIMEOUT_S), sim.log()
    assert tester.wait_for_subscribers(actions, REPLY_TIMEOUT_S)
    tester.spin_for(QUIET_S)  # let a re-sent start observation land before counting

    first = joints[-1]
    assert list(first.name) == list(ARM_JOINTS) and len(first.position) == len(ARM_JOINTS)
    image = images[-1]
    assert (image.encoding, image.height, image.width) == ("rgb8", IMAGE_SIZE, IMAGE_SIZE)
    assert image.header.stamp == first.header.stamp  # one tick, one stamp
    assert any(c.clock == first.header.stamp for c in clocks)

    arm = SimArm("reach-v3", seed=0, max_steps=8)
    expected = [arm.reset(0)["state"]]
    assert np.array_equal(np.float32(states[-1].data), expected[0])
    plan = [[1.0, 0.0, 0.0, 0.0], [1.0, 0.5, -0.5, 1.0], [-0.3, 0.2, 0.1, -1.0]]
    for action in plan:
        count = len(ticks(joints))
        actions.publish(Float64MultiArray(data=action))
        assert tester.spin_until(lambda n=count: len(ticks(joints)) > n, REPLY_TIMEOUT_S), \
            sim.log()
        tester.spin_for(0.1)
        assert len(ticks(joints)) == count + 1  # exactly one step per action
        expected.append(arm.step(np.array(action))[0]["state"])
        assert np.array_equal(np.float32(states[-1].data), expected[-1])
    assert expected[-1][HAND_X] != expected[0][HAND_X]  # the arm moved
    assert joints[-1].header.stamp != first.header.stamp and len(success) >= len(plan)
    arm.close()

    # a malformed action is refused (and said so), nothing steps
    count = len(states)
    actions.publish(Float64MultiArray(data=[1.0, 0.0, 0.0]))
    actions.publish(Float64MultiArray(data=[float("nan"), 0.0, 0.0, 0.0]))
    tester.spin_for(QUIET_S)
    assert len(states) == count
    assert "refused action" in sim.log() and "expected 4" in sim.log()

    # ~/reset: the next episode starts and its first observation is published
    reply = tester.call(Trigger, "/sim_node/reset", Trigger.Request())
    assert reply.success and reply.message.startswith("episode 1 of reach-v3")
    assert tester.spin_until(lambda: len(states) > count, REPLY_TIMEOUT_S)
    episode_1 = SimArm("reach-v3", seed=0)
    assert np.array_equal(np.float32(states[-1].data), episode_1.reset(1)["state"])
    episode_1.close()
    assert sim.alive()


def test_expert_mode_drives_the_arm_and_publishes_its_actions(tester, start_sim):
    sim = start_sim("expert:=true", "rate_hz:=100.0", "max_steps:=20")
    actions = tester.collect(Float64MultiArray, "/sim_node/action")
    states = tester.collect(Float64MultiArray, "/sim_node/state")
    assert tester.spin_until(lambda: len(actions) >= 5 and len(states) >= 5, START_TIMEOUT_S), \
        sim.log()
    tester.spin_until(lambda: "episode 0 ended" in sim.log(), REPLY_TIMEOUT_S)
    assert "episode 0 ended after 20 steps" in sim.log()
    arm = SimArm("reach-v3", seed=0)
    arm.reset(0)
    # every published action is the expert's for the state the arm was in
    replay = []
    for _ in range(len(actions)):
        replay.append(arm.expert_action())
        arm.step(replay[-1])
    arm.close()
    got = np.array([a.data for a in actions], dtype=np.float32)
    np.testing.assert_allclose(got, np.array(replay), atol=1e-7)
    assert np.abs(got[:, :3]).max() > 0.1  # it actually moves the hand


def test_realtime_holds_the_last_action_then_holds_still_after_the_timeout(tester, start_sim):
    sim = start_sim("mode:=realtime", "rate_hz:=50.0", "action_timeout_s:=0.3")
    states = tester.collect(Float64MultiArray, "/sim_node/state")
    actions = tester.publisher(Float64MultiArray, "/sim_node/action")
    assert tester.spin_until(lambda: len(states) >= 3, START_TIMEOUT_S), sim.log()
    assert tester.wait_for_subscribers(actions, REPLY_TIMEOUT_S)
    start = len(states)
    actions.publish(Float64MultiArray(data=[1.0, 0.0, 0.0, 0.0]))
    tester.spin_for(1.0)  # 50 Hz: ~15 steps pushing +x, then the timeout
    hand_x = np.array([s.data[HAND_X] for s in states[start:]])
    assert len(hand_x) >= 10  # it ticks by itself
    assert hand_x.max() - hand_x[0] > 0.01  # the held action moved the hand
    settled = hand_x[-5:]  # long after the timeout: held still
    assert np.ptp(settled) < 1e-3, settled
    assert "holding still" in sim.log()


def twist(x: float, y: float, z: float, frame: str = "base", turn: float = 0.0) -> TwistStamped:
    msg = TwistStamped()
    msg.header.frame_id = frame
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = x, y, z
    msg.twist.angular.z = turn
    return msg


def test_lockstep_steps_once_a_twist_and_a_gripper_command_are_both_in(tester, start_sim):
    """Either order; the twist scaled by twist_scale and clipped like an array action; a twist in
    another frame, or a gripper command that is not finite, is refused with one line and steps
    nothing."""
    sim = start_sim("max_steps:=8", "twist_scale:=2.0", "lockstep_republish_s:=2.0")
    states = tester.collect(Float64MultiArray, "/sim_node/state")
    twists = tester.publisher(TwistStamped, "/sim_node/twist")
    grips = tester.publisher(Float64, "/sim_node/gripper")
    assert tester.spin_until(lambda: states, START_TIMEOUT_S), sim.log()
    assert tester.wait_for_subscribers(twists, REPLY_TIMEOUT_S)
    assert tester.wait_for_subscribers(grips, REPLY_TIMEOUT_S)
    tester.spin_for(QUIET_S)
    arm = SimArm("reach-v3", seed=0, max_steps=8)
    arm.reset(0)
    steps = [  # (messages in arrival order, the 4-d action they make with twist_scale 2)
        ((twist(0.5, 0.0, 0.0), Float64(data=1.0)), [1.0, 0.0, 0.0, 1.0]),
        ((Float64(data=-1.0), twist(0.1, -0.2, 0.9, frame="")), [0.2, -0.4, 1.0, -1.0]),
    ]
    for messages, action in steps:
        count = len(states)
        first, second = messages
        (grips if isinstance(first, Float64) else twists).publish(first)
        tester.spin_for(QUIET_S)
        assert len(states) == count  # half a command: no step
        (grips if isinstance(second, Float64) else twists).publish(second)
        assert tester.spin_until(lambda n=count: len(states) > n, REPLY_TIMEOUT_S), sim.log()
        tester.spin_for(0.1)
        assert len(states) == count + 1
        expected = arm.step(np.array(action))[0]["state"]  # 0.9 x 2 clipped to 1 by either path
        np.testing.assert_array_equal(np.float32(states[-1].data), expected)
    arm.close()

    count = len(states)
    twists.publish(twist(0.1, 0.0, 0.0, frame="tool0"))  # (rotations: test_conversions)
    grips.publish(Float64(data=float("nan")))
    tester.spin_for(QUIET_S)
    assert len(states) == count
    log = sim.log()
    assert "refused command on ~/twist: twist in frame 'tool0'; expected 'base'" in log, log
    assert "refused command on ~/gripper: nan is not finite" in log, log


def test_each_camera_is_published_on_its_own_topic_with_its_own_frame(tester, start_sim):
    """cameras [corner4, behindGripper]: the scene on camera/image_raw (as with one camera), the
    wrist on camera/behindGripper/image_raw; both rgb8 at image_size, stamped with the tick, the
    very frames the simulator renders in-process, and a new frame of each after every step."""
    sim = start_sim("max_steps:=8", f"image_size:={IMAGE_SIZE}", "lockstep_republish_s:=2.0",
                    f"cameras:=[{CAMERA}, {WRIST}]")
    scene = tester.collect(Image, "/camera/image_raw")
    wrist = tester.collect(Image, f"/camera/{WRIST}/image_raw")
    joints = tester.collect(JointState, "/joint_states")
    actions = tester.publisher(Float64MultiArray, "/sim_node/action")
    assert tester.spin_until(lambda: scene and wrist and joints, START_TIMEOUT_S), sim.log()
    assert tester.wait_for_subscribers(actions, REPLY_TIMEOUT_S)
    tester.spin_for(QUIET_S)
    assert f"cameras corner4 -> /camera/image_raw (camera), {WRIST} -> /camera/{WRIST}/image_raw " \
           f"(camera_{WRIST}), {IMAGE_SIZE}x{IMAGE_SIZE} rgb8" in sim.log(), sim.log()

    arm = SimArm("reach-v3", seed=0, image_size=IMAGE_SIZE, cameras=("corner4", WRIST))
    expected = [arm.reset(0)]
    count = (len(ticks(scene)), len(ticks(wrist)))
    action = [1.0, 0.5, -0.5, 1.0]
    actions.publish(Float64MultiArray(data=action))
    assert tester.spin_until(lambda: len(ticks(scene)) > count[0] and len(ticks(wrist)) > count[1],
                             REPLY_TIMEOUT_S), sim.log()
    tester.spin_for(0.2)
    assert (len(ticks(scene)), len(ticks(wrist))) == (count[0] + 1, count[1] + 1)  # one per step
    expected.append(arm.step(np.array(action))[0])
    arm.close()
    for got, key, frame in ((scene, "image", "camera"),
                            (wrist, f"image_{WRIST}", f"camera_{WRIST}")):
        for msg, obs in zip(list(ticks(got).values())[-2:], expected):  # the start tick, the step's
            assert (msg.encoding, msg.height, msg.width, msg.header.frame_id) == (
                "rgb8", IMAGE_SIZE, IMAGE_SIZE, frame)
            np.testing.assert_array_equal(rgb(msg), obs[key])
    assert scene[-1].header.stamp == wrist[-1].header.stamp == joints[-1].header.stamp
    assert np.abs(rgb(scene[-1]).astype(int) - rgb(wrist[-1])).mean() > 10  # two views


def ticks(msgs: list) -> dict[tuple[int, int], object]:
    """The newest message of each tick (header stamp), in tick order: an observation re-sent
    while no action comes (lockstep_republish_s) keeps its tick, so it is not a step."""
    return {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in msgs}


def rgb(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def test_an_unknown_camera_is_refused_in_one_line_naming_the_parameter(start_sim):
    sim = start_sim(f"image_size:={IMAGE_SIZE}", "cameras:=[corner4, wrist]")
    sim.proc.wait(START_TIMEOUT_S)
    assert sim.proc.returncode == 2, sim.log()
    errors = [line for line in sim.log().splitlines() if "ERROR" in line]
    assert len(errors) == 1, sim.log()
    assert "cannot start: parameter cameras: no simulated camera 'wrist'; expected one of" in \
        errors[0] and WRIST in errors[0], errors[0]
