"""ROS image conventions: image_transport's topic naming, cv_bridge beside the numpy path.

``image_transport: compressed`` subscribes to ``<image_topic>/compressed`` (what image_transport's
compressed plugin publishes for a camera's base topic): checked on a real policy_node process
over real DDS. cv_bridge and the numpy path give identical arrays, where cv_bridge can be imported:
it ships with ROS installs. The registry's pure-Python ``cv-bridge`` wheel (1.13, a port of ROS 1's
bridge) does not serve: run against ROS 2 messages, its ``imgmsg_to_cv2`` refuses every rgb8 and
bgr8 Image ("buffer is too small for requested array"), padded rows or not, and only mono8
converts; so it is not installed, and these two tests skip without a ROS install.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float64MultiArray

from actjepa_core.config import TrainConfig, to_dict
from actjepa_core.data import messages
from actjepa_core.data.normalise import Normaliser
from actjepa_core.models import ACTJEPA
from actjepa_core.policies import FrozenWorld, NearestNeighbourPolicy
from actjepa_core.policies.configs import NNConfig
from actjepa_ros import conversions as conv
from actjepa_ros.observations import image_transport_topic, plan_inputs
from actjepa_ros.params import POLICY_PARAMS

from ros_harness import NodeProcess, RosClient, domain_id

DOMAIN = domain_id(module_offset=23)
START_TIMEOUT_S = 90.0  # a fresh process imports torch: slow on a busy 2-core box
REPLY_TIMEOUT_S = 10.0
IMAGE = (16, 16, 3)
ACTIONS = {0: [0.5, 0.5], 240: [-0.5, -0.5]}  # image brightness -> the policy's action
BASE = "/itest/camera/image_raw"
OUTPUT = "/itest/action"
DEFAULTS = {s.name: (list(s.default) if isinstance(s.default, (list, tuple)) else s.default)
            for s in POLICY_PARAMS}
IMAGE_SPEC = {"image": {"shape": list(IMAGE), "dtype": "uint8"}}


# ---- naming (pure) ----------------------------------------------------------------------------
@pytest.mark.parametrize("base, transport, topic", [
    ("camera/image_raw", "raw", "camera/image_raw"),
    ("camera/image_raw", "compressed", "camera/image_raw/compressed"),
    ("/wrist/image_raw/", "compressed", "/wrist/image_raw/compressed"),
    ("/wrist/image_raw/compressed", "compressed", "/wrist/image_raw/compressed"),  # spelled out
])
def test_image_transport_topic_names(base, transport, topic):
    assert image_transport_topic(base, transport) == topic


def test_the_image_input_is_planned_on_the_transport_topic():
    p = {**DEFAULTS, "state_key": "", "image_topic": BASE, "image_transport": "compressed"}
    assert plan_inputs(p, IMAGE_SPEC)["image"].topic == BASE + "/compressed"
    assert plan_inputs({**p, "image_transport": "raw"}, IMAGE_SPEC)["image"].topic == BASE


# ---- cv_bridge and the numpy path ------------------------------------------------------------
def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    height = pixels.shape[0]
    rows = np.hstack([pixels.reshape(height, -1), np.zeros((height, pad), np.uint8)])
    return Image(height=height, width=pixels.shape[1], encoding=encoding, step=rows.shape[1],
                 data=rows.tobytes())


def encodings_of(picture: np.ndarray) -> dict[str, np.ndarray]:
    alpha = np.full(picture.shape[:2] + (1,), 7, np.uint8)
    return {"rgb8": picture, "bgr8": picture[:, :, ::-1],
            "rgba8": np.concatenate([picture, alpha], axis=2),
            "bgra8": np.concatenate([picture[:, :, ::-1], alpha], axis=2),
            "mono8": picture[:, :, :1]}


@pytest.mark.parametrize("pad", [0, 5])
def test_cv_bridge_and_the_numpy_path_give_identical_arrays(pad):
    pytest.importorskip("cv_bridge", reason="cv_bridge comes with ROS installs only; the "
                        "cv-bridge 1.13 wheel refuses ROS 2 rgb8/bgr8 Images (module docstring)")
    assert conv.CvBridge is not None
    picture = np.random.default_rng(pad).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    for encoding, stored in encodings_of(picture).items():
        assert encoding in conv.NUMPY_ENCODINGS
        msg = raw_image(np.ascontiguousarray(stored), encoding, pad)
        by_numpy = messages.image_to_rgb(msg)
        by_bridge = conv._bridge_to_rgb(msg)
        assert by_bridge.dtype == by_numpy.dtype == np.uint8, encoding
        np.testing.assert_array_equal(by_bridge, by_numpy, err_msg=encoding)
        np.testing.assert_array_equal(conv.image_to_rgb(msg), by_numpy, err_msg=encoding)


def test_without_cv_bridge_the_numpy_path_converts(monkeypatch):
    monkeypatch.setattr(conv, "CvBridge", None)
    picture = np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    for encoding, stored in encodings_of(picture).items():
        msg = raw_image(np.ascontiguousarray(stored), encoding, pad=3)
        expected = picture if encoding != "mono8" else np.repeat(picture[:, :, :1], 3, axis=2)
        np.testing.assert_array_equal(conv.image_to_rgb(msg), expected)


# ---- the node subscribes to <image_topic>/compressed -----------------------------------------
def write_brightness_policy(path) -> None:
    """A real nearest-neighbour policy file on an image-only encoder (untrained weights): a dark
    picture maps to ACTIONS[0], a bright one to ACTIONS[240]."""
    torch.manual_seed(0)
    config = TrainConfig()
    config.model.latent_dim, config.model.state_hidden = 16, [16]
    config.model.image_channels, config.model.predictor_hidden = [4, 4], [16]
    model = ACTJEPA({"image": IMAGE}, 2, config.model)
    stats = Normaliser({}, {}, -torch.ones(2), torch.ones(2))
    world = FrozenWorld.from_state({"config": to_dict(config), "obs_spec": IMAGE_SPEC,
                                    "action_dim": 2, "stats": stats.state_dict(),
                                    "model": model.state_dict()})
    memory = torch.cat([world.model.encode(world.processor.to_model(
        {"image": np.full(IMAGE, level, np.uint8)})) for level in ACTIONS])
    NearestNeighbourPolicy(world, NNConfig(), memory,
                           torch.tensor(list(ACTIONS.values()))).save(path)


@pytest.fixture(scope="module")
def compressed_node(tmp_path_factory):
    folder = tmp_path_factory.mktemp("transport")
    write_brightness_policy(folder / "bright.pt")
    overrides = {"checkpoint": str(folder / "bright.pt"), "mode": "lockstep",
                 "input_qos": "reliable", "state_key": "''", "joint_states_key": "''",
                 "image_topic": BASE, "image_key": "image", "image_transport": "compressed",
                 "check_header_stamps": "false", "output_topic": OUTPUT, "max_delta": "[2.0]"}
    args = ["--params-file", "config/policy.yaml"]
    for key, value in overrides.items():
        args += ["-p", f"{key}:={value}"]
    proc = NodeProcess("actjepa_ros.policy_node", args, folder / "policy.log", DOMAIN)
    client = RosClient(DOMAIN)
    yield proc, client
    client.close()
    proc.stop()


def compressed(level: int, fmt: str) -> CompressedImage:
    picture = np.full(IMAGE, level, np.uint8)
    ok, data = cv2.imencode(f".{fmt}", picture[:, :, ::-1])  # OpenCV writes BGR files
    assert ok
    return CompressedImage(format=f"rgb8; {fmt} compressed bgr8", data=data.tobytes())


def test_compressed_transport_subscribes_to_the_compressed_subtopic(compressed_node):
    node, ros = compressed_node
    actions = ros.collect(Float64MultiArray, OUTPUT)
    camera = ros.publisher(CompressedImage, BASE + "/compressed")
    assert ros.wait_for_subscribers(camera, START_TIMEOUT_S), node.log()
    assert ros.spin_until(lambda: "active: commanding" in node.log(), START_TIMEOUT_S), node.log()
    assert f"{BASE}/compressed -> 'image'" in node.log()
    # nothing listens on the base topic itself: that is where raw Images would go
    assert ros.node.count_subscribers(BASE) == 0
    assert ros.node.count_subscribers(BASE + "/compressed") == 1
    for level, fmt in ((240, "png"), (0, "jpg"), (240, "jpg")):
        count = len(actions)
        camera.publish(compressed(level, fmt))
        assert ros.spin_until(lambda c=count: len(actions) > c, REPLY_TIMEOUT_S), node.log()
        np.testing.assert_allclose(actions[-1].data, ACTIONS[level])
