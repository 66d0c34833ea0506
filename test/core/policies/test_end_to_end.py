"""The e2e policy: a camera + joint-state network trained end to end (objective bc) and run
through the Policy interface, the evaluation harness and policy files."""
from __future__ import annotations

import numpy as np
import pytest

from actjepa_core.cli import main
from actjepa_core.config import TrainConfig, apply_overrides
from actjepa_core.data.episodes import EpisodeSet, write_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.evaluate import evaluate
from actjepa_core.policies import EndToEndPolicy, FrozenWorld, load_policy
from actjepa_core.sim.arm import ACTION_DIM, SimArm
from actjepa_core.sim.collect import collect_episodes
from actjepa_core.training.trainer import train

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("one_torch_thread")]
SIZE, EPISODES, CHUNK = 16, 3, 3


@pytest.fixture(scope="module")
def camera_demos(tmp_path_factory):
    """Reach demos as a real arm would record them: the camera and the joint states only."""
    path = tmp_path_factory.mktemp("camera") / "reach.hdf5"
    write_episodes(path, collect_episodes("reach-v3", EPISODES, image_size=SIZE,
                                          keys=("image", "joints"), progress=False),
                   source="test:reach-v3:camera")
    return path


@pytest.fixture(scope="module")
def camera_run(camera_demos, tmp_path_factory):
    from actjepa_core.data.episodes import read_episodes

    config = apply_overrides(TrainConfig(), [
        "objective=bc", "bc.head_keys=[joints]", f"bc.chunk={CHUNK}", "bc.policy_ema=0.9",
        "model.image_norm=group", "model.image_channels=[8, 16]", "model.latent_dim=16",
        "augment.shift=2", "optim.batch_size=16", "optim.steps=20", "run.device=cpu",
        "data.val_fraction=0.3", "run.val_every=10", "run.log_every=10"])
    run = tmp_path_factory.mktemp("camera_run")
    train(read_episodes(camera_demos), config, run, progress=False)
    return run / "last.pt"


def test_collected_camera_demos_hold_no_task_state(camera_demos):
    from actjepa_core.data.episodes import read_episodes

    data = read_episodes(camera_demos)
    assert sorted(data.obs_keys) == ["image", "joints"]
    episode = data.episodes[0]
    assert episode.obs["image"].shape[1:] == (SIZE, SIZE, 3)
    arm = SimArm("reach-v3", seed=0, joints=True)
    np.testing.assert_array_equal(episode.obs["joints"][0], arm.reset(0)["joints"])
    arm.close()
    with pytest.raises(ActJepaError, match="expected distinct keys of"):
        next(collect_episodes("reach-v3", 1, keys=("image", "goal"), image_size=SIZE))


def test_e2e_policy_acts_within_bounds_and_replays_from_its_file(camera_run, tmp_path):
    policy = EndToEndPolicy.build(FrozenWorld.from_checkpoint(camera_run), None)
    assert sorted(policy.obs_spec) == ["image", "joints"] and policy.variant == f"chunk {CHUNK}"
    result = evaluate(policy, "reach-v3", 1, max_steps=6, progress=False)  # the harness feeds it
    assert result.episodes == 1 and np.isfinite(result.mean_final_distance)
    arm = SimArm("reach-v3", seed=1, image_size=SIZE, joints=True)
    obs = arm.reset(0)
    arm.close()
    policy.reset()
    first = [policy.act(obs) for _ in range(CHUNK)]
    low, high = policy.processor.action_low, policy.processor.action_high
    assert all(np.isfinite(a).all() and (a >= low).all() and (a <= high).all() for a in first)
    policy.save(tmp_path / "cam.pt")
    loaded = load_policy(tmp_path / "cam.pt", policy_type="e2e")
    loaded.reset()
    np.testing.assert_array_equal(np.stack([loaded.act(obs) for _ in range(CHUNK)]),
                                  np.stack(first))
    with pytest.raises(ActJepaError, match=r"missing key\(s\) \['joints'\]"):
        policy.act({"image": obs["image"]})


def test_e2e_runs_only_checkpoints_trained_end_to_end(camera_demos, tmp_path, capsys):
    from actjepa_core.data.episodes import read_episodes

    config = apply_overrides(TrainConfig(), ["model.image_channels=[8]", "model.latent_dim=8",
                                             "optim.steps=2", "optim.batch_size=8",
                                             "run.device=cpu"])
    data = read_episodes(camera_demos)
    train(EpisodeSet(data.episodes, ["image"], ACTION_DIM, "test"), config, tmp_path / "jepa",
          progress=False)
    with pytest.raises(ActJepaError, match="trained with objective bc; this one was trained "
                                           "with 'act-jepa'"):
        EndToEndPolicy.build(FrozenWorld.from_checkpoint(tmp_path / "jepa" / "last.pt"), None)
    out = tmp_path / "e2e.pt"
    assert main(["train-policy", "e2e", "--encoder", str(tmp_path / "jepa" / "last.pt"),
                 "--out", str(out)]) == 2
    assert "objective bc" in capsys.readouterr().err and not out.exists()


def test_train_with_the_shipped_camera_config_writes_the_policy_file(camera_demos, tmp_path,
                                                                      capsys):
    """`actjepa train --config config/train_camera.yaml`: one command from demos to a policy."""
    from demo_data import REPO

    out = tmp_path / "cam"
    assert main(["train", "--data", str(camera_demos), "--config",
                 str(REPO / "config" / "train_camera.yaml"), "--out", str(out), "--steps", "3",
                 "--batch-size", "8", "--set", "model.image_channels=[8]", "--quiet"]) == 0
    assert f"camera policy -> {out / 'policy.pt'}" in capsys.readouterr().out
    policy = load_policy(out / "policy.pt", policy_type="e2e")
    assert sorted(policy.obs_spec) == ["image", "joints"]
