"""Several cameras on policy_node (issue 27): a scene camera on raw Images, a wrist camera on
CompressedImage, and the joint states, as a real cell has them.

policy_node runs as a separate process over real DDS with a real policy file whose observation has
two image keys and a joint vector; the test publishes the three streams itself. Actions flow only
while every camera's newest frame and the joint states are fresh (``stale_timeout_s``, judged at
every tick in realtime mode): a camera that never publishes is named in one line and nothing is
published; a camera whose frames lag beyond the limit stops the actions until it catches up.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rclpy.duration import Duration
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray

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
SPEC = {"scene": {"shape": list(IMAGE), "dtype": "uint8"},
        "wrist": {"shape": list(IMAGE), "dtype": "uint8"},
        "joints": {"shape": [len(JOINTS)], "dtype": "float32"}}
SCENE, WRIST = "/ctest/scene/image_raw", "/ctest/wrist/image_raw"
TOPICS = {"joints": "/ctest/joint_states", "action": "/ctest/action"}


def write_two_camera_policy(path: Path) -> None:
    """A real nearest-neighbour policy file on a two-camera + joints encoder (untrained weights:
    the node's plumbing is under test, not control)."""
    torch.manual_seed(0)
    config = TrainConfig()
    config.model.latent_dim, config.model.state_hidden = 16, [16]
    config.model.image_channels, config.model.predictor_hidden = [4, 4], [16]
    shapes = {k: tuple(v["shape"]) for k, v in SPEC.items()}
    model = ACTJEPA(shapes, 4, config.model)
    stats = Normaliser({"joints": torch.zeros(len(JOINTS))}, {"joints": torch.ones(len(JOINTS))},
                       -torch.ones(4), torch.ones(4))
    world = FrozenWorld.from_state({"config": to_dict(config), "obs_spec": SPEC, "action_dim": 4,
                                    "stats": stats.state_dict(), "model": model.state_dict()})
    obs = {"scene": np.zeros(IMAGE, np.uint8), "wrist": np.zeros(IMAGE, np.uint8),
           "joints": np.zeros(len(JOINTS), np.float32)}
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
           wrist_lag_s: float = 0.0) -> None:
    """Publish joint states and both cameras at 20 Hz, stamped now (the wrist camera's frames
    ``wrist_lag_s`` old; none at all without ``wrist``)."""
    ok, png = cv2.imencode(".png", np.zeros(IMAGE, np.uint8))
    assert ok
    steps = int(seconds / PERIOD_S)
    for _ in range(steps):
        now = ros.node.get_clock().now()
        joints = JointState(name=JOINTS, position=[0.0] * len(JOINTS))
        joints.header.stamp = now.to_msg()
        pubs["joints"].publish(joints)
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
