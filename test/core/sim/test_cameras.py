"""Several Meta-World cameras per observation: each under its own key (``image`` for the default
camera, ``image_<C>`` for camera C), recorded by ``collect_episodes`` and asked for by a policy's
observation spec in the evaluation harness."""
from __future__ import annotations

import numpy as np
import pytest

from actjepa_core.config import TrainConfig, apply_overrides
from actjepa_core.data.episodes import read_episodes, write_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.evaluate import evaluate, sim_cameras
from actjepa_core.policies import EndToEndPolicy, FrozenWorld
from actjepa_core.sim.arm import CAMERA, SimArm, camera_key, key_camera, key_cameras
from actjepa_core.sim.collect import collect_episodes
from actjepa_core.training.trainer import train

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("one_torch_thread")]
SIZE = 16
TWO = ("image", "image_behindGripper", "joints")  # a scene camera and a wrist camera


def test_camera_keys_name_their_camera_both_ways():
    assert camera_key(CAMERA) == "image" and key_camera("image") == CAMERA
    assert camera_key("topview") == "image_topview" and key_camera("image_topview") == "topview"
    assert key_camera("joints") is None
    assert key_cameras(["joints", "image_topview", "image"]) == ("topview", CAMERA)
    with pytest.raises(ActJepaError, match=r"image_gripperPOV: no simulated camera 'gripperPOV'"):
        key_camera("image_gripperPOV")  # renders the wrong view (Meta-World #505): refused


def test_each_camera_renders_its_own_view_under_its_own_key():
    two = SimArm("pick-place-v3", image_size=SIZE, cameras=(CAMERA, "topview"))
    one = SimArm("pick-place-v3", image_size=SIZE)
    obs, alone = two.reset(3), one.reset(3)
    two.close(), one.close()
    assert obs["image"].shape == obs["image_topview"].shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(obs["image"], alone["image"])  # a second camera changes nothing
    assert np.abs(obs["image"].astype(int) - obs["image_topview"]).mean() > 10  # another view
    with pytest.raises(ActJepaError, match="expected one or more distinct names"):
        SimArm("reach-v3", image_size=SIZE, cameras=("topview", "topview"))


def test_collect_records_every_named_camera(tmp_path):
    path = tmp_path / "two.hdf5"
    write_episodes(path, collect_episodes("reach-v3", 2, image_size=SIZE, max_steps=5, keys=TWO,
                                          progress=False), source="test:two-cameras")
    data = read_episodes(path)
    assert sorted(data.obs_keys) == sorted(TWO)
    frames = data.episodes[0].obs
    assert frames["image"].shape == frames["image_behindGripper"].shape == (5, SIZE, SIZE, 3)
    assert not np.array_equal(frames["image"], frames["image_behindGripper"])
    with pytest.raises(ActJepaError, match=r"\['image_topview'\] need an image size"):
        next(collect_episodes("reach-v3", 1, keys=("image_topview", "joints")))
    with pytest.raises(ActJepaError, match=r"image_wrist: no simulated camera 'wrist'"):
        next(collect_episodes("reach-v3", 1, image_size=SIZE, keys=("image_wrist",)))


def test_a_two_camera_policy_gets_both_cameras_from_the_harness(tmp_path):
    path = tmp_path / "two.hdf5"
    write_episodes(path, collect_episodes("reach-v3", 2, image_size=SIZE, keys=TWO,
                                          progress=False), source="test:two-cameras")
    config = apply_overrides(TrainConfig(), [
        "objective=bc", "bc.head_keys=[joints]", "bc.chunk=2", "model.image_channels=[8]",
        "model.latent_dim=8", "optim.batch_size=8", "optim.steps=4", "run.device=cpu",
        "data.val_fraction=0", "run.val_every=1000"])
    train(read_episodes(path), config, tmp_path / "run", progress=False)
    policy = EndToEndPolicy.build(FrozenWorld.from_checkpoint(tmp_path / "run" / "last.pt"), None)
    assert sim_cameras(policy) == (SIZE, (CAMERA, "behindGripper"))
    result = evaluate(policy, "reach-v3", 1, max_steps=3, progress=False)
    assert result.episodes == 1 and np.isfinite(result.mean_final_distance)
    with pytest.raises(ActJepaError, match=r"missing key\(s\) \['image_behindGripper'\]"):
        policy.act({"image": np.zeros((SIZE, SIZE, 3), np.uint8),
                    "joints": np.zeros(9, np.float32)})
