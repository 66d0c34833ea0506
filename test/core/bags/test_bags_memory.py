"""Full-size camera frames (``image_size: 0``) and memory (issue 29, case 7): frames are decoded
to be checked, set aside encoded, and decoded again a chunk at a time into the file, so peak
memory does not grow with the recording's length; a frame that does not decode is one line.

The peak is measured in a separate process (its own ``ru_maxrss``). ``MEMORY_MINUTES=1,3`` with
``-m slow`` measures 640x480 jpeg recordings of those lengths (docs/RELIABILITY.md)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from actjepa_core import cli
from actjepa_core.bags import convert_bags, convert_config_from_dict
from actjepa_core.data.episodes import read_episodes

from bag_factory import (
    CAMERA,
    JOINT_STATES,
    REPO,
    jpeg_frame,
    rig_config,
    run_convert,
    write_camera_bag,
)

WITH_CAMERA = {"joints": [JOINT_STATES], "image": [CAMERA]}
PEAK = """
import resource, sys
from actjepa_core import cli
code = cli.main(["convert", sys.argv[1], "--config", sys.argv[2], "--out", sys.argv[3]])
print("peak_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "exit", code)
"""


def peak_mb(bag, tmp_path) -> float:
    """Peak resident memory (MB) of `actjepa convert` on ``bag`` in a fresh process."""
    conf = tmp_path / "camera.yaml"
    conf.write_text(yaml.safe_dump(rig_config(observations=WITH_CAMERA, time_source="receive")))
    out = tmp_path / f"{bag.name}.hdf5"
    done = subprocess.run([sys.executable, "-c", PEAK, str(bag), str(conf), str(out)],
                          capture_output=True, text=True, cwd=REPO, check=False)
    words = done.stdout.split()
    assert "peak_kb" in words and words[-1] == "0", done.stdout[-2000:] + done.stderr[-2000:]
    return int(words[words.index("peak_kb") + 1]) / 1024


def test_peak_memory_does_not_grow_with_the_recordings_length(tmp_path):
    short = write_camera_bag(tmp_path / "short", 10.0, (240, 320))
    long = write_camera_bag(tmp_path / "long", 40.0, (240, 320))  # 300 more frames: +69 MB raw
    peaks = peak_mb(short, tmp_path), peak_mb(long, tmp_path)
    print(f"\npeak: 10 s {peaks[0]:.0f} MB, 40 s {peaks[1]:.0f} MB")
    assert peaks[1] - peaks[0] < 25, f"peak grew from {peaks[0]:.0f} MB to {peaks[1]:.0f} MB"
    data = read_episodes(tmp_path / "long.hdf5")
    (episode,) = data.episodes
    assert episode.obs["image"].shape[1:] == (240, 320, 3) and episode.num_steps >= 395


def test_frames_written_equal_the_frames_decoded(tmp_path, capsys):
    bag = write_camera_bag(tmp_path / "bag", 3.0, (48, 64))
    conf = convert_config_from_dict(rig_config(observations=WITH_CAMERA), "camera")
    (episode,) = convert_bags([bag], conf).episodes
    frames = np.asarray(episode.obs["image"])
    joints = episode.obs["joints"][:, 0]
    for frame, t in zip(frames, joints):  # the newest frame at or before the state
        k = int(np.floor(t * 15 + 1e-6))
        expected = jpeg_frame(k, (48, 64)).astype(int)
        assert np.abs(frame.astype(int) - expected).mean() < 6, (t, k)
    out = tmp_path / "demos.hdf5"
    conf_file = tmp_path / "c.yaml"
    conf_file.write_text(yaml.safe_dump(rig_config(observations=WITH_CAMERA)))
    code, stdout, _ = run_convert(capsys, bag, "--config", conf_file, "--out", out)
    assert code == 0, stdout
    (written,) = read_episodes(out).episodes
    np.testing.assert_array_equal(np.asarray(written.obs["image"]), frames)


def test_a_frame_that_does_not_decode_is_one_line_and_drops_only_its_ticks(tmp_path, capsys):
    bag = write_camera_bag(tmp_path / "bag", 4.0, (48, 64), broken=frozenset({20, 21}))
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump(rig_config(observations=WITH_CAMERA)))
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, bag, "--config", conf, "--out", out)
    assert code == cli.EXIT_SKIPPED and "Traceback" not in stdout + stderr, stdout + stderr
    bad = [line for line in stdout.splitlines() if "bad data:" in line]
    assert len(bad) == 2 and all("could not be decoded" in line for line in bad), bad
    assert f"{CAMERA} message at 1.333 s" in bad[0] and f"{CAMERA} message at 1.400 s" in bad[1]
    episodes = read_episodes(out).episodes
    assert sum(e.num_steps for e in episodes) >= 30  # of 38: the broken frames' ticks only


@pytest.mark.slow
def test_peak_memory_of_full_size_frames(tmp_path_factory):
    """MEMORY_MINUTES=1,3 (default 1): the peak for 640x480 jpeg bags of those lengths."""
    minutes = [float(m) for m in os.environ.get("MEMORY_MINUTES", "1").split(",")]
    peaks = {}
    for length in minutes:
        tmp = tmp_path_factory.mktemp(f"memory_{length:g}min")
        bag = write_camera_bag(tmp / "bag", 60 * length)
        peaks[length] = peak_mb(bag, tmp)
        size = sum(p.stat().st_size for p in (tmp / "bag").iterdir()) / 2**20
        print(f"\n{length:g} min, 640x480 jpeg at 15 Hz ({size:.0f} MB bag): "
              f"peak {peaks[length]:.0f} MB")
    assert max(peaks.values()) - min(peaks.values()) < 40, peaks
