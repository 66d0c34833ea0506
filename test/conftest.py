"""Session fixtures: real, small data built once (Meta-World expert demos, short training runs),
and the markers that pick the inner loop (``pytest -m "not ros and not sim"``).

Markers are applied here rather than in every module: tests under test/ros/ are ``ros``; a test
that uses a fixture built from the simulator, or sits in a module marked ``sim``, is ``sim``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from actjepa_core.data.episodes import EpisodeSet, read_episodes

from demo_data import (
    EXPLORE_EPISODES,
    EXPLORE_WORLD_STEPS,
    PUSH_EPISODES,
    REACH_EPISODES,
    REACH_EVAL_EPISODES,
    REACH_EVAL_STEPS,
    REACH_WORLD_STEPS,
    UniformRandomPolicy,
    expert_demos_file,
    exploration_episodes,
    small_config,
)

ROS_TESTS = Path(__file__).parent / "ros"
SIM_FIXTURES = {"push_demos_path", "push_demos", "trained_run", "reach_demos_path", "reach_demos",
                "reach_world", "reach_random", "reach_explore_world"}


def pytest_collection_modifyitems(items):
    for item in items:
        if ROS_TESTS in Path(item.fspath).parents:
            item.add_marker(pytest.mark.ros)
        if SIM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sim)


def train_on_one_thread(data, config, run_dir):
    """Tiny MLPs gain nothing from a second torch thread; on a busy 2-core machine two threads
    per process make them several times slower."""
    import torch

    from actjepa_core.training.trainer import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(data, config, run_dir, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """Tiny MLPs: a second torch thread only adds contention on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def push_demos_path(tmp_path_factory):
    return expert_demos_file(tmp_path_factory, "push-v3", PUSH_EPISODES)


@pytest.fixture(scope="session")
def push_demos(push_demos_path):
    return read_episodes(push_demos_path)


@pytest.fixture(scope="session")
def trained_run(push_demos, tmp_path_factory):
    """One default-config run on the push demos, shared by tests that only read its outputs."""
    from actjepa_core.training.trainer import train

    run_dir = tmp_path_factory.mktemp("runs") / "push"
    result = train(push_demos, small_config(steps=600), run_dir, progress=False)
    return run_dir, result


# ---- reach-v3: a world model the policy tests build on (BC, NN) ------------------------------
@pytest.fixture(scope="session")
def reach_demos_path(tmp_path_factory):
    return expert_demos_file(tmp_path_factory, "reach-v3", REACH_EPISODES)


@pytest.fixture(scope="session")
def reach_demos(reach_demos_path):
    return read_episodes(reach_demos_path)


@pytest.fixture(scope="session")
def reach_world(reach_demos, tmp_path_factory):
    """Path of a world-model checkpoint (last.pt) briefly trained on the reach demos."""
    run_dir = tmp_path_factory.mktemp("runs") / "reach"
    train_on_one_thread(reach_demos, small_config(steps=REACH_WORLD_STEPS), run_dir)
    return run_dir / "last.pt"


@pytest.fixture(scope="session")
def reach_random():
    """The uniform random policy on the reach evaluation episodes: the floor (it about never
    reaches, and ends far from the target)."""
    from actjepa_core.evaluation.evaluate import evaluate

    return evaluate(UniformRandomPolicy(), "reach-v3", REACH_EVAL_EPISODES, seed=1,
                    max_steps=REACH_EVAL_STEPS, progress=False)


# ---- reach-v3: an action-sensitive world model for latent MPC ---------------------------------
@pytest.fixture(scope="session")
def reach_explore_world(tmp_path_factory):
    """Path of a small world model (last.pt) trained with 5-step rollouts on exploration data."""
    from actjepa_core.sim.arm import ACTION_DIM

    data = EpisodeSet(list(exploration_episodes("reach-v3", EXPLORE_EPISODES)), ["state"],
                      ACTION_DIM, "test:reach-v3:explore")
    config = small_config(steps=EXPLORE_WORLD_STEPS, loss__rollout_steps=5,
                          model__latent_dim=64, model__predictor_hidden=[64, 64],
                          optim__batch_size=128)
    run_dir = tmp_path_factory.mktemp("runs") / "reach_explore"
    train_on_one_thread(data, config, run_dir)
    return run_dir / "last.pt"
