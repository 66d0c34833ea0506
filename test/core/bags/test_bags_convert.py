"""`actjepa convert` end to end on real rosbag2 files: sqlite3 and MCAP, Humble (no embedded
definitions), Jazzy and Kilted layouts, bag discovery, the config file, and bags of the recorder's
own writer into training."""
from __future__ import annotations

from pathlib import Path

import pytest

from actjepa_core import cli
from actjepa_core.bags import ConvertConfig, convert_bags, convert_config_from_dict
from actjepa_core.bags.config import load_convert_config
from actjepa_core.bags.writer import BagWriter
from actjepa_core.data.episodes import read_episodes
from actjepa_core.errors import ActJepaError

from bag_factory import (
    ACTION,
    ACTION_DIM,
    REPO,
    STATE,
    Msgs,
    arm_records,
    as_humble,
    assert_state_action_pairs,
    config,
    config_file,
    run_convert,
    write_bag,
)


# ---- storages and distributions ---------------------------------------------------------------
@pytest.mark.parametrize("storage, distro, version", [
    ("mcap", "jazzy", 8), ("mcap", "kilted", 9), ("sqlite3", "jazzy", 8), ("sqlite3", "humble", 8),
])
def test_a_recording_becomes_state_action_transitions(tmp_path, capsys, storage, distro, version):
    bag = write_bag(tmp_path / "bag", arm_records(Msgs(distro), 40), storage, distro, version)
    if distro == "humble":
        as_humble(bag)
    out = tmp_path / "demos.hdf5"
    code, stdout, _ = run_convert(capsys, bag, "--config", config_file(tmp_path, config()),
                                  "--out", out)
    assert code == 0, stdout
    data = read_episodes(out)
    assert data.obs_keys == ["state"] and data.action_dim == ACTION_DIM
    (episode,) = data.episodes
    assert episode.num_steps == 38  # the first state pairs with action 1; the last has no next
    assert_state_action_pairs(episode)
    assert f"{bag} ({storage}): 1 episode, 38 ticks, 0 dropped" in stdout
    assert "80.0 Hz" in stdout and "skipped 0 bags and 0 episodes" in stdout


def test_bag_files_and_folders_of_bags_are_found(tmp_path):
    write_bag(tmp_path / "bags" / "a", arm_records(Msgs(), 10))
    write_bag(tmp_path / "bags" / "b", arm_records(Msgs(), 10), storage="sqlite3")
    lone = next((tmp_path / "bags" / "a").glob("*.mcap"))
    result = convert_bags([tmp_path / "bags", lone], config())
    assert [Path(r.path).name for r in result.bags] == ["a", "b", lone.name]
    assert len(result.episodes) == 3 and not result.skipped


# ---- config -----------------------------------------------------------------------------------
def test_the_shipped_config_and_config_errors():
    conf = load_convert_config(REPO / "config" / "recorder.yaml")
    assert conf.observations == {"state": ["/sim_node/state"]}
    assert conf.action.topic == "/sim_node/action" and conf.episodes.split == "gap"
    assert load_convert_config(None) == ConvertConfig()
    with pytest.raises(ActJepaError, match="unknown config key action.topik"):
        convert_config_from_dict({"action": {"topik": "/x"}}, "f.yaml")
    with pytest.raises(ActJepaError, match="observations.state must be a non-empty list"):
        convert_config_from_dict({"observations": {"state": []}}, "f.yaml")
    with pytest.raises(ActJepaError, match="episodes.split is 'time'; expected one of"):
        convert_config_from_dict({"episodes": {"split": "time"}}, "f.yaml")


def test_a_params_file_without_the_convert_entry_is_refused(tmp_path):
    path = tmp_path / "recorder.yaml"
    path.write_text("/**/recorder_node:\n  ros__parameters:\n    topics: [/a]\n")
    with pytest.raises(ActJepaError, match="without an '/\\*\\*/actjepa_convert"):
        load_convert_config(path)


# ---- the recorder's writer and training -------------------------------------------------------
def test_bags_of_the_recorders_writer_convert_and_train(tmp_path, capsys):
    msgs = Msgs()
    bags = tmp_path / "bags"
    for i in range(4):
        writer = BagWriter(bags / f"episode_{i}", storage="mcap" if i % 2 else "sqlite3")
        for topic in (ACTION, STATE):
            writer.add_topic(topic, "std_msgs/msg/Float64MultiArray")
        for topic, ns, msg in arm_records(msgs, 30, first_step=100 * i):
            writer.write(topic, ns, bytes(msgs.store.serialize_cdr(msg, msg.__msgtype__)))
        writer.close()
    out = tmp_path / "demos.hdf5"
    code, stdout, _ = run_convert(capsys, bags, "--config", config_file(tmp_path, config()),
                                  "--out", out)
    assert code == 0, stdout
    run = tmp_path / "run"
    code = cli.main(["train", "--data", str(out), "--out", str(run), "--steps", "4",
                     "--batch-size", "16", "--device", "cpu", "--quiet", "--set",
                     "run.log_every=2", "--set", "run.val_every=2", "--set",
                     "run.checkpoint_every=2", "--set", "data.val_fraction=0.25"])
    assert code == 0, capsys.readouterr().err
    assert (run / "last.pt").exists()


def test_a_config_that_is_not_yaml_is_one_line(tmp_path, capsys):
    path = tmp_path / "convert.yaml"
    path.write_text("rate_hz: 80\nobservations: {state: [/a]\naction: [\n")
    bag = write_bag(tmp_path / "bag", arm_records(Msgs(), 5))
    code, _, stderr = run_convert(capsys, bag, "--config", path, "--out", tmp_path / "o.hdf5")
    assert code == cli.EXIT_ERROR
    assert stderr.strip().count("\n") == 0 and f"{path}: not valid YAML at line" in stderr, stderr
