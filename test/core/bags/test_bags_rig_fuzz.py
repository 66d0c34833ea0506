"""Fuzz over the rig faults of issue 29 together: clock jumps, duplicated messages, a missing
joint, empty positions, a command of another length, a bag named through a symlink too, a config
number that is not finite. The invariant that matters for training: every written tick's state,
frame and command were sent within max_age_s plus one period of each other in real time, in
order one period apart; or the run says why it is not written (one line, no traceback)."""
from __future__ import annotations

import os

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actjepa_core import cli
from actjepa_core.bags import ConvertConfig
from actjepa_core.data.episodes import read_episodes

from bag_factory import (
    CAMERA,
    JOINT_STATES,
    JOINTS,
    RIG_BOUND_S,
    RIG_RATE_HZ,
    Rig,
    frame_times,
    real_times,
    rig_config,
    run_convert,
    write_bag,
)

CLOCK_JUMP_S = ConvertConfig().clock_jump_s
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
SPAN = st.tuples(st.floats(0.0, 2.5), st.floats(0.05, 1.0))  # (start, length) in real seconds
BAD_NUMBERS = [("rate_hz", float("inf")), ("rate_hz", float("nan")), ("rate_hz", 1e10),
               ("max_age_s", float("nan")), ("max_age_s", float("inf")),
               ("clock_jump_s", float("nan"))]


def inside(span, yes, no):
    if span is None:
        return lambda t: no
    lo, length = span
    return lambda t: yes if lo <= t < lo + length else no


def jumped(jump):
    if jump is None:
        return lambda t: 0.0
    at, step = jump
    return lambda t: step if t >= at else 0.0


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jump=st.none() | st.tuples(st.floats(0.3, 2.7),
                                  st.sampled_from([-2.0, -0.8, -0.3, -0.05, 0.05, 0.15,
                                                   0.6, 2.0])),
       duplicate=st.booleans(), missing=st.none() | SPAN, empty=st.none() | SPAN,
       odd=st.none() | SPAN, camera=st.booleans(), symlink=st.booleans(),
       header=st.booleans(), bad_number=st.none() | st.sampled_from(BAD_NUMBERS))
def test_fuzz_every_written_pair_is_from_one_real_moment(tmp_path_factory, capsys, jump,
                                                          duplicate, missing, empty, odd, camera,
                                                          symlink, header, bad_number):
    tmp = tmp_path_factory.mktemp("rig")
    rig = Rig(seconds=3.0, camera=camera, duplicate=duplicate, stamp_offset=jumped(jump),
              joints_at=inside(missing, JOINTS[:2], JOINTS), empty_at=inside(empty, True, False),
              command_length_at=inside(odd, 2, 3))
    bag = write_bag(tmp / "bag", rig.records())
    inputs = [bag]
    if symlink:
        (tmp / "latest").symlink_to(bag)
        inputs.append(tmp / "latest")
    observations = {"joints": [JOINT_STATES], **({"image": [CAMERA]} if camera else {})}
    data = rig_config(observations=observations,
                      time_source="header" if header else "receive")
    if bad_number:
        data[bad_number[0]] = bad_number[1]
    conf = tmp / "rig.yaml"
    conf.write_text(yaml.safe_dump(data))
    out = tmp / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, *inputs, "--config", conf, "--out", out)
    assert "Traceback" not in stdout + stderr, stdout + stderr
    if bad_number:  # refused at load, one line naming file and key, nothing written
        assert code == cli.EXIT_ERROR and not out.exists()
        (line,) = stderr.strip().splitlines()
        assert f"{conf}: {bad_number[0]} is " in line, line
        return
    if code == cli.EXIT_ERROR:  # nothing convertible: said why, nothing written
        assert "no episode converted" in stderr and not out.exists(), stdout + stderr
        return
    assert code in (0, cli.EXIT_SKIPPED), stdout + stderr
    assert (str(tmp / "latest") in stdout) == symlink  # the repeat is named, converted once
    episodes = read_episodes(out).episodes
    written = sum(e.num_steps for e in episodes)
    assert f"({written} ticks at" in stdout.splitlines()[-2], stdout
    for episode in episodes:
        joints, commands = real_times(episode)
        moments = [joints, commands] + ([frame_times(episode)] if camera else [])
        stacked = np.stack(moments)
        spread = stacked.max(axis=0) - stacked.min(axis=0)
        assert spread.max() <= RIG_BOUND_S + 1e-6, (spread.max(), stdout)
        jitter = CLOCK_JUMP_S if header else 0.0  # a smaller clock step is taken as jitter
        np.testing.assert_allclose(np.diff(joints), 1 / RIG_RATE_HZ, atol=0.011 + jitter)
    if jump and header and abs(jump[1]) > CLOCK_JUMP_S + 0.002:
        assert "clock jump on" in stdout, stdout
