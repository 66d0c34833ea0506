"""`make demo`'s path: the shipped policy drives the sim node over real DDS (two processes), over
the 4-d action array or, as real cells are driven, a Twist and a gripper command."""
from pathlib import Path

import numpy as np
import pytest

from actjepa_core.errors import ActJepaError
from actjepa_core.policies import load_policy
from actjepa_ros.tools import closed_loop, demo
from actjepa_ros.tools.closed_loop import run_closed_loop

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "reach_bc.pt"
EPISODES, MAX_STEPS = 2, 60


@pytest.fixture(scope="module")
def array_loop(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("array")
    result = run_closed_loop(SHIPPED, "reach-v3", EPISODES, seed=1, max_steps=MAX_STEPS,
                             log_dir=log_dir, verbose=False)
    return result, log_dir


def test_shipped_policy_loads_and_acts_on_a_state_observation():
    policy = load_policy(SHIPPED, policy_type="bc")
    assert policy.obs_spec == {"state": {"shape": [39], "dtype": "float32"}}
    action = policy.act({"state": np.zeros(39, dtype=np.float32)})
    assert action.shape == (4,) and np.isfinite(action).all()


def test_closed_loop_over_ros_counts_episodes_and_measures_latency(array_loop):
    result, _ = array_loop
    assert result.episodes == EPISODES and 0 <= result.successes <= EPISODES
    assert 1 <= result.mean_length <= MAX_STEPS and result.interface == "array"
    # one latency sample per action the policy node published
    assert result.latency_samples >= EPISODES and 0 < result.latency_ms_median < 1000
    assert result.ci_low <= result.success <= result.ci_high


def test_closed_loop_over_twist_and_gripper_gives_the_array_loops_episodes(array_loop, tmp_path):
    """`make demo DEMO_INTERFACE=twist`: the policy publishes TwistStamped on sim_node/twist and
    the gripper on sim_node/gripper, sim_node steps on each pair, and the episodes come out as
    over the array (lock-step: the same lengths and outcomes; step for step in
    test_twist_gripper.py)."""
    array, _ = array_loop
    twist = run_closed_loop(SHIPPED, "reach-v3", EPISODES, seed=1, max_steps=MAX_STEPS,
                            log_dir=tmp_path, verbose=False, interface="twist")
    assert twist.interface == "twist"
    assert (twist.successes, twist.mean_length) == (array.successes, array.mean_length)
    policy_log = (tmp_path / "policy.log").read_text()
    assert "output twist_stamped on sim_node/twist, gripper on sim_node/gripper" in policy_log
    assert "refused" not in (tmp_path / "sim.log").read_text()


def test_the_loop_wires_each_camera_of_the_policy_and_names_a_bad_interface():
    """A policy whose keys name two sim cameras gets both rendered and each topic mapped to its
    key; the default camera alone needs nothing beyond the params files."""
    sim, policy = closed_loop.camera_params(("corner4", "behindGripper"))
    assert sim == ["-p", "cameras:=[corner4, behindGripper]"]
    assert policy == ["-p", "image_keys:=[image, image_behindGripper]",
                      "-p", "image_topics:=[camera/image_raw, camera/behindGripper/image_raw]"]
    assert closed_loop.camera_params(("corner4",)) == ([], [])
    assert demo.INTERFACES == tuple(closed_loop.INTERFACES)
    with pytest.raises(ActJepaError, match=r"interface 'servo'; expected one of \['array', "):
        closed_loop.interface_params("servo")
