"""`actjepa import lerobot` on datasets written by LeRobot itself (test/data/lerobot/).

conftest.py writes LeRobot's format by hand; these folders were written by LeRobot's own
``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` / ``finalize`` (v3.0) in
.venv-peers (test/peers/make_lerobot_data.py, which says how to regenerate them), so this
checks the importer against the real writer's output without lerobot installed. Beside each
folder, ``<name>.npz`` holds what the generator wrote and what LeRobot's own reader decoded:
state and actions must come back bit for bit, camera frames exactly as LeRobot decodes them
(the PNG camera also exactly as written; the AV1 video is lossy, so only LeRobot's own decode
is the reference).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actjepa_core.data.episodes import read_episodes
from actjepa_core.importers import ImportOptions, import_dataset

DATA = Path(__file__).resolve().parents[2] / "data" / "lerobot"
NAMES = ("video", "images")


def expected(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def episode_slices(lengths: np.ndarray) -> list[slice]:
    ends = np.cumsum(lengths)
    return [slice(int(end - n), int(end)) for n, end in zip(lengths, ends)]


@pytest.mark.parametrize("name", NAMES)
def test_import_gives_back_what_lerobot_wrote(tmp_path, name):
    want = expected(name)
    out = tmp_path / f"{name}.hdf5"
    result = import_dataset("lerobot", str(DATA / name), str(out), ImportOptions())
    assert result.episodes == len(want["lengths"]) and result.steps == int(want["lengths"].sum())
    data = read_episodes(out)
    assert data.obs_keys == ["image", "state"] and data.action_dim == want["action"].shape[1]
    assert data.source.startswith(f"lerobot:{DATA / name}:v3.0:fps=10")
    assert f"image={want['camera']}" in data.source
    assert [ep.num_steps for ep in data.episodes] == want["lengths"].tolist()
    for ep, rows in zip(data.episodes, episode_slices(want["lengths"])):
        assert ep.obs["state"].dtype == np.float32 and ep.actions.dtype == np.float32
        assert np.array_equal(ep.obs["state"], want["state"][rows])  # bit for bit
        assert np.array_equal(ep.actions, want["action"][rows])
        assert ep.obs["image"].dtype == np.uint8
        assert np.array_equal(ep.obs["image"], want["lerobot_frames"][rows])  # as LeRobot reads
    if name == "images":  # PNG: lossless, so also exactly what was written
        frames = np.concatenate([ep.obs["image"] for ep in data.episodes])
        assert np.array_equal(frames, want["frames"])


def test_cli_imports_the_video_dataset_resized(tmp_path):
    want = expected("video")
    out = tmp_path / "video16.hdf5"
    proc = subprocess.run([sys.executable, "-m", "actjepa_core.cli", "import", "lerobot",
                           str(DATA / "video"), "--out", str(out), "--image-size", "16"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"imported 3 episodes ({int(want['lengths'].sum())} steps" in proc.stdout
    data = read_episodes(out)
    assert data.episodes[0].obs["image"].shape == (int(want["lengths"][0]), 16, 16, 3)
    states = np.concatenate([ep.obs["state"] for ep in data.episodes])
    assert np.array_equal(states, want["state"])


def test_a_damaged_copy_fails_with_one_line_naming_the_file(tmp_path):
    import shutil

    copy = tmp_path / "video"
    shutil.copytree(DATA / "video", copy)
    data_file = copy / "data" / "chunk-000" / "file-000.parquet"
    data_file.write_bytes(data_file.read_bytes()[:100])  # cut short
    proc = subprocess.run([sys.executable, "-m", "actjepa_core.cli", "import", "lerobot",
                           str(copy), "--out", str(tmp_path / "x.hdf5")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(data_file) in lines[0] and "parquet" in lines[0], proc.stderr
