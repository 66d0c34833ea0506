"""policy_node as a separate process over real DDS: what it refuses, what it publishes, its
lifecycle, its services; and the integration run: sim_node + policy_node reaching goals in
lock-step with a trained policy.

Most tests share one node (starting a process costs seconds) fed by the test through three
inputs at once (JointState -> 4 values, a 2-value vector, a 16x16 image) with a small real policy
file whose answer flips sign between a "low" and a "high" observation, so limits and the per-tick
change bound are exercised. The tests run in file order and each leaves the node active, enabled
and in lock-step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from actjepa_core.config import TrainConfig, to_dict
from actjepa_core.data.normalise import Normaliser
from actjepa_core.models import ACTJEPA
from actjepa_core.planning.cem import CEMConfig
from actjepa_core.planning.prior import GoalPrior, PriorConfig
from actjepa_core.policies import FrozenWorld, MPCConfig, MPCPolicy, NearestNeighbourPolicy
from actjepa_core.policies.configs import NNConfig

from ros_harness import NodeProcess, RosClient, domain_id

DOMAIN = domain_id(module_offset=1)
REACH_DOMAIN = domain_id(module_offset=2)  # the integration run: its own nodes, its own domain
START_TIMEOUT_S = 90.0  # a fresh process imports torch (and MuJoCo): slow on a busy 2-core box
REPLY_TIMEOUT_S = 10.0
QUIET_S = 0.6  # how long "no action arrives" is watched
RESEND_S = 2.0  # expect_action sends its observation again after this long without an action
THROTTLE_S = 1.0  # the node's warn_throttle_s here
NS_PER_S = 10**9

JOINTS = ["j1", "j2", "j3", "j4"]  # one per action dimension: position commands
VECTOR = 2
STATE = len(JOINTS) + VECTOR
IMAGE = (16, 16, 3)
ACTION_DIM = 4
LIMIT, MAX_DELTA = 0.5, 0.3
NODE = "/policy_node"
TOPICS = {"joints": "/test/joint_states", "state": "/test/state", "image": "/test/image",
          "action": "/test/action"}


# ---- the policy file ------------------------------------------------------------------------
def observation(level: float) -> dict[str, np.ndarray]:
    return {"state": np.full(STATE, level, np.float32),
            "image": np.full(IMAGE, int(level * 80), np.uint8)}


def write_flip_policy(path: Path) -> FrozenWorld:
    """A real nearest-neighbour policy file over a (state, image) encoder: the "low"
    observation maps to action +1, the "high" one to -1 (every dimension). Returns the world
    model (untrained weights: these tests are about the node, not about control)."""
    torch.manual_seed(0)
    config = TrainConfig()
    config.model.latent_dim, config.model.state_hidden = 32, [32]
    config.model.image_channels, config.model.predictor_hidden = [8, 8], [32]
    model = ACTJEPA({"state": (STATE,), "image": IMAGE}, ACTION_DIM, config.model)
    stats = Normaliser({"state": torch.zeros(STATE)}, {"state": torch.ones(STATE)},
                       -torch.ones(ACTION_DIM), torch.ones(ACTION_DIM))
    world = FrozenWorld.from_state({
        "config": to_dict(config), "obs_spec": {"state": {"shape": [STATE], "dtype": "float32"},
                                                "image": {"shape": list(IMAGE), "dtype": "uint8"}},
        "action_dim": ACTION_DIM, "stats": stats.state_dict(), "model": model.state_dict()})
    memory = torch.cat([world.model.encode(world.processor.to_model(observation(level)))
                        for level in (LOW, HIGH)])
    policy = NearestNeighbourPolicy(world, NNConfig(), memory,
                                    torch.tensor([[1.0] * ACTION_DIM, [-1.0] * ACTION_DIM]))
    policy.save(path)
    return world


LOW, HIGH = 0.0, 3.0


# ---- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def policy_files(tmp_path_factory):
    """The flip NN policy, and an MPC policy file on the same world model."""
    folder = tmp_path_factory.mktemp("policy")
    world = write_flip_policy(folder / "flip.pt")
    MPCPolicy(world, MPCConfig(horizon=2, cem=CEMConfig(samples=16, elites=4, iterations=2))
              ).save(folder / "mpc.pt")
    # a goal-conditioned prior executed without search (its weights untrained: the node's
    # behaviour, not the prior's skill, is under test)
    MPCPolicy(world, MPCConfig(prior=PriorConfig(mode="direct", hidden=[8])),
              prior_state=GoalPrior(world.latent_dim, world.action_dim, [8]).state_dict()
              ).save(folder / "prior.pt")
    return folder / "flip.pt", folder / "mpc.pt", folder / "prior.pt"


@pytest.fixture(scope="module")
def policy_file(policy_files):
    return policy_files[0]


@pytest.fixture(scope="module")
def node(policy_file, tmp_path_factory):
    overrides = {
        "checkpoint": str(policy_file), "mode": "lockstep", "input_qos": "reliable",
        "joint_states_topic": TOPICS["joints"], "joint_states_key": "state",
        "joint_names": "[j1, j2, j3, j4]", "state_topic": TOPICS["state"], "state_key": "state",
        "image_topic": TOPICS["image"], "image_key": "image", "image_resize": "false",
        "output_topic": TOPICS["action"], "action_min": f"[{-LIMIT}]",
        "action_max": f"[{LIMIT}]", "max_delta": f"[{MAX_DELTA}]", "stale_timeout_s": "1.0",
        "warn_throttle_s": str(THROTTLE_S), "control_rate_hz": "20.0",
        "checkpoint_dirs": f"[{policy_file.parent}]"}  # the other policy files of the tests
    args = ["--params-file", "config/policy.yaml"]
    for key, value in overrides.items():
        args += ["-p", f"{key}:={value}"]
    proc = NodeProcess("actjepa_ros.policy_node", args,
                       tmp_path_factory.mktemp("logs") / "policy.log", DOMAIN)
    yield proc
    proc.stop()


class Feed:
    """Publishes the three inputs and collects the node's actions."""

    def __init__(self, ros: RosClient, node: NodeProcess) -> None:
        self.ros, self.node = ros, node
        self.joints = ros.publisher(JointState, TOPICS["joints"])
        self.state = ros.publisher(Float64MultiArray, TOPICS["state"])
        self.image = ros.publisher(Image, TOPICS["image"])
        self.actions = ros.collect(Float64MultiArray, TOPICS["action"])
        self.latency = ros.collect(Float64, f"{NODE}/latency")

    def stamp(self, age_s: float = 0.0) -> Time:
        now = self.ros.node.get_clock().now().nanoseconds - int(age_s * NS_PER_S)
        return Time(sec=now // NS_PER_S, nanosec=now % NS_PER_S)

    def send(self, level: float, joints: JointState | None = None,
             state: Float64MultiArray | None = None, image: Image | None = None,
             positions: list[float] | None = None) -> None:
        """One observation (all three inputs); any part may be replaced by a given message."""
        obs = observation(level)
        if joints is None:  # the driver's order, with a joint the model does not use
            values = obs["state"][:len(JOINTS)].tolist() if positions is None else positions
            joints = JointState(name=[*reversed(JOINTS), "gripper"],
                                position=[*reversed(values), 0.7])
            joints.header.stamp = self.stamp()
        if state is None:
            state = Float64MultiArray(data=obs["state"][len(JOINTS):].astype(float).tolist())
        if image is None:
            image = Image(height=IMAGE[0], width=IMAGE[1], encoding="rgb8", step=IMAGE[1] * 3,
                          data=obs["image"].tobytes())
            image.header.stamp = self.stamp()
        self.joints.publish(joints)
        self.state.publish(state)
        self.image.publish(image)

    def expect_action(self, level: float = LOW, **parts) -> np.ndarray:
        """Send one observation and wait for the action it causes; the observation is sent again
        every RESEND_S while none comes, as a sensor stream would: sensor-data QoS may drop one of
        the three messages on a loaded machine, and lockstep then has no complete set to act on."""
        count = len(self.actions)
        for _ in range(int(REPLY_TIMEOUT_S / RESEND_S)):
            self.send(level, **parts)
            if self.ros.spin_until(lambda: len(self.actions) > count, RESEND_S):
                return np.array(self.actions[-1].data)
        raise AssertionError(self.node.log()[-3000:])

    def expect_silence(self, seconds: float = QUIET_S) -> None:
        count = len(self.actions)
        self.ros.spin_for(seconds)
        assert len(self.actions) == count, f"unexpected action {self.actions[-1].data}"


@pytest.fixture(scope="module")
def feed(ros, node):
    feed = Feed(ros, node)
    for publisher in (feed.joints, feed.state, feed.image):
        assert ros.wait_for_subscribers(publisher, START_TIMEOUT_S), node.log()
    assert ros.spin_until(lambda: "active: commanding" in node.log(), START_TIMEOUT_S), node.log()
    return feed


def lifecycle(ros: RosClient, transition: int) -> bool:
    return ros.call(ChangeState, f"{NODE}/change_state",
                    ChangeState.Request(transition=Transition(id=transition))).success


def lifecycle_state(ros: RosClient) -> int:
    return ros.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state.id


def set_params(ros: RosClient, **values) -> list:
    request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                for k, v in values.items()])
    return ros.call(SetParameters, f"{NODE}/set_parameters", request).results


