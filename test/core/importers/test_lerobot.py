"""actjepa import lerobot: LeRobotDataset v3.0 and v2.1 folders (parquet + mp4) -> episodes.

The datasets are written by conftest.py exactly as LeRobot publishes them; video frames carry
a grey level that encodes (episode, frame), so the checks below see that every observation is
the video frame of its own row (v3.0 packs episodes back to back in one mp4)."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from actjepa_core.data.episodes import read_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.importers import ImportOptions, import_dataset

LENGTHS = (12, 9, 15)
GREY_TOLERANCE = 4  # lossy video: decoded levels within this of the encoded ones
CAMERA, SIDE, STATE, ACTION = "observation.images.top", 64, 4, 2  # as conftest writes them


def actjepa(*args):
    return subprocess.run([sys.executable, "-m", "actjepa_core.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def check_episodes(path, make, image_side=SIDE):
    assert (CAMERA, SIDE, STATE, ACTION) == (make.camera, make.side, make.state, make.action)
    data = read_episodes(path)
    assert data.obs_keys == ["image", "state"] and data.action_dim == ACTION
    assert [ep.num_steps for ep in data.episodes] == list(LENGTHS)
    for e, ep in enumerate(data.episodes):
        arrays = make.arrays(e, ep.num_steps)
        np.testing.assert_allclose(ep.obs["state"], arrays["state"])
        np.testing.assert_allclose(ep.actions, arrays["action"], rtol=1e-6)
        assert ep.obs["image"].shape == (ep.num_steps, image_side, image_side, 3)
        levels = ep.obs["image"].reshape(ep.num_steps, -1).mean(axis=1)
        expected = [make.level(e, i) for i in range(ep.num_steps)]
        assert np.abs(levels - expected).max() <= GREY_TOLERANCE, (e, levels, expected)
    return data


def test_v3_imports_and_trains(lerobot_v3, tmp_path, make):
    out = tmp_path / "pusht.hdf5"
    proc = actjepa("import", "lerobot", lerobot_v3, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 episodes (36 steps" in proc.stdout
    data = check_episodes(out, make)
    assert data.source.startswith(f"lerobot:{lerobot_v3}:v3.0:fps=10")
    assert f"state=observation.state({STATE})" in data.source and f"image={CAMERA}" in data.source
    proc = actjepa("train", "--data", out, "--out", tmp_path / "run", "--steps", 5,
                   "--batch-size", 8, "--quiet", "--set", "run.val_every=5",
                   "--set", "data.val_fraction=0.34", "--set", "model.image_channels=[8,8]")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "best.pt").is_file()


def test_v21_imports_and_trains(lerobot_v21, tmp_path, make):
    out = tmp_path / "pusht.hdf5"
    proc = actjepa("import", "lerobot", lerobot_v21, "--out", out, "--image-size", 16)
    assert proc.returncode == 0, proc.stderr
    check_episodes(out, make, image_side=16)
    proc = actjepa("train", "--data", out, "--out", tmp_path / "run", "--steps", 5,
                   "--batch-size", 8, "--quiet", "--set", "run.val_every=5",
                   "--set", "data.val_fraction=0.34", "--set", "model.image_channels=[8,8]")
    assert proc.returncode == 0, proc.stderr


def test_image_features_stored_in_the_parquet(tmp_path, make):
    root = make.v21(tmp_path / "images", camera_dtype="image")
    out = tmp_path / "x.hdf5"
    import_dataset("lerobot", str(root), str(out), ImportOptions())
    check_episodes(out, make)


def test_state_only_and_first_episodes(lerobot_v3, tmp_path):
    out = tmp_path / "x.hdf5"
    result = import_dataset("lerobot", str(lerobot_v3), str(out),
                            ImportOptions(cameras=[], max_episodes=2))
    assert result.episodes == 2 and result.obs == {"state": (STATE,)}
    result = import_dataset("lerobot", str(lerobot_v3), str(out),
                            ImportOptions(cameras=["top"], state_keys=[], max_episodes=1))
    assert result.obs == {"image": (SIDE, SIDE, 3)}  # a camera by its short name


def copy(root, tmp_path):
    return shutil.copytree(root, tmp_path / "copy")


def rewrite_info(root, **changes):
    info = json.loads((root / "meta/info.json").read_text())
    info.update(changes)
    (root / "meta/info.json").write_text(json.dumps(info))


def drop_rows(path, keep):
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(path).slice(0, keep), path)


V3_DAMAGE = {
    "no info.json": (lambda r: (r / "meta/info.json").unlink(),
                     "no meta/info.json; expected a LeRobot dataset folder"),
    "unknown version": (lambda r: rewrite_info(r, codebase_version="v1.6"),
                        "codebase_version 'v1.6'; expected one of"),
    "no action": (lambda r: rewrite_info(r, features={
        k: v for k, v in json.loads((r / "meta/info.json").read_text())["features"].items()
        if k != "action"}), "features have no 'action'"),
    "missing video": (lambda r: (r / f"videos/{CAMERA}/chunk-000/file-001.mp4").unlink(),
                      "file-001.mp4: video file not found; expected camera"),
    "truncated video": (lambda r: (r / f"videos/{CAMERA}/chunk-000/file-000.mp4").write_bytes(
        (r / f"videos/{CAMERA}/chunk-000/file-000.mp4").read_bytes()[:600]), "file-000.mp4"),
    "missing data file": (lambda r: (r / "data/chunk-000/file-001.parquet").unlink(),
                          "file-001.parquet: file not found; expected LeRobot frames"),
    "rows missing": (lambda r: drop_rows(r / "data/chunk-000/file-000.parquet", 15),
                     "file-000.parquet: 3 rows for episode 1; expected 9"),
    "no episodes table": (lambda r: shutil.rmtree(r / "meta/episodes"),
                          "no meta/episodes/chunk-*/file-*.parquet"),
    "corrupt parquet": (lambda r: (r / "data/chunk-000/file-000.parquet").write_bytes(b"PAR1"),
                        "file-000.parquet: not a readable parquet file"),
}


@pytest.mark.parametrize("case", sorted(V3_DAMAGE))
def test_damaged_v3_datasets_give_one_line_and_write_nothing(lerobot_v3, tmp_path, case):
    root = copy(lerobot_v3, tmp_path)
    damage, fragment = V3_DAMAGE[case]
    damage(root)
    out = tmp_path / "out.hdf5"
    proc = actjepa("import", "lerobot", root, "--out", out)
    assert proc.returncode == 2, proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0] and str(root) in lines[0], lines[0]
    assert not out.exists()


def test_damaged_v21_datasets(lerobot_v21, tmp_path):
    root = copy(lerobot_v21, tmp_path)
    (root / "meta/episodes.jsonl").write_text('{"episode_index": 0, "length": 12}\n{"oops"\n')
    with pytest.raises(ActJepaError, match=r"episodes.jsonl:2: .*expected a JSON object"):
        import_dataset("lerobot", str(root), str(tmp_path / "o.hdf5"), ImportOptions())
    (root / "meta/episodes.jsonl").write_text('{"episode_index": 0, "length": 13}\n')
    with pytest.raises(ActJepaError, match="12 rows for episode 0; expected 13"):
        import_dataset("lerobot", str(root), str(tmp_path / "o.hdf5"), ImportOptions())
    (root / "meta/episodes.jsonl").write_text('{"episode_index": 0, "length": 12}\n')
    (root / "videos/chunk-000" / CAMERA / "episode_000000.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(ActJepaError, match="episode_000000.mp4: could not decode"):
        import_dataset("lerobot", str(root), str(tmp_path / "o.hdf5"), ImportOptions())
    assert not (tmp_path / "o.hdf5").exists()
