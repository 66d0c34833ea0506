"""Several cameras on policy_node (issue 27): a scene camera on raw Images, a wrist camera on
CompressedImage, and the joint states, as a real cell has them.

policy_node runs as a separate process over real DDS with a real policy file whose observation has
two image keys and a joint vector; the test publishes the three streams itself. Actions flow only
while every camera's newest frame and the joint states are fresh (``stale_timeout_s``, judged at
every tick in realtime mode): a camera that never publishes is named in one line and nothing is
published; a camera whose frames lag beyond the limit stops the actions until it catches up.
The shipped two-camera MoveIt Servo example (config/policy_two_cameras_servo.yaml) loads, holds
everything until ``~/enable``, then sends the twist and the gripper command.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from geometry_msgs.msg import TwistStamped
from rclpy.duration import Duration
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import SetBool

from actjepa_core.config import TrainConfig, to_dict
from actjepa_core.data.normalise import Normaliser
from actjepa_core.models import ACTJEPA
from actjepa_core.policies import FrozenWorld, NearestNeighbourPolicy
from actjepa_core.policies.configs import NNConfig
from actjepa_ros.conversions import rgb_to_image

from ros_harness import NodeProcess, RosClient, domain_id

DOMAIN = domain_id(module_offset=29)
START_TIMEOUT_S = 90.0  # a fresh process imports torch: slow on a busy 2-core box
STALE_S = 1.0  # the node's stale_timeout_s: generous, the test's own loop runs on a busy box
LAG_S = 3 * STALE_S  # how old the lagging camera's frames are
PERIOD_S = 0.05  # the test publishes every stream at 20 Hz
WATCH_S = 2.0  # how long a stream is watched
IMAGE = (16, 16, 3)
JOINTS = [f"j{i}" for i in range(9)]
SERVO_DOMAIN = domain_id(module_offset=30)  # a second policy_node, under the same name
SERVO_FILE = "config/policy_two_cameras_servo.yaml"
SERVO_JOINTS = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
                "wrist_2_joint", "wrist_3_joint"]  # as in SERVO_FILE
SERVO_TOPICS = {"joints": "/joint_states", "scene": "/scene_camera/color/image_raw/compressed",
                "wrist": "/wrist_camera/color/image_raw/compressed",
                "twist": "/servo_node/delta_twist_cmds", "gripper": "/gripper/command"}
SCENE, WRIST = "/ctest/scene/image_raw", "/ctest/wrist/image_raw"
TOPICS = {"joints": "/ctest/joint_states", "action": "/ctest/action"}


def write_two_camera_policy(path: Path, joints: int = len(JOINTS)) -> None:
    """A real nearest-neighbour policy file on a two-camera + joints encoder (untrained weights:
    the node's plumbing is under test, not control): it always answers 0.5 per dimension."""
    torch.manual_seed(0)
    spec = {"scene": {"shape": list(IMAGE), "dtype": "uint8"},
            "wrist": {"shape": list(IMAGE), "dtype": "uint8"},
            "joints": {"shape": [joints], "dtype": "float32"}}
    config = TrainConfig()
    config.model.latent_dim, config.model.state_hidden = 16, [16]
    config.model.image_channels, config.model.predictor_hidden = [4, 4], [16]
    model = ACTJEPA({k: tuple(v["shape"]) for k, v in spec.items()}, 4, config.model)
    stats = Normaliser({"joints": torch.zeros(joints)}, {"joints": torch.ones(joints)},
                       -torch.ones(4), torch.ones(4))
    world = FrozenWorld.from_state({"config": to_dict(config), "obs_spec": spec, "action_dim": 4,
                                    "stats": stats.state_dict(), "model": model.state_dict()})
    obs = {"scene": np.zeros(IMAGE, np.uint8), "wrist": np.zeros(IMAGE, np.uint8),
           "joints": np.zeros(joints, np.float32)}
    memory = world.model.encode(world.processor.to_model(obs))
    NearestNeighbourPolicy(world, NNConfig(), memory, torch.full((1, 4), 0.5)).save(path)


@pytest.fixture(scope="module")
def cameras(tmp_path_factory):
    """The node (realtime, two cameras: scene raw, wrist compressed) and a client."""
    folder = tmp_path_factory.mktemp("cameras")
    write_two_camera_policy(folder / "two_cameras.pt")
    overrides = {"checkpoint": str(folder / "two_cameras.pt"), "mode": "realtime",
                 "control_rate_hz": "20.0", "stale_timeout_s": str(STALE_S),
                 "warn_throttle_s": "0.5", "state_key": "''",
                 "joint_states_topic": TOPICS["joints"], "joint_states_key": "joints",
                 "joint_names": f"[{', '.join(JOINTS)}]", "image_keys": "[scene, wrist]",
                 "image_topics": f"[{SCENE}, {WRIST}]", "image_transports": "[raw, compressed]",
                 "output_topic": TOPICS["action"], "max_delta": "[2.0]"}
    args = ["--params-file", "config/policy.yaml"]
    for key, value in overrides.items():
        args += ["-p", f"{key}:={value}"]
    proc = NodeProcess("actjepa_ros.policy_node", args, folder / "policy.log", DOMAIN)
    client = RosClient(DOMAIN)
    pubs = {"joints": client.publisher(JointState, TOPICS["joints"]),
            "scene": client.publisher(Image, SCENE),
            "wrist": client.publisher(CompressedImage, WRIST + "/compressed")}
    actions = client.collect(Float64MultiArray, TOPICS["action"], depth=1000)
    for pub in pubs.values():
        assert client.wait_for_subscribers(pub, START_TIMEOUT_S), proc.log()
    assert client.spin_until(lambda: "active: commanding" in proc.log(), START_TIMEOUT_S), \
        proc.log()
    yield proc, client, pubs, actions
    client.close()
    proc.stop()


def stream(ros: RosClient, pubs: dict, seconds: float, wrist: bool = True,
           wrist_lag_s: float = 0.0, names: list[str] = JOINTS) -> None:
    """Publish joint states and both cameras at 20 Hz, stamped now (the wrist camera's frames
    ``wrist_lag_s`` old; none at all without ``wrist``); the scene camera as a raw Image unless
    its publisher takes CompressedImage."""
    ok, png = cv2.imencode(".png", np.zeros(IMAGE, np.uint8))
    assert ok
    steps = int(seconds / PERIOD_S)
    for _ in range(steps):
        now = ros.node.get_clock().now()
        joints = JointState(name=names, position=[0.0] * len(names))
        joints.header.stamp = now.to_msg()
        pubs["joints"].publish(joints)
        if pubs["scene"].msg_type is CompressedImage:
            scene = CompressedImage(format="png", data=png.tobytes())
            scene.header.stamp = now.to_msg()
            pubs["scene"].publish(scene)
        else:
            pubs["scene"].publish(rgb_to_image(np.zeros(IMAGE, np.uint8), now.to_msg(), "scene"))
        if wrist:
            frame = CompressedImage(format="png", data=png.tobytes())
            frame.header.stamp = (now - Duration(seconds=wrist_lag_s)).to_msg()
            pubs["wrist"].publish(frame)
        ros.spin_for(PERIOD_S)


def test_a_camera_that_never_publishes_is_named_and_no_action_is_published(cameras):
    node, ros, pubs, actions = cameras
    assert f"{SCENE} -> 'scene', {WRIST}/compressed -> 'wrist'" in node.log(), node.log()
    assert ros.node.count_subscribers(WRIST) == 0  # the wrist is read on its compressed topic
    stream(ros, pubs, WATCH_S, wrist=False)
    assert not actions
    assert (f"not acting: image/wrist: no valid message yet (topic {WRIST}/compressed)"
            in node.log()), node.log()


def test_actions_flow_while_both_cameras_and_the_joints_are_fresh(cameras):
    node, ros, pubs, actions = cameras
    stream(ros, pubs, WATCH_S)
    assert len(actions) >= 5, node.log()[-3000:]
    np.testing.assert_allclose(actions[-1].data, [0.5] * 4)  # the policy's answer, unclipped


def test_a_camera_lagging_beyond_the_age_limit_stops_the_actions_until_it_catches_up(cameras):
    node, ros, pubs, actions = cameras
    stream(ros, pubs, STALE_S + 0.5, wrist_lag_s=LAG_S)  # the last fresh wrist frame ages out
    count = len(actions)
    stream(ros, pubs, WATCH_S, wrist_lag_s=LAG_S)
    assert len(actions) == count, node.log()[-3000:]
    assert "not acting on image/wrist from " + WRIST + "/compressed: image/wrist: message " \
        "stamped" in node.log(), node.log()[-3000:]
    stream(ros, pubs, WATCH_S)  # it catches up: actions again
    assert len(actions) > count + 3, node.log()[-3000:]


def test_the_two_camera_servo_example_holds_until_enabled_then_sends_twist_and_gripper(
        tmp_path):
    write_two_camera_policy(tmp_path / "cell.pt", joints=len(SERVO_JOINTS))
    node = NodeProcess("actjepa_ros.policy_node", [
        "--params-file", SERVO_FILE, "-p", f"checkpoint:={tmp_path / 'cell.pt'}",
        "-p", f"checkpoint_dirs:=[{tmp_path}]",
        "-p", f"stale_timeout_s:={STALE_S}"],  # the file's 0.2 s: too tight for a busy test box
        tmp_path / "servo.log", SERVO_DOMAIN)
    ros = RosClient(SERVO_DOMAIN)
    try:
        pubs = {"joints": ros.publisher(JointState, SERVO_TOPICS["joints"]),
                "scene": ros.publisher(CompressedImage, SERVO_TOPICS["scene"]),
                "wrist": ros.publisher(CompressedImage, SERVO_TOPICS["wrist"])}
        twists = ros.collect(TwistStamped, SERVO_TOPICS["twist"], depth=1000)
        grips = ros.collect(Float64, SERVO_TOPICS["gripper"], depth=1000)
        for pub in pubs.values():
            assert ros.wait_for_subscribers(pub, START_TIMEOUT_S), node.log()
        assert ros.spin_until(lambda: "waiting for ~/enable true" in node.log(),
                              START_TIMEOUT_S), node.log()
        assert (f"output twist_stamped on {SERVO_TOPICS['twist']}, gripper on "
                f"{SERVO_TOPICS['gripper']}") in node.log()
        stream(ros, pubs, WATCH_S / 2, names=SERVO_JOINTS)
        assert not twists and not grips  # require_enable: nothing before ~/enable
        assert ros.call(SetBool, "/policy_node/enable", SetBool.Request(data=True)).success
        stream(ros, pubs, WATCH_S, names=SERVO_JOINTS)
    finally:
        ros.close()
        node.stop()
    assert len(twists) >= 5 and len(grips) >= 5, node.log()[-3000:]
    assert all(t.header.frame_id == "base_link" for t in twists)
    linear = np.array([[t.twist.linear.x, t.twist.linear.y, t.twist.linear.z] for t in twists])
    angular = np.array([[t.twist.angular.x, t.twist.angular.y, t.twist.angular.z]
                        for t in twists])
    # ramped from rest by max_delta 0.1 up to the policy's 0.5 (= action_max)
    assert linear[0] == pytest.approx([0.1] * 3) and linear.max() == pytest.approx(0.5)
    assert not angular.any()  # the gripper dimension is not sent as a rotation
    assert grips[-1].data == 0.5  # max_delta 2.0 for the gripper: no ramp
