"""Small real data for the tests: Meta-World expert demos, short training configs, a random floor.

Plain helpers (the fixtures that build data once per session live in conftest.py); tests import
the constants they assert against from here.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

from actjepa_core.config import TrainConfig  # noqa: E402
from actjepa_core.data.episodes import write_episodes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]  # the checkout: config/, models/, launch/
PUSH_EPISODES = 16  # real push-v3 expert demos: ~1,600 transitions, collected in a few seconds
REACH_EPISODES = 40  # expert demos: enough goal coverage for a latent nearest neighbour to succeed
REACH_WORLD_STEPS = 600  # a brief pretraining run (seconds on one core)
REACH_EVAL_EPISODES = 10  # closed-loop episodes per policy (seed 1: start configs unseen in demos)
REACH_EVAL_STEPS = 150
# A closed-loop verdict must not depend on the CPU's matmul kernels: a briefly trained policy's
# success count on 10 episodes flips with them, because its near-misses end right at the 5 cm
# success radius. What the tests assert instead is where the median episode ends: a policy that
# controls the arm ends at most REACH_CLOSER times as far from the target as random actions do,
# a margin several times wider than the kernels move it (docs/RESULTS.md, "Tests").
REACH_CLOSER = 0.5

# In expert-only demos the action is a function of the state, so the predictor can ignore it and
# MPC has little to plan with; multi-step training (rollout_steps = 5) trains the predictor on its
# own rollouts, as MPC uses it. Measured MPC success on reach-v3 (20 episodes, 2000 training
# steps): expert demos 4/20, expert demos + 5-step rollouts 7/20, half the ticks random + 5-step
# rollouts 16/20. The reach_explore_world fixture is a scaled-down copy of the last recipe.
EXPLORE_EPISODES = 40
EXPLORE_STEPS = 100  # ticks per episode
EXPLORE_RANDOM = 0.5  # share of ticks with a uniform random action instead of the expert's
# a small model (D = 64): ~20 s of CPU; its MPC plans 4/10 reach episodes (1,000 steps: 1/10)
EXPLORE_WORLD_STEPS = 2000


def expert_demos_file(tmp_path_factory, task: str, episodes: int):
    """A real episodes file: scripted-expert demos from MuJoCo (seed 0), state observations."""
    from actjepa_core.sim.collect import collect_episodes

    path = tmp_path_factory.mktemp("data") / f"{task}.hdf5"
    write_episodes(path, collect_episodes(task, episodes, seed=0, progress=False),
                   source=f"metaworld:{task}:test")
    return path


def exploration_episodes(task: str, episodes: int, seed: int = 0):
    """Expert episodes where each tick's action is uniform random with prob. EXPLORE_RANDOM."""
    from actjepa_core.sim.collect import collect_episodes

    return collect_episodes(task, episodes, seed=seed, max_steps=EXPLORE_STEPS,
                            explore=EXPLORE_RANDOM, progress=False)


def small_config(steps: int = 200, **overrides) -> TrainConfig:
    """The default config, shortened for tests (log/val/checkpoint cadence scaled down)."""
    config = TrainConfig()
    config.optim.steps = steps
    config.run.log_every = max(1, steps // 10)
    config.run.val_every = max(1, steps // 4)
    config.run.checkpoint_every = max(1, steps // 2)
    config.run.device = "cpu"
    for key, value in overrides.items():
        section, name = key.split("__")
        setattr(getattr(config, section), name, value)
    return config


class UniformRandomPolicy:
    """The floor every learned policy must beat: uniform actions in [-1, 1], seeded."""

    policy_type = "random"

    def __init__(self, action_dim: int = 4, seed: int = 0) -> None:
        import numpy as np

        self.rng = np.random.default_rng(seed)
        self.action_dim = action_dim
        self.obs_noise = 0.0

    def reset(self) -> None:
        """Stateless."""

    def act(self, obs):
        return self.rng.uniform(-1.0, 1.0, self.action_dim).astype("float32")


def median_final_distance(result) -> float:
    """Metres between the target and where the median episode of an EvalResult ended."""
    import numpy as np

    return float(np.median([r.final_distance for r in result.records]))


def reaches_closer_than_random(result, random) -> bool:
    """The closed-loop verdict of the reach tests (see REACH_CLOSER)."""
    return median_final_distance(result) < REACH_CLOSER * median_final_distance(random)
