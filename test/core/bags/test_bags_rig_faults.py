"""Recordings from real rigs that used to give silently wrong pairs, doubled data, lost episodes or
tracebacks (issue 29): config numbers, repeated and looping inputs, short faults, duplicated
messages. Clock jumps are in test_bags_clock.py, memory in test_bags_memory.py."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from actjepa_core import cli
from actjepa_core.bags import convert_bags, convert_config_from_dict, load_convert_config
from actjepa_core.data.episodes import read_episodes

from bag_factory import (
    CAMERA,
    COMMANDS,
    JOINT_STATES,
    JOINTS,
    RIG_BOUND_S,
    RIG_RATE_HZ,
    Msgs,
    Rig,
    arm_records,
    config,
    config_file,
    real_times,
    rig_config,
    run_convert,
    write_bag,
)


# ---- 4: config numbers --------------------------------------------------------------------------
@pytest.mark.parametrize("key, value", [
    ("rate_hz", ".inf"), ("rate_hz", ".nan"), ("rate_hz", "1.0e10"), ("max_age_s", ".nan"),
    ("max_age_s", ".inf"), ("tick_phase", "1.0"), ("clock_jump_s", "-.inf"),
])
def test_a_number_that_is_not_finite_or_sane_is_one_line_naming_file_and_key(tmp_path, capsys,
                                                                             key, value):
    path = tmp_path / "convert.yaml"
    text = config_file(tmp_path, config()).read_text()
    path.write_text(text + f"{key}: {value}\n" if key not in yaml.safe_load(text) else
                    "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line
                              for line in text.splitlines()) + "\n")
    bag = write_bag(tmp_path / "bag", arm_records(Msgs(), 10))
    code, stdout, stderr = run_convert(capsys, bag, "--config", path, "--out",
                                       tmp_path / "o.hdf5")
    assert code == cli.EXIT_ERROR and "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert f"{path}: {key} is " in line, line
    assert "expected a finite number in" in line, line
    assert not (tmp_path / "o.hdf5").exists()


def test_every_bad_number_is_named_at_once(tmp_path, capsys):
    path = tmp_path / "convert.yaml"
    path.write_text("rate_hz: .inf\nmax_age_s: .nan\nepisodes: {gap_s: 1.0e300}\n")
    bag = write_bag(tmp_path / "bag", arm_records(Msgs(), 10))
    code, _, stderr = run_convert(capsys, bag, "--config", path, "--out", tmp_path / "o.hdf5")
    assert code == cli.EXIT_ERROR
    lines = stderr.strip().splitlines()
    assert len(lines) == 3, lines
    for key in ("rate_hz", "max_age_s", "episodes.gap_s"):
        assert sum(f"{path}: {key} is " in line for line in lines) == 1, lines


# ---- 2, 3: one recording counted once; folders with symlink loops -------------------------------
def test_one_recording_named_several_ways_is_converted_once(tmp_path, capsys, monkeypatch):
    bags = tmp_path / "bags"
    run1 = write_bag(bags / "run1", arm_records(Msgs(), 20))
    write_bag(bags / "run2", arm_records(Msgs(), 20, first_step=100))
    (bags / "latest").symlink_to("run1")  # a recorder's `latest -> run1` link
    link = tmp_path / "link_to_run1"
    link.symlink_to(run1)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, bags, link, Path("bags/run1"), run1, "--config",
                                       config_file(tmp_path, config()), "--out", out)
    assert code == 0, stdout + stderr
    assert len(read_episodes(out).episodes) == 2  # run1 and run2, once each
    repeats = [line for line in stdout.splitlines() if "the same recording as" in line]
    assert len(repeats) == 4, stdout  # bags/latest, the link, the relative and absolute paths
    assert all(line.startswith("input: ") and str(run1.resolve()) in line for line in repeats)
    assert "from 2 of 2 bags" in stdout


def test_a_folder_with_a_symlink_loop_is_walked_once_without_a_traceback(tmp_path, capsys):
    bags = tmp_path / "bags"
    write_bag(bags / "a", arm_records(Msgs(), 20))
    (bags / "loop").symlink_to(bags)  # bags/loop/loop/loop/...
    (bags / "a_sub").mkdir()
    (bags / "a_sub" / "up").symlink_to("..")
    (bags / "self").symlink_to("self")  # a link to itself
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, bags, "--config", config_file(tmp_path, config()),
                                       "--out", out)
    assert code == 0 and "Traceback" not in stdout + stderr, stdout + stderr
    assert len(read_episodes(out).episodes) == 1
    notes = [line for line in stdout.splitlines() if line.startswith("input: ")]
    assert sum("symlink loop" in line for line in notes) == 2, notes
    assert any(line.startswith(f"input: {bags / 'self'}: not read") for line in notes), notes
    assert len(convert_bags([bags], config()).bags) == 1
    assert os.path.islink(bags / "loop")


# ---- 5: a short fault drops its ticks, not the episode ------------------------------------------
def during(lo: float, hi: float, inside, outside):
    """A Rig fault function: ``inside`` for real times in [lo, hi), else ``outside``."""
    return lambda t: inside if lo <= t < hi else outside


def assert_true_pairs(episode) -> None:
    """Each tick's state and command come from within the bound, in order, one period apart."""
    joints, commands = real_times(episode)
    assert np.all(np.abs(joints - commands) <= RIG_BOUND_S + 1e-6), (joints, commands)
    np.testing.assert_allclose(np.diff(joints), 1 / RIG_RATE_HZ, atol=0.011)


