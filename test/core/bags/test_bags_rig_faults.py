"""Recordings from real rigs that used to give silently wrong pairs, doubled data, lost episodes or
tracebacks (issue 29): config numbers, repeated and looping inputs, short faults, duplicated
messages. Clock jumps are in test_bags_clock.py, memory in test_bags_memory.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from actjepa_core import cli
from actjepa_core.bags import convert_bags
from actjepa_core.data.episodes import read_episodes

from bag_factory import Msgs, arm_records, config, config_file, run_convert, write_bag


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
