"""policy_node against a peer on its ROS domain (issue 28), over real DDS with a real policy file:
safety limits only tighten while active, checkpoints only from checkpoint_dirs (symlinks
resolved), ``require_enable`` holds commands until an explicit ~/enable, and every accepted change
is a warning and a count in /diagnostics. The rules themselves (``safety.widening``,
``safety.checkpoint_problem``) are checked without ROS first.

One node (state input only, lock-step, ``ramp_from: none`` so an action is the policy's +-1
clipped by the limits) is shared by the tests, which run in file order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool

from actjepa_core.config import TrainConfig, to_dict
from actjepa_core.data.normalise import Normaliser
from actjepa_core.models import ACTJEPA
from actjepa_core.policies import FrozenWorld, NearestNeighbourPolicy
from actjepa_core.policies.configs import NNConfig
from actjepa_ros import safety

from ros_harness import NodeProcess, domain_id

DOMAIN = domain_id(module_offset=41)
START_TIMEOUT_S = 90.0
REPLY_TIMEOUT_S = 10.0
QUIET_S = 0.6
STATE, ACTION_DIM = 3, 2
LOW, HIGH = 0.0, 3.0  # observations the policy answers with +1 and -1
LIMIT = 0.5
NODE = "/policy_node"
STATE_TOPIC, ACTION_TOPIC = "/sec/state", "/sec/action"


# ---- the rules, without ROS -----------------------------------------------------------------
def limits(low: float, high: float, delta: float = np.inf) -> safety.ActionLimits:
    return safety.ActionLimits.build(ACTION_DIM, [low], [high], [delta])


@pytest.mark.parametrize("new, wider", [
    (limits(-0.5, 0.5, 0.3), None), (limits(-0.2, 0.1, 0.1), None),
    (limits(-0.6, 0.5, 0.3), "action_min would widen dimension 0 from -0.5 to -0.6"),
    (limits(-0.5, 0.7, 0.3), "action_max would widen dimension 0 from 0.5 to 0.7"),
    (limits(-0.5, 0.5), "max_delta would widen dimension 0 from 0.3 to inf"),
])
def test_widening_names_the_first_looser_limit(new, wider):
    assert safety.widening(limits(-0.5, 0.5, 0.3), new) == wider


def test_one_looser_dimension_is_widening():
    old = limits(-0.5, 0.5)
    new = safety.ActionLimits.build(ACTION_DIM, [-0.5], [0.1, 0.6])
    assert safety.widening(old, new) == "action_max would widen dimension 1 from 0.5 to 0.6"


def test_checkpoint_must_resolve_inside_the_folders(tmp_path):
    allowed, other = tmp_path / "models", tmp_path / "elsewhere"
    allowed.mkdir(), other.mkdir()
    (other / "p.pt").write_bytes(b"x")
    (allowed / "link.pt").symlink_to(other / "p.pt")
    folders = safety.resolve_folders([str(allowed)])
    assert safety.checkpoint_problem(str(allowed / "p.pt"), folders) is None
    assert safety.checkpoint_problem(str(allowed / "sub" / ".." / "p.pt"), folders) is None
    problem = safety.checkpoint_problem(str(other / "p.pt"), folders)
    assert problem.startswith(f"checkpoint '{other / 'p.pt'}' is outside checkpoint_dirs")
    problem = safety.checkpoint_problem(str(allowed / "link.pt"), folders)
    assert f"resolves to '{other / 'p.pt'}'" in problem and "\n" not in problem
    escape = str(allowed / ".." / "elsewhere" / "p.pt")
    assert "outside checkpoint_dirs" in safety.checkpoint_problem(escape, folders)
    # the file the node was started with stays accepted wherever it is
    assert safety.checkpoint_problem(str(other / "p.pt"), folders,
                                     (other / "p.pt").resolve()) is None


# ---- the node over DDS ----------------------------------------------------------------------
def write_policy(path: Path) -> None:
    """A real NN policy on a state-only encoder: LOW -> +1, HIGH -> -1 in every dimension."""
    torch.manual_seed(0)
    config = TrainConfig()
    config.model.latent_dim, config.model.state_hidden = 16, [16]
    config.model.predictor_hidden = [16]
    model = ACTJEPA({"state": (STATE,)}, ACTION_DIM, config.model)
    stats = Normaliser({"state": torch.zeros(STATE)}, {"state": torch.ones(STATE)},
                       -torch.ones(ACTION_DIM), torch.ones(ACTION_DIM))
    world = FrozenWorld.from_state({
        "config": to_dict(config), "obs_spec": {"state": {"shape": [STATE], "dtype": "float32"}},
        "action_dim": ACTION_DIM, "stats": stats.state_dict(), "model": model.state_dict()})
    memory = torch.cat([world.model.encode(world.processor.to_model(
        {"state": np.full(STATE, level, np.float32)})) for level in (LOW, HIGH)])
    NearestNeighbourPolicy(world, NNConfig(), memory, torch.tensor(
        [[1.0] * ACTION_DIM, [-1.0] * ACTION_DIM])).save(path)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("allowed")
    write_policy(folder / "policy.pt")
    return folder


@pytest.fixture(scope="module")
def node(policy_dir, tmp_path_factory):
    values = {"checkpoint": str(policy_dir / "policy.pt"), "checkpoint_dirs": f"[{policy_dir}]",
              "require_enable": "true", "mode": "lockstep", "input_qos": "reliable",
              "state_topic": STATE_TOPIC, "state_key": "state", "image_key": "''",
              "joint_states_key": "''", "output_topic": ACTION_TOPIC, "ramp_from": "none",
              "action_min": f"[{-LIMIT}]", "action_max": f"[{LIMIT}]", "max_delta": "[2.0]",
              "stale_timeout_s": "5.0", "diagnostics_period_s": "0.2"}
    args = ["--params-file", "config/policy.yaml"]
    for key, value in values.items():
        args += ["-p", f"{key}:={value}"]
    proc = NodeProcess("actjepa_ros.policy_node", args,
                       tmp_path_factory.mktemp("logs") / "policy.log", DOMAIN)
    yield proc
    proc.stop()


class Peer:
    """Any participant on the domain: feeds observations, calls services, sets parameters."""

    def __init__(self, ros, node) -> None:
        self.ros, self.node = ros, node
        self.state = ros.publisher(Float64MultiArray, STATE_TOPIC)
        self.actions = ros.collect(Float64MultiArray, ACTION_TOPIC)
        self.diagnostics = ros.collect(DiagnosticArray, "/diagnostics")

    def act(self, level: float = LOW) -> np.ndarray | None:
        """The action one observation causes, or None if none comes within QUIET_S."""
        count = len(self.actions)
        self.state.publish(Float64MultiArray(data=[level] * STATE))
        if self.ros.spin_until(lambda: len(self.actions) > count, QUIET_S):
            return np.array(self.actions[-1].data)
        return None

    def set(self, **values):
        """Set parameters (rclpy applies each on its own): the first refusal, else success."""
        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                    for k, v in values.items()])
        results = self.ros.call(SetParameters, f"{NODE}/set_parameters", request).results
        return next((r for r in results if not r.successful), results[0])  # each is its own

    def enable(self, on: bool = True) -> None:
        assert self.ros.call(SetBool, f"{NODE}/enable", SetBool.Request(data=on)).success

    def lifecycle(self, transition: int) -> bool:
        return self.ros.call(ChangeState, f"{NODE}/change_state", ChangeState.Request(
            transition=Transition(id=transition))).success

    def diagnostic_values(self) -> dict[str, str]:
        count = len(self.diagnostics)
        assert self.ros.spin_until(lambda: len(self.diagnostics) > count, REPLY_TIMEOUT_S)
        return {kv.key: kv.value for kv in self.diagnostics[-1].status[0].values}

    def warnings(self, text: str) -> list[str]:
        return [line for line in self.node.log().splitlines()
                if "[WARN]" in line and text in line]


@pytest.fixture(scope="module")
def peer(ros, node):
    peer = Peer(ros, node)
    assert ros.wait_for_subscribers(peer.state, START_TIMEOUT_S), node.log()
    assert ros.spin_until(lambda: "active: disabled" in node.log(), START_TIMEOUT_S), node.log()
    return peer


def test_require_enable_holds_every_command_until_enabled(peer):
    started = next(line for line in peer.node.log().splitlines() if "started:" in line)
    assert "require_enable: every command held until an explicit ~/enable true" in started
    assert all(peer.act() is None for _ in range(3))
    assert peer.diagnostic_values()["require_enable"] == "True"
    peer.enable()
    np.testing.assert_allclose(peer.act(), [LIMIT] * ACTION_DIM)


def test_require_enable_holds_again_after_each_activate(peer):
    assert peer.lifecycle(Transition.TRANSITION_DEACTIVATE)
    assert peer.lifecycle(Transition.TRANSITION_ACTIVATE)
    assert peer.act() is None  # the lifecycle alone never restarts the arm
    peer.enable()
    assert peer.act() is not None
    assert len(peer.warnings("inactive: not commanding")) >= 1
    assert int(peer.diagnostic_values()["lifecycle_changes"]) >= 4  # configure, activate x2, ..


def test_tightening_applies_at_once_and_widening_while_active_is_refused(peer):
    before = int(peer.diagnostic_values()["limits_changes"])
    assert peer.set(action_max=[0.2]).successful
    np.testing.assert_allclose(peer.act(LOW), [0.2] * ACTION_DIM)
    assert peer.warnings("action limits now [[-0.5, -0.5], [0.2, 0.2]]")
    refused = peer.set(action_max=[0.4])
    assert not refused.successful and "\n" not in refused.reason
    assert refused.reason.startswith("action_max would widen dimension 0 from 0.2 to 0.4 while "
                                     "active"), refused.reason
    np.testing.assert_allclose(peer.act(LOW), [0.2] * ACTION_DIM)  # the old limit still clips
    assert not peer.set(action_max=[0.2, 0.3]).successful  # one dimension looser
    assert not peer.set(max_delta=[]).successful  # [] = unbounded: looser than 2.0
    assert not peer.set(action_min=[]).successful  # [] = the checkpoint's bounds, [-1, 1]
    assert peer.set(action_min=[-0.1]).successful
    np.testing.assert_allclose(peer.act(HIGH), [-0.1] * ACTION_DIM)
    assert int(peer.diagnostic_values()["limits_changes"]) == before + 2


def test_widening_takes_a_deactivate(peer):
    assert peer.lifecycle(Transition.TRANSITION_DEACTIVATE)
    assert peer.set(action_min=[-LIMIT], action_max=[LIMIT]).successful
    assert peer.lifecycle(Transition.TRANSITION_ACTIVATE)
    peer.enable()
    np.testing.assert_allclose(peer.act(LOW), [LIMIT] * ACTION_DIM)


def test_a_checkpoint_outside_checkpoint_dirs_is_refused_in_one_line(peer, policy_dir,
                                                                    tmp_path):
    outside = tmp_path / "other.pt"
    outside.write_bytes((policy_dir / "policy.pt").read_bytes())
    refused = peer.set(checkpoint=str(outside))
    assert not refused.successful and "\n" not in refused.reason
    assert refused.reason.startswith(f"checkpoint '{outside}' is outside checkpoint_dirs")
    link = policy_dir / "link.pt"  # inside the folder, pointing out of it
    link.symlink_to(outside)
    refused = peer.set(checkpoint=str(link))
    assert not refused.successful and f"resolves to '{outside}'" in refused.reason
    assert not peer.set(checkpoint_dirs=[str(tmp_path)]).successful  # read-only
    before = int(peer.diagnostic_values()["checkpoint_changes"])
    copy = policy_dir / "copy.pt"
    copy.write_bytes(outside.read_bytes())
    assert peer.set(checkpoint=str(copy)).successful
    assert peer.warnings(f"checkpoint set to '{copy}' (loaded at the next configure)")
    assert int(peer.diagnostic_values()["checkpoint_changes"]) == before + 1
    assert peer.act(LOW) is not None  # the running policy is untouched until configure
