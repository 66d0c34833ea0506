"""Header stamps that disagree with the recorder's clock (issue 29, case 1): a publisher clock that
jumps back or ahead mid-bag (an NTP step, a driver restart) or runs off from the others. Ticks
planned on those stamps used to pair a JointState and a frame from one real moment with the
command from another, silently. Now: the recording is split at a jump, with one line naming the
topic, the time and the size; a disagreement between streams is one line; and no written tick's
messages lie further apart in real (receive) time than max_age_s plus one period."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from actjepa_core import cli
from actjepa_core.bags import convert_bags, convert_config_from_dict
from actjepa_core.bags.sync import FAR_APART

from bag_factory import (
    CAMERA,
    JOINT_STATES,
    RIG_BOUND_S,
    RIG_RATE_HZ,
    Rig,
    frame_times,
    real_times,
    rig_config,
    run_convert,
    write_bag,
)

WITH_CAMERA = {"joints": [JOINT_STATES], "image": [CAMERA]}


def robot_clock(at: float, step: float):
    """Header stamps of the robot's computer: right until ``at`` (real s), then off by ``step``."""
    return lambda t: step if t >= at else 0.0


def assert_pairs_within_bound(episodes) -> None:
    """The invariant: every written tick's state, frame and command were sent within the bound
    of each other in real time, and consecutive ticks are one period apart in real time."""
    for episode in episodes:
        joints, commands = real_times(episode)
        frames = frame_times(episode)
        moments = np.stack([joints, commands, frames])
        spread = moments.max(axis=0) - moments.min(axis=0)
        assert spread.max() <= RIG_BOUND_S + 1e-6, spread
        np.testing.assert_allclose(np.diff(joints), 1 / RIG_RATE_HZ, atol=0.011)


@pytest.mark.parametrize("step", [-2.0, -0.8, 0.7])
def test_a_clock_jump_splits_the_recording_and_no_pair_mixes_real_moments(tmp_path, capsys,
                                                                          step):
    rig = Rig(seconds=5.0, camera=True, stamp_offset=robot_clock(2.0, step))
    bag = write_bag(tmp_path / "bag", rig.records())
    conf = tmp_path / "rig.yaml"
    conf.write_text(yaml.safe_dump(rig_config(observations=WITH_CAMERA)))
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, bag, "--config", conf, "--out", out)
    assert code == cli.EXIT_SKIPPED, stdout + stderr
    how = "went back" if step < 0 else "jumped ahead"
    for topic in (JOINT_STATES, CAMERA):
        (line,) = [line for line in stdout.splitlines() if f"clock jump on {topic}" in line]
        assert "at 2.0" in line and f"{how} {abs(step):.3f} s" in line, line
    assert "header and receive times disagree in 2.0" in stdout, stdout
    result = convert_bags([bag], convert_config_from_dict(
        rig_config(observations=WITH_CAMERA), "rig"))
    assert_pairs_within_bound(result.episodes)
    (report,) = result.bags
    assert report.ticks >= 15  # the two seconds before the jump
    # after the jump the stamped streams pair with nothing: dropped, or no tick fits at all
    assert report.dropped[FAR_APART] >= 15 or report.skipped_episodes, report


def test_a_camera_clock_off_by_more_than_max_age_is_said_and_its_ticks_dropped(tmp_path,
                                                                               capsys):
    rig = Rig(seconds=3.0, camera=True)
    records = [(topic, ns, msg) for topic, ns, msg in rig.records() if topic != CAMERA]
    late = Rig(seconds=3.0, camera=True, stamp_offset=lambda t: -0.3)  # camera's clock: 0.3 s
    records += [r for r in late.records() if r[0] == CAMERA]
    bag = write_bag(tmp_path / "bag", records)
    conf = convert_config_from_dict(rig_config(observations=WITH_CAMERA), "rig")
    result = convert_bags([bag], conf)
    (report,) = result.bags
    assert_pairs_within_bound(result.episodes)
    (line,) = [w for w in report.warnings if "header and receive times disagree" in w]
    assert f"{CAMERA} is stamped -0.301 s from its receive times" in line, line
    assert report.dropped[FAR_APART] > 0 and result.skipped


def test_the_same_bags_on_receive_times_are_exact(tmp_path):
    rig = Rig(seconds=5.0, camera=True, stamp_offset=robot_clock(2.0, -2.0))
    bag = write_bag(tmp_path / "bag", rig.records())
    result = convert_bags([bag], convert_config_from_dict(
        rig_config(observations=WITH_CAMERA, time_source="receive"), "rig"))
    (episode,) = result.episodes
    assert_pairs_within_bound(result.episodes)
    assert episode.num_steps >= 45 and not result.bags[0].dropped and not result.skipped
    assert not result.bags[0].warnings