# ---- tests ----------------------------------------------------------------------------------
def test_one_action_per_observation_within_limits_and_change_bound(feed):
    feed.ros.call(Trigger, f"{NODE}/reset", Trigger.Request())  # ramp from rest
    levels = [LOW, LOW, LOW, HIGH, HIGH, HIGH, HIGH, LOW]
    got = [feed.expect_action(level) for level in levels]
    feed.expect_silence(0.3)  # lock-step: nothing more without a new observation
    got = np.array(got)
    assert got.shape == (len(levels), ACTION_DIM)
    assert np.abs(got).max() <= LIMIT + 1e-9  # policy says +-1; the limits say 0.5
    steps = np.abs(np.diff(np.vstack([np.zeros(ACTION_DIM), got]), axis=0))
    assert steps.max() <= MAX_DELTA + 1e-9  # ramped from rest, bounded every tick
    np.testing.assert_allclose(got[:, 0], [0.3, 0.5, 0.5, 0.2, -0.1, -0.4, -0.5, -0.2])
    assert feed.ros.spin_until(lambda: len(feed.latency) >= len(levels), REPLY_TIMEOUT_S)
    assert all(0.0 <= m.data < 1000.0 for m in feed.latency)


def bad_image(kind: str) -> Image:
    image = Image(height=IMAGE[0], width=IMAGE[1], encoding="rgb8", step=IMAGE[1] * 3,
                  data=bytes(int(np.prod(IMAGE))))
    if kind == "encoding":
        image.encoding = "yuv422"
    elif kind == "size":  # a valid 8x8 picture, but the model takes 16x16 (resize is off)
        image.height, image.width, image.step, image.data = 8, 8, 24, bytes(8 * 8 * 3)
    elif kind == "bytes":
        image.data = bytes(100)
    return image


