"""The policy node under faults: one node process over real DDS for all the fault tests of this
folder (a process start costs tens of seconds on a busy machine), its small real policy files, the
feed that publishes its inputs and times its actions, and the helpers the fault kinds share.

Each test reconfigures the node through its lifecycle as it needs and leaves it active, enabled,
in lock-step with the three inputs (JointState -> 4 values, a 2-value vector, a 16x16 image) of a
small real policy file whose answer is +1 for the "low" observation (limited to 0.5, and to steps
of 0.3).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, Float64MultiArray

from actjepa_core.config import TrainConfig, to_dict
from actjepa_core.data.normalise import Normaliser
from actjepa_core.models import ACTJEPA
from actjepa_core.planning.cem import CEMConfig
from actjepa_core.policies import (
    FrozenWorld,
    MPCConfig,
    MPCPolicy,
    NearestNeighbourPolicy,
)
from actjepa_core.policies.configs import NNConfig

from ros_harness import NodeProcess, RosClient, domain_id

DOMAIN = domain_id(module_offset=11)
START_TIMEOUT_S = 120.0  # a fresh process imports torch: slow on a busy 2-core box
REPLY_TIMEOUT_S = 15.0
NS_PER_S = 10**9
NODE = "/policy_node"
TOPICS = {"joints": "/fault/joint_states", "state": "/fault/state", "image": "/fault/image",
          "action": "/fault/action"}
JOINTS = ["j1", "j2", "j3", "j4"]
VECTOR = 2
STATE = len(JOINTS) + VECTOR
IMAGE = (16, 16, 3)
ACTION_DIM = 4
LIMIT, MAX_DELTA = 0.5, 0.3
LOW, HIGH = 0.0, 3.0
WIDE_STATE = 39  # the simulated arm's state: the burst and oversize tests' policy
STALE_S = 0.3
RATE_HZ = 50.0
MARGIN_S = 0.15  # delivery and scheduling on a loaded 2-core machine


# ---- policy files ---------------------------------------------------------------------------
def nn_policy(path: Path, spec: dict[str, tuple[int, ...]], observations: list[dict]) -> None:
    """A real nearest-neighbour policy file: observations[i] maps to action (+1, -1, ...)[i]."""
    world = small_world(spec)
    memory = torch.cat([world.model.encode(world.processor.to_model(o)) for o in observations])
    actions = torch.tensor([[(-1.0) ** i] * ACTION_DIM for i in range(len(observations))])
    NearestNeighbourPolicy(world, NNConfig(), memory, actions).save(path)


def mpc_policy(path: Path, spec: dict[str, tuple[int, ...]]) -> None:
    """A real MPC policy file, small and fast: horizon 2, CEM 16 samples x 2 iterations."""
    MPCPolicy(small_world(spec), MPCConfig(horizon=2, cem=CEMConfig(samples=16, elites=4,
                                                                     iterations=2))).save(path)


def small_world(spec: dict[str, tuple[int, ...]]) -> FrozenWorld:
    """A small (untrained) world model over ``spec``: these tests are about the node."""
    torch.manual_seed(0)
    config = TrainConfig()
    config.model.latent_dim, config.model.state_hidden = 32, [32]
    config.model.image_channels, config.model.predictor_hidden = [8, 8], [32]
    model = ACTJEPA(spec, ACTION_DIM, config.model)
    vectors = {k: s[0] for k, s in spec.items() if len(s) == 1}
    stats = Normaliser({k: torch.zeros(n) for k, n in vectors.items()},
                       {k: torch.ones(n) for k, n in vectors.items()},
                       -torch.ones(ACTION_DIM), torch.ones(ACTION_DIM))
    world = FrozenWorld.from_state({
        "config": to_dict(config),
        "obs_spec": {k: {"shape": list(s), "dtype": "uint8" if len(s) == 3 else "float32"}
                     for k, s in spec.items()},
        "action_dim": ACTION_DIM, "stats": stats.state_dict(), "model": model.state_dict()})
    return world


def observation(level: float) -> dict[str, np.ndarray]:
    return {"state": np.full(STATE, level, np.float32),
            "image": np.full(IMAGE, int(level * 80), np.uint8)}


@pytest.fixture(scope="session")
def policy_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policies")
    nn_policy(folder / "flip.pt", {"state": (STATE,), "image": IMAGE},
              [observation(LOW), observation(HIGH)])
    nn_policy(folder / "wide.pt", {"state": (WIDE_STATE,)},
              [{"state": np.zeros(WIDE_STATE, np.float32)},
               {"state": np.ones(WIDE_STATE, np.float32)}])
    nn_policy(folder / "joints.pt", {"state": (len(JOINTS),)},
              [{"state": observation(level)["state"][:len(JOINTS)]} for level in (LOW, HIGH)])
    nn_policy(folder / "image.pt", {"image": IMAGE},
              [{"image": observation(level)["image"]} for level in (LOW, HIGH)])
    mpc_policy(folder / "mpc.pt", {"state": (WIDE_STATE,)})
    mpc_policy(folder / "mpc_image.pt", {"image": IMAGE})
    return {name: folder / f"{name}.pt"
            for name in ("flip", "wide", "joints", "image", "mpc", "mpc_image")}


# ---- the node -------------------------------------------------------------------------------
def node_args(checkpoint: Path, **changes: str) -> list[str]:
    values = {
        "checkpoint": str(checkpoint), "mode": "lockstep", "input_qos": "reliable",
        "joint_states_topic": TOPICS["joints"], "joint_states_key": "state",
        "joint_names": "[j1, j2, j3, j4]", "state_topic": TOPICS["state"], "state_key": "state",
        "image_topic": TOPICS["image"], "image_key": "image", "image_resize": "false",
        "output_topic": TOPICS["action"], "action_min": f"[{-LIMIT}]",
        "action_max": f"[{LIMIT}]", "max_delta": f"[{MAX_DELTA}]", "stale_timeout_s": "1.0",
        "warn_throttle_s": "1.0", "control_rate_hz": str(RATE_HZ),
        "checkpoint_dirs": f"[{checkpoint.parent}]", **changes}  # the other policy files
    args = ["--params-file", "config/policy.yaml"]
    for key, value in values.items():
        args += ["-p", f"{key}:={value}"]
    return args


class Node:
    """The policy node process (replaced when a test kills and restarts it)."""

    def __init__(self, args: list[str], folder: Path) -> None:
        self.args, self.folder, self.starts = args, folder, 0
        self.proc = self.start()

    def start(self) -> NodeProcess:
        self.starts += 1
        return NodeProcess("actjepa_ros.policy_node", self.args,
                           self.folder / f"policy{self.starts}.log", DOMAIN)

    def log(self) -> str:
        return self.proc.log()


@pytest.fixture(scope="session")
def node(policy_files, tmp_path_factory):
    holder = Node(node_args(policy_files["flip"]), tmp_path_factory.mktemp("logs"))
    yield holder
    holder.proc.stop()


class Feed:
    """Publishes the inputs (stamped ``age`` seconds ago) and times the actions that come back."""

    def __init__(self, ros: RosClient, node: Node) -> None:
        self.ros, self.node = ros, node
        self.transport = "raw"  # the node's image_transport
        self.joints = ros.publisher(JointState, TOPICS["joints"])
        self.state = ros.publisher(Float64MultiArray, TOPICS["state"])
        self.image = ros.publisher(Image, TOPICS["image"])
        self.compressed = ros.publisher(CompressedImage, TOPICS["image"] + "/compressed")
        self.actions: list[tuple[float, np.ndarray]] = []  # (monotonic arrival, action)
        self.latency = ros.collect(Float64, f"{NODE}/latency", depth=100_000)
        ros.node.create_subscription(
            Float64MultiArray, TOPICS["action"],
            lambda m: self.actions.append((time.monotonic(), np.array(m.data))),
            QoSProfile(depth=100_000, reliability=ReliabilityPolicy.RELIABLE))

    def stamp(self, age_s: float = 0.0) -> Time:
        now = self.ros.node.get_clock().now().nanoseconds - int(age_s * NS_PER_S)
        return Time(sec=now // NS_PER_S, nanosec=now % NS_PER_S)

    def joints_msg(self, level: float = LOW, age_s: float = 0.0) -> JointState:
        values = observation(level)["state"][:len(JOINTS)].tolist()
        msg = JointState(name=[*reversed(JOINTS), "gripper"], position=[*reversed(values), 0.7])
        msg.header.stamp = self.stamp(age_s)
        return msg

    def state_msg(self, level: float = LOW) -> Float64MultiArray:
        return Float64MultiArray(data=observation(level)["state"][len(JOINTS):].tolist())

    def image_msg(self, level: float = LOW, age_s: float = 0.0) -> Image:
        msg = Image(height=IMAGE[0], width=IMAGE[1], encoding="rgb8", step=IMAGE[1] * 3,
                    data=observation(level)["image"].tobytes())
        msg.header.stamp = self.stamp(age_s)
        return msg

    def send(self, level: float = LOW, joints=None, state=None, image=None,
             image_age_s: float = 0.0) -> None:
        """One observation; any part may be given (e.g. a malformed one)."""
        self.joints.publish(joints if joints is not None else self.joints_msg(level))
        self.state.publish(state if state is not None else self.state_msg(level))
        if self.transport == "compressed":
            self.compressed.publish(image if image is not None else self.compressed_msg(level))
        else:
            self.image.publish(image if image is not None else self.image_msg(level, image_age_s))

    def compressed_msg(self, level: float = LOW) -> CompressedImage:
        msg = CompressedImage(format="rgb8; png compressed bgr8",
                              data=png(observation(level)["image"]))
        msg.header.stamp = self.stamp()
        return msg

    def expect_action(self, level: float = LOW, **parts) -> np.ndarray:
        count = len(self.actions)
        self.send(level, **parts)
        assert self.ros.spin_until(lambda: len(self.actions) > count, REPLY_TIMEOUT_S), \
            self.node.log()[-3000:]
        return self.actions[-1][1]

    def wait_active(self) -> None:
        for publisher in (self.joints, self.state, self.image):
            assert self.ros.wait_for_subscribers(publisher, START_TIMEOUT_S), self.node.log()
        assert self.ros.spin_until(lambda: "active: commanding" in self.node.log(),
                                   START_TIMEOUT_S), self.node.log()


@pytest.fixture(scope="session")
def feed(ros, node):
    feed = Feed(ros, node)
    feed.wait_active()
    return feed


def lifecycle(ros: RosClient, transition: int) -> bool:
    return ros.call(ChangeState, f"{NODE}/change_state",
                    ChangeState.Request(transition=Transition(id=transition)),
                    REPLY_TIMEOUT_S * 4).success


def reconfigure(feed: Feed, **values) -> None:
    """deactivate, cleanup, set parameters, configure, activate."""
    ros = feed.ros
    assert lifecycle(ros, Transition.TRANSITION_DEACTIVATE)
    assert lifecycle(ros, Transition.TRANSITION_CLEANUP)
    request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                for k, v in values.items()])
    results = ros.call(SetParameters, f"{NODE}/set_parameters", request).results
    assert all(r.successful for r in results), [r.reason for r in results]
    assert lifecycle(ros, Transition.TRANSITION_CONFIGURE), feed.node.log()[-2000:]
    assert lifecycle(ros, Transition.TRANSITION_ACTIVATE)


DEFAULTS = {"mode": "lockstep", "stale_timeout_s": 1.0, "image_transport": "raw",
            "joint_states_key": "state", "state_key": "state", "image_key": "image",
            "input_qos": "reliable", "image_resize": False, "goal_topic": "",
            "goal_image_topic": "", "subgoals_topic": "", "warn_throttle_s": 1.0}


@pytest.fixture
def restore(feed, policy_files):
    """Each test may reconfigure the node; it is put back afterwards."""
    yield
    reconfigure(feed, checkpoint=str(policy_files["flip"]), **DEFAULTS)
    feed.expect_action(LOW)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for {pid}")


def wide_state(value: float = 0.0, size: int = WIDE_STATE) -> Float64MultiArray:
    return Float64MultiArray(data=[value] * size)


# ---- shared by several fault kinds ---------------------------------------------------------
def answered(feed: Feed, send, timeout_s: float = REPLY_TIMEOUT_S) -> bool:
    """Send until an action comes back (a renewed or restarted subscription must first be
    discovered again: what is sent before that is not delivered)."""
    count = len(feed.actions)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        send()
        if feed.ros.spin_until(lambda: len(feed.actions) > count, 0.25):
            return True
    return False


OVERSIZED = 1_000_000  # float64 values: 8 MB where 39 are expected
def png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", rgb[:, :, ::-1])
    assert ok
    return data.tobytes()




@pytest.fixture(scope="session")
def ros():
    """One ROS client node for every fault test of this folder, on the node's domain."""
    client = RosClient(DOMAIN)
    yield client
    client.close()
