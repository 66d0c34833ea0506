"""`make demo`'s path: the shipped policy drives the sim node over real DDS (two processes)."""
from pathlib import Path

import numpy as np

from actjepa_core.policies import load_policy
from actjepa_ros.tools.closed_loop import run_closed_loop

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "reach_bc.pt"
EPISODES, MAX_STEPS = 2, 60


def test_shipped_policy_loads_and_acts_on_a_state_observation():
    policy = load_policy(SHIPPED, policy_type="bc")
    assert policy.obs_spec == {"state": {"shape": [39], "dtype": "float32"}}
    action = policy.act({"state": np.zeros(39, dtype=np.float32)})
    assert action.shape == (4,) and np.isfinite(action).all()


def test_closed_loop_over_ros_counts_episodes_and_measures_latency(tmp_path):
    result = run_closed_loop(SHIPPED, "reach-v3", EPISODES, seed=1, max_steps=MAX_STEPS,
                             log_dir=tmp_path, verbose=False)
    assert result.episodes == EPISODES and 0 <= result.successes <= EPISODES
    assert 1 <= result.mean_length <= MAX_STEPS
    # one latency sample per action the policy node published
    assert result.latency_samples >= EPISODES and 0 < result.latency_ms_median < 1000
    assert result.ci_low <= result.success <= result.ci_high