BAD_INPUTS = {
    "nan": (lambda f: dict(state=Float64MultiArray(data=[0.0, float("nan")])),
            "contains NaN or Inf"),
    "inf": (lambda f: dict(positions=[0.0, float("-inf"), 0.0, 0.0]), "contains NaN or Inf"),
    "vector size": (lambda f: dict(state=Float64MultiArray(data=[0.0] * 5)),
                    "5 values; expected 2"),
    "missing joint": (lambda f: dict(joints=JointState(name=["j2"], position=[0.0])),
                      "lacks joint(s) ['j1', 'j3', 'j4']"),
    "stale stamp": (lambda f: dict(joints=stamped(JointState(name=JOINTS, position=[0.0] * 4),
                                                  f.stamp(age_s=5.0))),
                    "stamped 5."),
    "image encoding": (lambda f: dict(image=bad_image("encoding")), "'yuv422' is not supported"),
    "image size": (lambda f: dict(image=bad_image("size")), "image is 8x8; expected 16x16"),
    "image bytes": (lambda f: dict(image=bad_image("bytes")), "carries 100 bytes"),
}


def stamped(msg: JointState, stamp) -> JointState:
    msg.header.stamp = stamp
    return msg


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_publishes_nothing_logs_once_and_good_input_resumes(feed, case):
    make, reason = BAD_INPUTS[case]
    feed.ros.spin_for(THROTTLE_S)  # the previous case's throttle window closes
    before = feed.node.log().count(reason)
    for _ in range(3):  # a burst of the same fault: one log line
        feed.send(LOW, **make(feed))
    feed.expect_silence()
    assert feed.node.log().count(reason) == before + 1, feed.node.log()[-2000:]
    action = feed.expect_action(LOW)
    assert np.isfinite(action).all() and np.abs(action).max() <= LIMIT
    assert feed.node.alive()


