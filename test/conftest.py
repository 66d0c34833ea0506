"""Session fixtures: real, small data built once (Meta-World expert demos, a short training run)."""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import pytest  # noqa: E402

from actjepa_core.config import TrainConfig  # noqa: E402
from actjepa_core.episodes import read_episodes, write_episodes  # noqa: E402

PUSH_EPISODES = 16  # real push-v3 expert demos: ~1,600 transitions, collected in a few seconds


def expert_demos_file(tmp_path_factory, task: str, episodes: int):
    """A real episodes file: scripted-expert demos from MuJoCo (seed 0), state observations."""
    from actjepa_core.sim import collect_episodes

    path = tmp_path_factory.mktemp("data") / f"{task}.hdf5"
    write_episodes(path, collect_episodes(task, episodes, seed=0, progress=False),
                   source=f"metaworld:{task}:test")
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny MLPs: a second torch thread only adds contention on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tester(request):
    """A ROS client node on the test module's own ROS domain (its module-level DOMAIN)."""
    from ros_harness import RosClient

    client = RosClient(request.module.DOMAIN)
    yield client
    client.close()


@pytest.fixture(scope="session")
def push_demos_path(tmp_path_factory):
    return expert_demos_file(tmp_path_factory, "push-v3", PUSH_EPISODES)


@pytest.fixture(scope="session")
def push_demos(push_demos_path):
    return read_episodes(push_demos_path)


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


@pytest.fixture(scope="session")
def trained_run(push_demos, tmp_path_factory):
    """One default-config run on the push demos, shared by tests that only read its outputs."""
    from actjepa_core.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "push"
    result = train(push_demos, small_config(steps=600), run_dir, progress=False)
    return run_dir, result


# ---- reach-v3: a world model the policy tests build on (BC, NN) ------------------------------
REACH_EPISODES = 40  # expert demos: enough goal coverage for a latent nearest neighbour to succeed
REACH_WORLD_STEPS = 600  # a brief pretraining run (seconds on one core)


@pytest.fixture(scope="session")
def reach_demos_path(tmp_path_factory):
    return expert_demos_file(tmp_path_factory, "reach-v3", REACH_EPISODES)


@pytest.fixture(scope="session")
def reach_demos(reach_demos_path):
    return read_episodes(reach_demos_path)


@pytest.fixture(scope="session")
def reach_world(reach_demos, tmp_path_factory):
    """Path of a world-model checkpoint (last.pt) briefly trained on the reach demos.

    Trained on one torch thread: these small MLPs gain nothing from a second one, and on a busy
    2-core machine two threads per process make them several times slower.
    """
    import torch

    from actjepa_core.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "reach"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(reach_demos, small_config(steps=REACH_WORLD_STEPS), run_dir, progress=False)
    finally:
        torch.set_num_threads(threads)
    return run_dir / "last.pt"


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


REACH_EVAL_EPISODES = 10  # closed-loop episodes per policy (seed 1: start configs unseen in demos)
REACH_EVAL_STEPS = 150


@pytest.fixture(scope="session")
def reach_random_successes():
    """Episodes the uniform random policy solves on the reach evaluation episodes (about none)."""
    from actjepa_core.evaluate import evaluate

    return evaluate(UniformRandomPolicy(), "reach-v3", REACH_EVAL_EPISODES, seed=1,
                    max_steps=REACH_EVAL_STEPS, progress=False).successes


# ---- reach-v3: an action-sensitive world model for latent MPC ---------------------------------
# In expert-only demos the action is a function of the state, so the predictor can ignore it and
# MPC has little to plan with; multi-step training (rollout_steps = 5) trains the predictor on its
# own rollouts, as MPC uses it. Measured MPC success on reach-v3 (20 episodes, 2000 training
# steps): expert demos 4/20, expert demos + 5-step rollouts 7/20, half the ticks random + 5-step
# rollouts 16/20. This fixture is a scaled-down copy of the last recipe.
EXPLORE_EPISODES = 40
EXPLORE_STEPS = 100  # ticks per episode
EXPLORE_RANDOM = 0.5  # share of ticks with a uniform random action instead of the expert's
EXPLORE_WORLD_STEPS = 1000  # a small model (D = 64) trains in ~10 s of CPU


def exploration_episodes(task: str, episodes: int, seed: int = 0):
    """Expert episodes where each tick's action is uniform random with prob. EXPLORE_RANDOM."""
    from actjepa_core.sim import collect_episodes

    return collect_episodes(task, episodes, seed=seed, max_steps=EXPLORE_STEPS,
                            explore=EXPLORE_RANDOM, progress=False)


@pytest.fixture(scope="session")
def reach_explore_world(tmp_path_factory):
    """Path of a small world model (last.pt) trained with 5-step rollouts on exploration data."""
    import torch

    from actjepa_core.episodes import EpisodeSet
    from actjepa_core.sim import ACTION_DIM
    from actjepa_core.train import train

    data = EpisodeSet(list(exploration_episodes("reach-v3", EXPLORE_EPISODES)), ["state"],
                      ACTION_DIM, "test:reach-v3:explore")
    config = small_config(steps=EXPLORE_WORLD_STEPS, loss__rollout_steps=5,
                          model__latent_dim=64, model__predictor_hidden=[64, 64],
                          optim__batch_size=128)
    run_dir = tmp_path_factory.mktemp("runs") / "reach_explore"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(data, config, run_dir, progress=False)
    finally:
        torch.set_num_threads(threads)
    return run_dir / "last.pt"
