"""`actjepa export lerobot` then `actjepa import lerobot`: the same episodes come back.

Vectors and actions bit for bit; camera frames exact both as PNG images (--no-video) and as
video (H.264 in RGB planes at qp 0, lossless: measured maximum difference 0 grey levels, on
random-noise frames, the hardest case for a codec). The files are real: an episodes file written
by write_episodes, and one collected from the simulator. LeRobot's own reader is checked in
test/peers/ (`make test-peers`).
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from actjepa_core.cli import main
from actjepa_core.data.episodes import Episode, read_episodes, write_episodes
from actjepa_core.exporters import ExportOptions, export_lerobot
from actjepa_core.importers import ImportOptions, import_dataset

LENGTHS = (12, 9, 15)
VIDEO_TOLERANCE = 0  # grey levels: libx264rgb at qp 0 is lossless


def synthetic_episodes(path, lengths=LENGTHS):
    """Two vector keys (one of them 2-D per step) and a noise camera: every value distinct."""
    rng = np.random.default_rng(0)
    episodes = [Episode(obs={"image": rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8),
                             "joints": rng.normal(size=(n, 4)).astype(np.float32),
                             "proprio": rng.normal(size=(n, 2, 3)).astype(np.float32)},
                        actions=rng.normal(size=(n, 3)).astype(np.float32), success=i == 1)
                for i, n in enumerate(lengths)]
    write_episodes(path, episodes, source="synthetic")
    return read_episodes(path)


def round_trip(tmp_path, source, video: bool):
    out = tmp_path / ("video" if video else "images")
    result = export_lerobot(str(source), str(out), ExportOptions(fps=10, video=video))
    import_dataset("lerobot", str(out), str(tmp_path / "back.hdf5"), ImportOptions())
    return out, result, read_episodes(tmp_path / "back.hdf5")


def vector_state(ep: Episode, keys) -> np.ndarray:
    n = ep.num_steps
    return np.concatenate([np.asarray(ep.obs[k]).reshape(n, -1) for k in keys], axis=1)


@pytest.mark.parametrize("video", [True, False])
def test_export_then_import_gives_the_episodes_back(tmp_path, video):
    source = synthetic_episodes(tmp_path / "eps.hdf5")
    out, result, back = round_trip(tmp_path, tmp_path / "eps.hdf5", video)
    assert result.episodes == 3 and result.frames == sum(LENGTHS)
    assert back.obs_keys == ["image", "state"]
    for a, b in zip(source.episodes, back.episodes, strict=True):
        assert np.array_equal(a.actions, b.actions)
        assert np.array_equal(vector_state(a, ["joints", "proprio"]), b.obs["state"])
        diff = np.abs(a.obs["image"].astype(int) - b.obs["image"].astype(int)).max()
        assert diff <= (VIDEO_TOLERANCE if video else 0)
        assert a.success == b.success
    assert (out / "videos").is_dir() == video


def test_metadata_is_lerobot_v3(tmp_path):
    synthetic_episodes(tmp_path / "eps.hdf5")
    out, _, _ = round_trip(tmp_path, tmp_path / "eps.hdf5", video=True)
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert info["total_episodes"] == 3 and info["total_frames"] == sum(LENGTHS)
    feats = info["features"]
    assert feats["observation.state"]["shape"] == [10]
    assert feats["observation.state"]["names"][:5] == ["joints.0", "joints.1", "joints.2",
                                                       "joints.3", "proprio.0"]
    assert feats["observation.images.image"]["dtype"] == "video"
    assert feats["action"]["shape"] == [3]
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    ends = np.cumsum(LENGTHS)
    assert [e["dataset_to_index"] for e in episodes] == ends.tolist()
    assert [e["videos/observation.images.image/from_timestamp"] for e in episodes] == \
        pytest.approx([0.0, ends[0] / 10, ends[1] / 10])
    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert tasks.column("task").to_pylist() == ["synthetic"]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    stats = json.loads((out / "meta/stats.json").read_text())
    frames = pq.read_table(out / "data/chunk-000/file-000.parquet")
    action = np.stack(frames.column("action").to_pylist())
    assert stats["action"]["mean"] == pytest.approx(action.mean(0).tolist())
    assert np.array(stats["observation.images.image"]["mean"]).shape == (3, 1, 1)
    assert frames.column("index").to_pylist() == list(range(sum(LENGTHS)))


@pytest.mark.sim
def test_simulator_episodes_round_trip_through_the_cli(tmp_path, capsys):
    from actjepa_core.sim.collect import collect_episodes

    path = tmp_path / "reach.hdf5"
    write_episodes(path, collect_episodes("reach-v3", 2, image_size=32, max_steps=20,
                                          progress=False, keys=("image", "joints")),
                   source="metaworld:reach-v3")
    source = read_episodes(path)
    assert main(["export", "lerobot", str(path), "--out", str(tmp_path / "ds"),
                 "--task", "reach the goal"]) == 0
    assert "exported 2 episodes" in capsys.readouterr().out
    assert main(["import", "lerobot", str(tmp_path / "ds"), "--out",
                 str(tmp_path / "back.hdf5")]) == 0
    back = read_episodes(tmp_path / "back.hdf5")
    for a, b in zip(source.episodes, back.episodes, strict=True):
        assert np.array_equal(a.actions, b.actions)
        assert np.array_equal(np.asarray(a.obs["joints"], np.float32), b.obs["state"])
        assert np.array_equal(a.obs["image"], b.obs["image"])


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys):
    synthetic_episodes(tmp_path / "eps.hdf5")
    (tmp_path / "taken").mkdir()
    cases = [(["missing.hdf5", "--out", str(tmp_path / "a")], "episodes file not found"),
             ([str(tmp_path / "eps.hdf5"), "--out", str(tmp_path / "taken")], "already exists"),
             ([str(tmp_path / "eps.hdf5"), "--out", str(tmp_path / "b"), "--fps", "0"],
              "--fps is 0")]
    for argv, expected in cases:
        assert main(["export", "lerobot", *argv]) != 0
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eps.hdf5", "taken"]


def test_grey_frames_are_refused(tmp_path, capsys):
    ep = Episode(obs={"depth": np.zeros((3, 8, 8, 1), np.uint8)},
                 actions=np.zeros((3, 2), np.float32))
    write_episodes(tmp_path / "eps.hdf5", [ep], source="depth")
    assert main(["export", "lerobot", str(tmp_path / "eps.hdf5"), "--out",
                 str(tmp_path / "ds")]) != 0
    assert "expected RGB (H, W, 3)" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()