def test_enable_service_silences_and_resumes_output(feed):
    reply = feed.ros.call(SetBool, f"{NODE}/enable", SetBool.Request(data=False))
    assert reply.success and reply.message.startswith("disabled")
    feed.send(LOW)
    feed.expect_silence()
    assert feed.ros.call(SetBool, f"{NODE}/enable", SetBool.Request(data=True)).success
    feed.expect_action(LOW)


def test_lifecycle_transitions_start_and_stop_commanding(feed):
    assert lifecycle_state(feed.ros) == State.PRIMARY_STATE_ACTIVE
    assert lifecycle(feed.ros, Transition.TRANSITION_DEACTIVATE)
    assert lifecycle_state(feed.ros) == State.PRIMARY_STATE_INACTIVE
    feed.send(LOW)
    feed.expect_silence()
    assert lifecycle(feed.ros, Transition.TRANSITION_ACTIVATE)
    feed.expect_action(LOW)


def test_parameters_out_of_range_or_inconsistent_are_refused_with_a_reason(feed):
    results = set_params(feed.ros, control_rate_hz=5000.0)
    assert not results[0].successful and "out of range" in results[0].reason
    results = set_params(feed.ros, action_min=[-0.1, -0.1])  # 2 values for a 4-d action
    assert not results[0].successful and "expected 1 or 4" in results[0].reason
    results = set_params(feed.ros, output_type="velocity")
    assert not results[0].successful and "float64_multi_array" in results[0].reason
    feed.expect_action(LOW)  # still commanding, with the old settings
    # a tighter limit applies at once; a wider one waits for a deactivate (issue 28: was
    # applied at once, here the test widened it back while active)
    assert set_params(feed.ros, action_max=[0.1])[0].successful
    assert feed.expect_action(LOW).max() <= 0.1 + 1e-9
    assert lifecycle(feed.ros, Transition.TRANSITION_DEACTIVATE)
    assert set_params(feed.ros, action_max=[LIMIT])[0].successful
    assert lifecycle(feed.ros, Transition.TRANSITION_ACTIVATE)


def test_bad_checkpoint_fails_configure_but_not_the_process(feed, policy_file):
    assert lifecycle(feed.ros, Transition.TRANSITION_DEACTIVATE)
    assert lifecycle(feed.ros, Transition.TRANSITION_CLEANUP)
    missing = policy_file.with_name("missing.pt")  # inside checkpoint_dirs, but no file
    assert set_params(feed.ros, checkpoint=str(missing))[0].successful
    assert not lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE)
    assert lifecycle_state(feed.ros) == State.PRIMARY_STATE_UNCONFIGURED
    assert f"configure failed: checkpoint '{missing}' does not exist" in feed.node.log()
    not_a_policy = policy_file.with_name("garbage.pt")
    not_a_policy.write_bytes(b"this is not a checkpoint")
    assert set_params(feed.ros, checkpoint=str(not_a_policy))[0].successful
    assert not lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE)
    assert "not a readable actjepa checkpoint" in feed.node.log()
    assert feed.node.alive()
    assert set_params(feed.ros, checkpoint=str(policy_file))[0].successful
    assert lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE)
    assert lifecycle(feed.ros, Transition.TRANSITION_ACTIVATE)
    feed.expect_action(LOW)


def reconfigure(ros: RosClient, **values) -> None:
    assert lifecycle(ros, Transition.TRANSITION_DEACTIVATE)
    assert lifecycle(ros, Transition.TRANSITION_CLEANUP)
    assert all(r.successful for r in set_params(ros, **values))
    assert lifecycle(ros, Transition.TRANSITION_CONFIGURE)
    assert lifecycle(ros, Transition.TRANSITION_ACTIVATE)


def test_realtime_acts_on_the_latest_observation_until_it_goes_stale(feed):
    reconfigure(feed.ros, mode="realtime", stale_timeout_s=0.4)
    try:
        count = len(feed.actions)
        feed.send(LOW)
        feed.ros.spin_for(0.3)
        assert len(feed.actions) - count >= 2  # 20 Hz on one observation
        feed.ros.spin_for(0.3)  # now past the timeout
        feed.expect_silence(QUIET_S)
        assert "last valid message" in feed.node.log()
        count = len(feed.actions)
        feed.send(LOW)
        assert feed.ros.spin_until(lambda: len(feed.actions) > count, REPLY_TIMEOUT_S)
    finally:
        reconfigure(feed.ros, mode="lockstep", stale_timeout_s=1.0)
    feed.expect_action(LOW)


