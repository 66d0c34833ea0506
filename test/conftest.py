"""Session fixtures: real, small data built once (Meta-World expert demos, a short training run)."""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import pytest  # noqa: E402

from actjepa_core.config import TrainConfig  # noqa: E402
from actjepa_core.episodes import read_episodes, write_episodes  # noqa: E402

PUSH_EPISODES = 16  # real push-v3 expert demos: ~1,600 transitions, collected in a few seconds


@pytest.fixture(scope="session")
def push_demos_path(tmp_path_factory):
    """A real episodes file: scripted-expert push-v3 demos from MuJoCo, state observations."""
    from actjepa_core.sim import collect_episodes

    path = tmp_path_factory.mktemp("data") / "push.hdf5"
    write_episodes(path, collect_episodes("push-v3", PUSH_EPISODES, seed=0, progress=False),
                   source="metaworld:push-v3:test")
    return path


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
