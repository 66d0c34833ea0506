"""The `actjepa` command as a user runs it: a real subprocess, exit codes, messages, outputs."""
import subprocess
import sys

import pytest

from actjepa_core.data.episodes import read_episodes


def actjepa(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "actjepa_core.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_one_line_error(proc, *words):
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr  # one clear message, no traceback
    for word in words:
        assert word in lines[0], lines[0]


def test_collect_train_report_end_to_end(tmp_path):
    data = tmp_path / "reach.hdf5"
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 4, "--out", data, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "expert success 4/4" in proc.stdout
    assert len(read_episodes(data).episodes) == 4
    run = tmp_path / "run"
    proc = actjepa("train", "--data", data, "--out", run, "--steps", 30, "--quiet",
                   "--set", "run.log_every=10", "--set", "run.val_every=10")
    assert proc.returncode == 0, proc.stderr
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    proc = actjepa("report", run, "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert "final_loss" in proc.stdout and "probe_r2" in proc.stdout
    assert (run / "curves.png").stat().st_size > 0
    proc = actjepa("report", run, run, "--markdown")
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == 4 and rows[0].startswith("| run | steps |") and str(run) in rows[3]


def test_missing_data_file_writes_nothing(tmp_path):
    proc = actjepa("train", "--data", tmp_path / "none.hdf5", "--out", tmp_path / "run")
    assert_one_line_error(proc, "none.hdf5", "not found")
    assert not (tmp_path / "run").exists()


def test_unknown_config_key(tmp_path, push_demos_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  learning_rate: 0.1\n")
    proc = actjepa("train", "--data", push_demos_path, "--config", bad, "--out", tmp_path / "r")
    assert_one_line_error(proc, "bad.yaml", "optim.learning_rate")
    proc = actjepa("train", "--data", push_demos_path, "--out", tmp_path / "r",
                   "--set", "ema.tau=0.9")
    assert_one_line_error(proc, "ema.tau")
    assert not (tmp_path / "r").exists()


def test_unknown_task_and_bad_counts(tmp_path):
    proc = actjepa("collect", "--task", "juggle-v3", "--episodes", 1, "--out", tmp_path / "d.hdf5")
    assert_one_line_error(proc, "juggle-v3")
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 0, "--out", tmp_path / "d.hdf5")
    assert_one_line_error(proc, "episodes")
    assert list(tmp_path.iterdir()) == []


def test_collect_records_a_scene_and_a_wrist_camera_under_their_keys(tmp_path):
    """`--obs image,image_behindGripper,joints`: each named camera is recorded under its own key
    at --image-size (a real cell's scene + wrist pair); what is not a camera is one line."""
    import numpy as np

    from actjepa_core.sim.arm import CAMERA_ROTATIONS

    data = tmp_path / "two.hdf5"
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 2, "--max-steps", 4,
                   "--image-size", 16, "--obs", "image,image_behindGripper,joints",
                   "--out", data, "--quiet")
    assert proc.returncode == 0, proc.stderr
    episodes = read_episodes(data)
    assert sorted(episodes.obs_keys) == ["image", "image_behindGripper", "joints"]
    frames = episodes.episodes[0].obs
    assert frames["image"].shape == frames["image_behindGripper"].shape == (4, 16, 16, 3)
    assert frames["joints"].shape == (4, 9)
    assert np.abs(frames["image"].astype(int) - frames["image_behindGripper"]).mean() > 10
    out = tmp_path / "bad.hdf5"
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 1, "--image-size", 16,
                   "--obs", "image,image_wrist", "--out", out)
    assert_one_line_error(proc, "image_wrist", "no simulated camera 'wrist'", "behindGripper")
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 1,
                   "--obs", "image_behindGripper,joints", "--out", out)
    assert_one_line_error(proc, "image_behindGripper", "--image-size")
    assert not out.exists()
    text = " ".join(actjepa("collect", "--help").stdout.split())
    assert all(camera in text for camera in CAMERA_ROTATIONS), text  # the help names them all


def test_collect_dart_demos_say_so_in_the_file(tmp_path):
    data = tmp_path / "dart.hdf5"
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 1, "--max-steps", 20,
                   "--dart-noise", 0.3, "--out", data, "--quiet")
    assert proc.returncode == 0, proc.stderr
    import h5py

    assert read_episodes(data).source == "metaworld:reach-v3:seed=0:dart_noise=0.3"
    with h5py.File(data) as f:
        assert float(f["data/demo_0"].attrs["dart_noise"]) == 0.3
    out = tmp_path / "bad.hdf5"
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 1, "--dart-noise", -1,
                   "--out", out)
    assert_one_line_error(proc, "dart_noise", ">= 0")
    assert not out.exists()


def test_collect_with_the_expert_aimed_at_the_tool_centre_says_so_and_only_where_it_can(tmp_path):
    data = tmp_path / "tool.hdf5"
    proc = actjepa("collect", "--task", "reach-v3", "--episodes", 1, "--max-steps", 20,
                   "--expert-aim", "tool", "--out", data, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert read_episodes(data).source == "metaworld:reach-v3:seed=0:expert_aim=tool"
    out = tmp_path / "push.hdf5"
    proc = actjepa("collect", "--task", "push-v3", "--episodes", 1, "--expert-aim", "tool",
                   "--out", out)
    assert_one_line_error(proc, "expert aim 'tool' on push-v3", "reach-v3")
    assert not out.exists()


def test_report_on_a_folder_that_is_no_run(tmp_path):
    proc = actjepa("report", tmp_path)
    assert_one_line_error(proc, "metrics.csv")


@pytest.mark.parametrize("content", [b"", b"\x89HDF\r\n garbage"])
def test_corrupt_data_file(tmp_path, content):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(content)
    proc = actjepa("train", "--data", bad, "--out", tmp_path / "run")
    assert_one_line_error(proc, "bad.hdf5", "HDF5")


def test_train_policy_offers_every_registered_policy_type():
    """One `train-policy` path: the parser (built without importing torch) lists each type in
    Policy.registry, with --data exactly for those that learn from demos, and flags that name
    keys of the type's config class."""
    import dataclasses

    from actjepa_core import cli
    from actjepa_core.policies import Policy

    assert set(cli.POLICY_COMMANDS) == set(Policy.registry)
    for kind, command in cli.POLICY_COMMANDS.items():
        cls = Policy.registry[kind]
        assert command.demos == cls.needs_demos, kind
        keys = {f.name for f in dataclasses.fields(cls.config_class)}
        assert {name for name, _ in command.flags} <= keys, kind
