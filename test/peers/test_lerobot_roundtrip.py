"""LeRobot's own reader on what `actjepa export lerobot` writes (`make test-peers`, .venv-peers).

``LeRobotDataset(repo_id, root=DIR, video_backend="pyav")``, offline, must give every frame's
state, action, camera image, indices and task exactly as the source episodes file holds them:
state and action bit for bit, images within VIDEO_TOLERANCE grey levels (the export is lossless;
LeRobot returns float images in [0, 1], so one level of rounding is allowed), as video and as
PNG images (--no-video).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from actjepa_core.data.episodes import Episode, read_episodes, write_episodes
from actjepa_core.exporters import ExportOptions, export_lerobot

pytestmark = pytest.mark.peers
os.environ.setdefault("HF_HUB_OFFLINE", "1")
LENGTHS = (12, 9, 15)
FPS = 10
VIDEO_TOLERANCE = 1  # grey levels after LeRobot's uint8 -> float -> our round trip


def source_file(path):
    rng = np.random.default_rng(0)
    episodes = [Episode(obs={"image": rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8),
                             "joints": rng.normal(size=(n, 4)).astype(np.float32)},
                        actions=rng.normal(size=(n, 3)).astype(np.float32), success=i == 1)
                for i, n in enumerate(LENGTHS)]
    write_episodes(path, episodes, source="synthetic")
    return read_episodes(path)


@pytest.mark.parametrize("video", [True, False])
def test_lerobot_dataset_reads_the_export(tmp_path, video):
    dataset_module = pytest.importorskip("lerobot.datasets.lerobot_dataset")
    source = source_file(tmp_path / "eps.hdf5")
    root = tmp_path / "ds"
    export_lerobot(str(tmp_path / "eps.hdf5"), str(root),
                   ExportOptions(fps=FPS, video=video, task="reach the goal"))
    dataset = dataset_module.LeRobotDataset("local/actjepa-export", root=root,
                                            video_backend="pyav")
    assert dataset.num_episodes == len(LENGTHS) and dataset.num_frames == sum(LENGTHS)
    assert dataset.fps == FPS
    worst = 0
    index = 0
    for e, ep in enumerate(source.episodes):
        for t in range(ep.num_steps):
            item = dataset[index]
            assert int(item["episode_index"]) == e and int(item["frame_index"]) == t
            assert int(item["index"]) == index and item["task"] == "reach the goal"
            assert float(item["timestamp"]) == pytest.approx(t / FPS, abs=1e-6)
            assert np.array_equal(item["observation.state"].numpy(), ep.obs["joints"][t])
            assert np.array_equal(item["action"].numpy(), ep.actions[t])
            image = item["observation.images.image"].numpy()  # (3, H, W) float in [0, 1]
            pixels = np.round(image.transpose(1, 2, 0) * 255).astype(int)
            worst = max(worst, int(np.abs(pixels - ep.obs["image"][t]).max()))
            index += 1
    assert worst <= VIDEO_TOLERANCE, worst
    print(f"video={video}: max image difference {worst} grey levels")
