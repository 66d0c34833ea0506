"""policy_node serving a LeRobot policy folder (``policy_type: lerobot``) over real DDS
(`make test-peers`, .venv-peers: lerobot, rclpy wheels, MuJoCo).

A LeRobot ACT policy (small: the tests are about serving it, not about its skill) is trained a
few steps on reach-v3 camera + joint-state demos by experiments/lerobot/train.py (LeRobot's own
dataset, processors and loss), saved as LeRobot saves it, and then:

* drives sim_node in lock-step: the actions the node publishes over DDS are the very actions
  the same folder gives in-process on the same start configuration (both processes render the
  same frames and read the same joints), so the topics -> features table, the image path and
  the action queue's reset all work as they do in LeRobot's own loop;
* stops, as our policies stop, on stale input (realtime mode, inputs silent), on a NaN joint
  and on an image of the wrong encoding, says why in one throttled line, and resumes on good
  input; /diagnostics reports the lerobot policy;
* a features table that leaves an input feature unfilled fails configure, not the process.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.peers
os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("lerobot")
pytest.importorskip("rclpy")

from actjepa_ros.tools.processes import NodeProcess as _NodeProcess  # noqa: E402
from actjepa_ros.tools.processes import RosClient, claim_domain  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TASK, SIDE, DEMOS, STEPS = "reach-v3", 32, 2, 12
SIM_DOMAIN, FEED_DOMAIN = claim_domain(), claim_domain()  # held (flock) while pytest runs
START_TIMEOUT_S = 120.0  # a fresh process imports torch, lerobot (and MuJoCo) on a busy box
REPLY_TIMEOUT_S = 10.0
THROTTLE_S = 1.0
JOINTS = ["right_j0", "right_j1", "right_j2", "right_j3", "right_j4", "right_j5", "right_j6",
          "r_close", "l_close"]
TINY_ACT = {"dim_model": 32, "n_heads": 2, "dim_feedforward": 64, "n_encoder_layers": 1,
            "n_decoder_layers": 1, "n_vae_encoder_layers": 1, "chunk_size": 5,
            "n_action_steps": 5}


class NodeProcess(_NodeProcess):
    """A node started in the repository root (its params files are config/*.yaml)."""

    def __init__(self, module: str, ros_args: list[str], log_path: Path, domain: int) -> None:
        super().__init__(module, ros_args, log_path, domain, cwd=REPO)


@pytest.fixture(scope="module")
def act_folder(tmp_path_factory):
    import torch

    from actjepa_core.data.episodes import write_episodes
    from actjepa_core.sim.collect import collect_episodes
    from experiments.lerobot.train import LeRobotTraining, train_lerobot

    work = tmp_path_factory.mktemp("lerobot")
    demos = work / f"{TASK}-{SIDE}px-{DEMOS}.hdf5"
    write_episodes(demos, list(collect_episodes(TASK, DEMOS, seed=0, image_size=SIDE,
                                                keys=("image", "joints"), progress=False)),
                   source=f"metaworld:{TASK}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trained = train_lerobot(demos, work / "act", LeRobotTraining(
            policy="act", overrides=TINY_ACT, max_steps=5, budget_s=600), log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    assert (trained.folder / "config.json").is_file() and trained.steps == 5
    return trained.folder


def policy_args(folder: Path, *extra: str) -> list[str]:
    """The camera + joint-state params files, the LeRobot folder, and ``extra`` overrides."""
    args = ["--params-file", "config/policy.yaml", "--params-file", "config/policy_camera.yaml",
            "-p", "policy_type:=lerobot", "-p", f"checkpoint:={folder}",
            "-p", f"checkpoint_dirs:=[{folder.parent}]"]
    for item in extra:
        args += ["-p", item]
    return args


def in_process_actions(folder: Path, steps: int) -> np.ndarray:
    """Episode 0 of seed 0, the same folder loaded here: the reference the node must match."""
    import torch

    from actjepa_core.policies.lerobot import load_lerobot_policy
    from actjepa_core.sim.arm import SimArm
    from experiments.lerobot.train import FEATURES

    torch.set_num_threads(1)
    policy = load_lerobot_policy(folder, FEATURES)
    arm = SimArm(TASK, seed=0, image_size=SIDE, max_steps=steps, joints=True)
    try:
        obs, actions = arm.reset(0), []
        policy.reset()
        for _ in range(steps):
            actions.append(policy.act(obs))
            obs, _ = arm.step(actions[-1])
    finally:
        arm.close()
    return np.array(actions)


def test_lerobot_policy_drives_sim_node_like_in_process(act_folder, tmp_path):
    from std_msgs.msg import Bool, Float64MultiArray

    sim = NodeProcess("actjepa_ros.sim_node", [
        "--params-file", "config/sim.yaml", "-p", f"task:={TASK}", "-p", f"image_size:={SIDE}",
        "-p", f"max_steps:={STEPS}"], tmp_path / "sim.log", SIM_DOMAIN)
    ros = RosClient(SIM_DOMAIN)
    pol = None
    try:
        success = ros.collect(Bool, "/sim_node/success", depth=1000)
        actions = ros.collect(Float64MultiArray, "/sim_node/action", depth=1000)
        assert ros.spin_until(lambda: ros.node.count_publishers("/sim_node/success") > 0,
                              START_TIMEOUT_S), sim.log()
        ros.spin_for(0.5)
        # max_delta 2: no bound inside the [-1, 1] box, so actions are exactly the policy's
        pol = NodeProcess("actjepa_ros.policy_node", policy_args(
            act_folder, "use_sim_time:=true", "max_delta:=[2.0]"), tmp_path / "policy.log",
            SIM_DOMAIN)
        assert ros.spin_until(lambda: len(success) >= STEPS, START_TIMEOUT_S), (
            sim.log()[-2000:] + pol.log()[-3000:])
        ros.spin_for(0.3)
        log = pol.log()
    finally:
        ros.close()
        if pol is not None:
            pol.stop()
        sim.stop()
    assert "loaded lerobot policy" in log, log[-2000:]
    published = np.array([m.data for m in actions[:STEPS]])
    reference = in_process_actions(act_folder, STEPS)
    assert published.shape == reference.shape == (STEPS, 4)
    assert np.abs(published).max() <= 1.0 + 1e-9
    np.testing.assert_allclose(published, reference, atol=1e-5)
    assert np.ptp(published, axis=0).max() > 0  # not one constant command: it reads the inputs


class Feed:
    """The camera and the joint states, published by the test to a realtime policy_node."""

    def __init__(self, ros: RosClient) -> None:
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64MultiArray

        self.ros = ros
        self.joints = ros.publisher(JointState, "/feed/joint_states")
        self.image = ros.publisher(Image, "/feed/image")
        self.actions = ros.collect(Float64MultiArray, "/feed/action", depth=10_000)

    def send(self, joints: list[float] | None = None, encoding: str = "rgb8") -> None:
        from sensor_msgs.msg import Image, JointState

        stamp = self.ros.node.get_clock().now().to_msg()
        msg = JointState(name=JOINTS, position=joints or [0.1] * len(JOINTS))
        msg.header.stamp = stamp
        picture = np.full((SIDE, SIDE, 3), 90, np.uint8)
        image = Image(height=SIDE, width=SIDE, encoding=encoding, step=SIDE * 3,
                      data=picture.tobytes())
        image.header.stamp = stamp
        self.joints.publish(msg)
        self.image.publish(image)

    def stream(self, seconds: float, **kwargs) -> None:
        """Publish at ~20 Hz for ``seconds``, as a camera driver would."""
        for _ in range(max(1, int(seconds / 0.05))):
            self.send(**kwargs)
            self.ros.spin_for(0.05)


@pytest.fixture(scope="module")
def feed_node(act_folder, tmp_path_factory):
    proc = NodeProcess("actjepa_ros.policy_node", policy_args(
        act_folder, "mode:=realtime", "control_rate_hz:=20.0", "stale_timeout_s:=0.4",
        "input_qos:=reliable", "joint_states_topic:=/feed/joint_states",
        "image_topic:=/feed/image", "output_topic:=/feed/action",
        f"warn_throttle_s:={THROTTLE_S}", "max_delta:=[0.2]"),
        tmp_path_factory.mktemp("logs") / "policy.log", FEED_DOMAIN)
    ros = RosClient(FEED_DOMAIN)
    feed = Feed(ros)
    for publisher in (feed.joints, feed.image):
        assert ros.wait_for_subscribers(publisher, START_TIMEOUT_S), proc.log()
    assert ros.spin_until(lambda: "active: commanding" in proc.log(), START_TIMEOUT_S), proc.log()
    yield proc, feed
    ros.close()
    proc.stop()


def test_stale_or_bad_input_stops_a_lerobot_policy_and_good_input_resumes(feed_node):
    node, feed = feed_node
    feed.stream(1.0)
    assert feed.ros.spin_until(lambda: len(feed.actions) >= 5, REPLY_TIMEOUT_S), node.log()
    got = np.array([m.data for m in feed.actions])
    assert np.isfinite(got).all() and np.abs(got).max() <= 1.0 + 1e-9
    assert np.abs(np.diff(np.vstack([np.zeros(4), got]), axis=0)).max() <= 0.2 + 1e-9

    feed.ros.spin_for(0.6)  # inputs silent past stale_timeout_s: it stops commanding
    count = len(feed.actions)
    feed.ros.spin_for(1.0)
    assert len(feed.actions) == count, "commanded on stale input"
    assert "not acting" in node.log() and "last valid message" in node.log()

    for case, kwargs, reason in (
            ("nan joint", {"joints": [float("nan")] + [0.1] * 8}, "contains NaN or Inf"),
            ("bad encoding", {"encoding": "yuv422"}, "'yuv422' is not supported")):
        feed.ros.spin_for(THROTTLE_S)
        before = node.log().count(reason)
        count = len(feed.actions)
        feed.stream(1.0, **kwargs)
        assert len(feed.actions) == count, f"commanded on {case}"
        assert node.log().count(reason) >= before + 1, node.log()[-2000:]
        feed.stream(0.5)  # good input again: it resumes
        assert feed.ros.spin_until(lambda n=count: len(feed.actions) > n, REPLY_TIMEOUT_S), (
            node.log()[-2000:])
    assert "commanding again" in node.log()
    assert node.alive()


def test_diagnostics_report_the_lerobot_policy(feed_node):
    from diagnostic_msgs.msg import DiagnosticArray

    node, feed = feed_node
    diagnostics = feed.ros.collect(DiagnosticArray, "/diagnostics")
    feed.stream(1.5)
    assert feed.ros.spin_until(lambda: len(diagnostics) >= 1, REPLY_TIMEOUT_S)
    values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
    assert values["policy_type"] == "lerobot" and values["lifecycle"] == "active"
    assert int(values["actions_published"]) >= 1


def test_a_features_table_missing_an_input_fails_configure_not_the_process(act_folder,
                                                                           tmp_path):
    proc = NodeProcess("actjepa_ros.policy_node", policy_args(
        act_folder, "lerobot_features:=[observation.state]", "lerobot_keys:=[joints]"),
        tmp_path / "policy.log", FEED_DOMAIN)
    ros = RosClient(FEED_DOMAIN)
    try:
        assert ros.spin_until(lambda: "configure failed" in proc.log(), START_TIMEOUT_S), (
            proc.log())
        line = next(li for li in proc.log().splitlines() if "configure failed" in li)
        assert "['observation.images.image'] mapped to no observation key" in line
        assert "config.json" in line
        assert proc.alive()
    finally:
        ros.close()
        proc.stop()
