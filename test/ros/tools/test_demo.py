"""`make demo`: the closed loop over ROS with the sim camera on, written as a video you can
watch, a PNG summary and a still frame, their paths printed; and the shipped policies."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actjepa_core.policies import load_policy

REPO = Path(__file__).resolve().parents[3]
SHIPPED = {"reach-v3": "reach_bc.pt", "push-v3": "push_bc.pt", "pick-place-v3": "pick-place_bc.pt"}


CAMERA = {"reach-v3": "reach_camera.pt", "push-v3": "push_camera.pt",
          "pick-place-v3": "pick-place_camera.pt"}
JOINTS = 9  # Sawyer's 7 hinges and 2 finger slides, as sim_node publishes them


IMAGE = {"shape": [64, 64, 3], "dtype": "uint8"}
# (file suffix, image keys, size bound): the scene camera, and the scene + wrist cameras
CAMERA_KINDS = {"camera": (("image",), 16_000_000),
                "wrist": (("image", "image_behindGripper"), 25_000_000)}


@pytest.mark.parametrize("kind", sorted(CAMERA_KINDS))
@pytest.mark.parametrize("task", sorted(CAMERA))
def test_a_camera_policy_is_shipped_that_reads_no_task_state(task, kind):
    keys, size = CAMERA_KINDS[kind]
    path = REPO / "models" / f"{task.removesuffix('-v3')}_{kind}.pt"
    assert path.is_file() and path.stat().st_size < size
    policy = load_policy(path, policy_type="e2e")
    assert policy.obs_spec == {**{k: IMAGE for k in keys},
                               "joints": {"shape": [JOINTS], "dtype": "float32"}}
    action = policy.act({**{k: np.zeros((64, 64, 3), np.uint8) for k in keys},
                         "joints": np.zeros(JOINTS, np.float32)})
    assert action.shape == (4,) and np.isfinite(action).all()


def test_demo_runs_the_camera_policy_by_default_with_its_input_in_the_video(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "actjepa_ros.tools.demo", "--task", "push-v3", "--episodes", "1",
         "--max-steps", "12", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "models/push_camera.pt drives sim_node over ROS 2 (1 episodes" in proc.stdout
    assert (tmp_path / "push-v3.mp4").stat().st_size > 0
    inputs = next(line for line in (tmp_path / "logs" / "policy.log").read_text().splitlines()
                  if "inputs " in line)
    assert "image_raw -> 'image'" in inputs and "joint_states -> 'joints'" in inputs
    assert "state" not in inputs.replace("joint_states", "")  # no task state in the loop


def test_the_wrist_demo_shows_both_cameras_the_policy_reads(tmp_path):
    import cv2

    from actjepa_core.evaluation import demo_video as dv
    proc = subprocess.run(
        [sys.executable, "-m", "actjepa_ros.tools.demo", "--task", "push-v3", "--episodes", "1",
         "--max-steps", "6", "--policy-kind", "wrist", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frame = cv2.imread(str(tmp_path / "push-v3-frame.png"))[:, :, ::-1]  # lossless, RGB
    side = IMAGE["shape"][0]
    left = frame.shape[1] - side - dv.INSET_MARGIN
    tops = [dv.INSET_MARGIN + dv.INSET_LABEL_PX]
    tops.append(tops[0] + side + dv.INSET_MARGIN + dv.INSET_LABEL_PX)
    insets = []
    for top in tops:  # each framed in white: the scene camera, then the wrist camera below it
        assert (frame[top - 1, left - 1:left + side + 1] == dv.WHITE).all()
        assert (frame[top + side, left - 1:left + side + 1] == dv.WHITE).all()
        insets.append(frame[top:top + side, left:left + side].astype(int))
    assert np.abs(insets[0] - insets[1]).mean() > 10  # two different views


@pytest.mark.parametrize("task", sorted(SHIPPED))
def test_a_small_policy_file_is_shipped_for_each_demo_task(task):
    path = REPO / "models" / SHIPPED[task]
    assert path.is_file() and path.stat().st_size < 5_000_000
    policy = load_policy(path, policy_type="bc")
    assert policy.obs_spec == {"state": {"shape": [39], "dtype": "float32"}}
    action = policy.act({"state": np.zeros(39, dtype=np.float32)})
    assert action.shape == (4,) and np.isfinite(action).all()


def test_demo_writes_video_summary_and_frame_and_prints_their_paths(tmp_path):
    import av  # the data extra: make setup installs it
    proc = subprocess.run(
        [sys.executable, "-m", "actjepa_ros.tools.demo", "--task", "reach-v3", "--episodes", "2",
         "--max-steps", "25", "--image-size", "32", "--policy-kind", "state",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "models/reach_bc.pt drives sim_node over ROS 2 (2 episodes" in out
    assert "closed loop over ROS 2 (reach-v3, 2 episodes, seed 1): success" in out
    paths = {line.split(":", 1)[0].strip(): Path(line.split(":", 1)[1].strip())
             for line in out.splitlines() if line.startswith(("video:", "summary:", "frame:"))}
    assert paths == {"video": tmp_path / "reach-v3.mp4",
                     "summary": tmp_path / "reach-v3-summary.png",
                     "frame": tmp_path / "reach-v3-frame.png"}
    with av.open(str(paths["video"])) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 2 * 2  # every step of both episodes, plus the held last frames
    for name in ("summary", "frame"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_a_policy_file_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "actjepa_ros.tools.demo", "--checkpoint", str(tmp_path / "x.pt")],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"demo: error: {tmp_path / 'x.pt'}: policy file not found"