def test_ramp_from_joint_positions_bounds_the_first_target_by_where_the_arm_is(feed):
    assert lifecycle(feed.ros, Transition.TRANSITION_DEACTIVATE)
    assert lifecycle(feed.ros, Transition.TRANSITION_CLEANUP)
    assert set_params(feed.ros, ramp_from="joint_positions",
                      joint_state_fields=["velocity"])[0].successful
    assert not lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE)  # no positions to ramp from
    assert "ramp_from joint_positions needs" in feed.node.log()
    assert set_params(feed.ros, joint_state_fields=["position"])[0].successful
    assert lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE)
    assert lifecycle(feed.ros, Transition.TRANSITION_ACTIVATE)
    try:
        # the policy wants +0.5 (limited); the arm is at -0.4: the first target is -0.1
        first = feed.expect_action(LOW, positions=[-0.4] * len(JOINTS))
        np.testing.assert_allclose(first, [-0.4 + MAX_DELTA] * ACTION_DIM)
        np.testing.assert_allclose(feed.expect_action(LOW), [-0.4 + 2 * MAX_DELTA] * ACTION_DIM)
    finally:
        reconfigure(feed.ros, ramp_from="zero")
    feed.expect_action(LOW)


def test_mpc_policy_waits_for_its_goal_topics_then_acts(feed, policy_files):
    reconfigure(feed.ros, checkpoint=str(policy_files[1]), goal_topic="/test/goal",
                goal_image_topic="/test/goal_image")
    try:
        feed.send(LOW)
        feed.expect_silence()
        assert "MPC policy has no goal" in feed.node.log()
        goal = observation(HIGH)
        goal_state = feed.ros.publisher(Float64MultiArray, "/test/goal")
        goal_image = feed.ros.publisher(Image, "/test/goal_image")
        for pub in (goal_state, goal_image):
            assert feed.ros.wait_for_subscribers(pub, REPLY_TIMEOUT_S)
        goal_image.publish(bad_image("encoding"))  # refused, said so, the node carries on
        assert feed.ros.spin_until(lambda: "goal refused" in feed.node.log(), REPLY_TIMEOUT_S)
        goal_state.publish(Float64MultiArray(data=goal["state"].astype(float).tolist()))
        goal_image.publish(Image(height=IMAGE[0], width=IMAGE[1], encoding="rgb8",
                                 step=IMAGE[1] * 3, data=goal["image"].tobytes()))
        assert feed.ros.spin_until(lambda: "new goal set" in feed.node.log(), REPLY_TIMEOUT_S)
        plans = feed.ros.collect(Float64MultiArray, "/policy_node/plan")
        action = feed.expect_action(LOW)
        assert np.isfinite(action).all() and np.abs(action).max() <= LIMIT
        # every MPC action comes with its active subgoal (0: a single goal) and planned cost
        assert feed.ros.spin_until(lambda: len(plans) >= 1, REPLY_TIMEOUT_S)
        index, cost = plans[-1].data
        assert index == 0 and np.isfinite(cost) and cost >= 0
    finally:
        reconfigure(feed.ros, checkpoint=str(policy_files[0]), goal_topic="",
                    goal_image_topic="")
    feed.expect_action(LOW)


def test_mpc_prior_without_search_acts_and_publishes_no_plan(feed, policy_files):
    reconfigure(feed.ros, checkpoint=str(policy_files[2]), goal_topic="/test/goal",
                goal_image_topic="/test/goal_image")
    try:
        goal = observation(HIGH)
        goal_state = feed.ros.publisher(Float64MultiArray, "/test/goal")
        goal_image = feed.ros.publisher(Image, "/test/goal_image")
        for pub in (goal_state, goal_image):
            assert feed.ros.wait_for_subscribers(pub, REPLY_TIMEOUT_S)
        goal_state.publish(Float64MultiArray(data=goal["state"].astype(float).tolist()))
        goal_image.publish(Image(height=IMAGE[0], width=IMAGE[1], encoding="rgb8",
                                 step=IMAGE[1] * 3, data=goal["image"].tobytes()))
        assert feed.ros.spin_until(lambda: "new goal set" in feed.node.log(), REPLY_TIMEOUT_S)
        plans = feed.ros.collect(Float64MultiArray, "/policy_node/plan")
        for _ in range(3):
            action = feed.expect_action(LOW)
            assert np.isfinite(action).all() and np.abs(action).max() <= LIMIT
        feed.ros.spin_for(QUIET_S)
        assert plans == []  # no search ran: no plan, and no NaN cost on the wire
    finally:
        reconfigure(feed.ros, checkpoint=str(policy_files[0]), goal_topic="",
                    goal_image_topic="")
    feed.expect_action(LOW)