def test_a_short_fault_drops_its_ticks_and_the_summary_counts_them(tmp_path, capsys):
    bags = {
        "good": Rig(),
        "missing_joint": Rig(joints_at=during(1.0, 2.0, JOINTS[:2], JOINTS)),
        "empty_positions": Rig(empty_at=during(1.0, 2.0, True, False)),
        "odd_command": Rig(command_length_at=during(1.0, 1.3, 2, 3)),
        "always_missing": Rig(joints_at=lambda t: JOINTS[:2]),  # nothing to keep: gives nothing
    }
    paths = [write_bag(tmp_path / name, rig.records()) for name, rig in bags.items()]
    conf = tmp_path / "rig.yaml"
    conf.write_text(yaml.safe_dump(rig_config()))
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, *paths, "--config", conf, "--out", out)
    assert code == cli.EXIT_SKIPPED, stdout + stderr
    result = convert_bags(paths, load_convert_config(conf))
    reports = {Path(r.path).name: r for r in result.bags}
    full = reports["good"].ticks
    assert full >= 35 and not reports["good"].dropped
    for name in ("missing_joint", "empty_positions", "odd_command"):
        report = reports[name]
        lost = sum(report.dropped.values())
        assert report.episodes >= 1 and report.ticks + lost == full, (name, report)
        assert 2 <= lost <= 14, (name, report.dropped)  # the fault's ticks, and the ones beside
        topic = COMMANDS if name == "odd_command" else JOINT_STATES
        assert report.dropped[f"bad {topic}"] >= 1, report.dropped
        path = paths[list(bags).index(name)]
        line = next(line for line in stdout.splitlines() if line.startswith(f"{path} ("))
        assert f"{report.ticks} ticks, {lost} dropped (" in line, line
    assert any("lacks joint(s) ['j2']" in b for b in reports["missing_joint"].bad_messages)
    assert any("3 names but 0 position values" in b
               for b in reports["empty_positions"].bad_messages)
    assert any("2 values; expected 3" in b for b in reports["odd_command"].bad_messages)
    for episode in result.episodes:
        assert_true_pairs(episode)
    nothing = reports["always_missing"]
    assert nothing.episodes == 0 and nothing.dropped[f"bad {JOINT_STATES}"] == full
    assert "first bad message: /joint_states message at" in nothing.skipped_episodes[0]
    total = stdout.splitlines()[-2]
    assert f"({sum(r.ticks for r in result.bags)} ticks" in total, total
    assert "from 4 of 5 bags" in total, total
    assert len(read_episodes(out).episodes) == len(result.episodes)


def test_an_observation_that_changes_shape_is_refused_with_the_time_of_the_change(tmp_path):
    bag = write_bag(tmp_path / "bag", Rig(camera=True, frame_shape_at=during(2.0, 9.0, (12, 16),
                                                                              None)).records())
    conf = convert_config_from_dict(rig_config(observations={"joints": [JOINT_STATES],
                                                             "image": [CAMERA]}), "rig")
    (report,) = convert_bags([bag], conf).bags
    assert report.episodes == 0 and report.ticks == 0
    (line,) = report.skipped_episodes
    assert "observation 'image' changes shape within the episode at 2.0" in line, line
    assert "from (24, 32, 3) to (12, 16, 3)" in line, line
    assert report.dropped["in a skipped episode"] > 30


# ---- 6: duplicated messages ---------------------------------------------------------------------
def test_duplicated_messages_are_left_out_counted_and_rates_are_true(tmp_path, capsys):
    once = write_bag(tmp_path / "once", Rig(camera=True).records())
    twice = write_bag(tmp_path / "twice", Rig(camera=True, duplicate=True).records())
    conf = tmp_path / "rig.yaml"
    conf.write_text(yaml.safe_dump(rig_config(observations={"joints": [JOINT_STATES],
                                                            "image": [CAMERA]})))
    code, stdout, stderr = run_convert(capsys, twice, "--config", conf, "--out",
                                       tmp_path / "o.hdf5")
    assert code == 0, stdout + stderr
    assert " 0.0 Hz" not in stdout, stdout
    for topic, rate, count in ((JOINT_STATES, "100.0 Hz", 400), (CAMERA, "15.0 Hz", 60),
                               (COMMANDS, "10.0 Hz", 40)):
        (line,) = [line for line in stdout.splitlines() if line.strip().startswith(topic)]
        assert f"{count} msgs" in line and rate in line, line
        assert f"{count} duplicates left out" in line, line
        assert f"warning: {topic}: {count} duplicated message(s) left out" in stdout
    conf_obj = load_convert_config(conf)
    a, b = convert_bags([once], conf_obj), convert_bags([twice], conf_obj)
    assert len(a.episodes) == len(b.episodes) == 1
    np.testing.assert_array_equal(a.episodes[0].actions, b.episodes[0].actions)
    np.testing.assert_array_equal(a.episodes[0].obs["joints"], b.episodes[0].obs["joints"])
    np.testing.assert_array_equal(np.asarray(a.episodes[0].obs["image"]),
                                  np.asarray(b.episodes[0].obs["image"]))