def test_diagnostics_report_the_node_state(feed):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    feed.expect_action(LOW)
    diagnostics = feed.ros.collect(DiagnosticArray, "/diagnostics")
    assert feed.ros.spin_until(lambda: len(diagnostics) >= 1, REPLY_TIMEOUT_S)
    status = diagnostics[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["lifecycle"] == "active" and int(values["actions_published"]) >= 1
    assert values["policy_type"] == "nn" and float(values["latency_ms_p50"]) > 0.0
    assert status.level == DiagnosticStatus.OK and status.message == "commanding"


# ---- integration: sim_node + policy_node on reach-v3 ----------------------------------------
REACH_EPISODES = 3
REACH_MAX_STEPS = 150


@pytest.fixture(scope="module")
def reach_policy(reach_world, reach_demos, tmp_path_factory):
    """A latent nearest-neighbour policy over the session's briefly trained reach world model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        policy = NearestNeighbourPolicy.build(FrozenWorld.from_checkpoint(reach_world),
                                              reach_demos)
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("reach") / "nn.pt"
    policy.save(path)
    return path, policy


def test_sim_and_policy_nodes_reach_goals_in_lockstep_like_an_in_process_rollout(
        reach_policy, tmp_path):
    from actjepa_core.evaluation.evaluate import evaluate

    path, policy = reach_policy
    sim = NodeProcess("actjepa_ros.sim_node", [
        "--params-file", "config/sim.yaml", "-p", f"max_steps:={REACH_MAX_STEPS}",
        "-p", "end_on_success:=true"], tmp_path / "sim.log", REACH_DOMAIN)
    ros = RosClient(REACH_DOMAIN)
    pol = None
    try:
        # listen before the policy starts: every step of episode 0 must be counted
        success = ros.collect(Bool, "/sim_node/success", depth=1000)
        assert ros.spin_until(lambda: ros.node.count_publishers("/sim_node/success") > 0,
                              START_TIMEOUT_S), sim.log()
        ros.spin_for(0.5)
        # max_delta 2 (no bound inside the [-1, 1] box): actions exactly as in-process
        pol = NodeProcess("actjepa_ros.policy_node", [
            "--params-file", "config/policy.yaml", "-p", f"checkpoint:={path}",
            "-p", "use_sim_time:=true", "-p", "max_delta:=[2.0]"], tmp_path / "policy.log",
            REACH_DOMAIN)
        lengths, solved = [], []
        for episode in range(REACH_EPISODES):
            if episode:  # next episode: policy state first, then the arm
                ros.call(Trigger, "/policy_node/reset", Trigger.Request())
                ros.spin_for(0.2)  # a last action for the ended episode is dropped by the sim
                success.clear()
                assert ros.call(Trigger, "/sim_node/reset", Trigger.Request()).success
            done = ros.spin_until(lambda: any(m.data for m in success)
                                  or len(success) >= REACH_MAX_STEPS, START_TIMEOUT_S)
            assert done, sim.log()[-2000:] + pol.log()[-2000:]
            ros.spin_for(0.1)
            solved.append(any(m.data for m in success))
            lengths.append(len(success))
    finally:
        ros.close()
        if pol is not None:
            pol.stop()
        sim.stop()
    assert sum(solved) > REACH_EPISODES // 2, (solved, lengths)
    # the same policy in-process, same start configurations: the very same episodes
    reference = evaluate(policy, "reach-v3", REACH_EPISODES, seed=0, max_steps=REACH_MAX_STEPS,
                         progress=False)
    assert lengths == [r.length for r in reference.records]
    assert solved == [r.success for r in reference.records]
