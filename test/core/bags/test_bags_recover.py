"""Unfinished bags (issue 12, item 4): what a recorder killed mid-episode leaves on disk is what
its writer had flushed, so a copy of the bag folder taken while the writer is still open is
exactly what SIGKILL, the OOM killer or a power cut (after the flush's fsync) leaves behind.
`actjepa convert` reads such a bag through a recovered copy, with a warning; `actjepa recover`
makes it complete in place and keeps the original beside it. (The recorder node killed for real
over DDS: test/ros/test_recorder_node.py.)"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rosbags.rosbag2 import Reader

from actjepa_core import cli
from actjepa_core.bags import convert_bags
from actjepa_core.bags.recover import is_unfinished, recover_bag, scan
from actjepa_core.bags.writer import BagWriter
from actjepa_core.data.episodes import read_episodes

from bag_factory import (
    ACTION,
    STATE,
    Msgs,
    arm_records,
    assert_state_action_pairs,
    config,
    config_file,
    run_convert,
)

STEPS, FLUSHED_STEPS = 40, 25
TYPE = "std_msgs/msg/Float64MultiArray"


def serialized(msgs: Msgs, steps: int = STEPS) -> list[tuple[str, int, bytes]]:
    return [(topic, ns, bytes(msgs.store.serialize_cdr(msg, msg.__msgtype__)))
            for topic, ns, msg in arm_records(msgs, steps)]


def killed_recording(tmp_path: Path, storage: str = "mcap", flush_after: int = 2 * FLUSHED_STEPS,
                     name: str = "episode_000") -> tuple[Path, list[tuple[str, int, bytes]]]:
    """The bag a recorder leaves when killed after writing every record but having flushed only
    the first ``flush_after``; returns it and what was written."""
    records = serialized(Msgs())
    writer = BagWriter(tmp_path / "recording" / name, storage=storage)
    for topic in (ACTION, STATE):
        writer.add_topic(topic, TYPE)
    for i, (topic, ns, raw) in enumerate(records):
        writer.write(topic, ns, raw)
        if i + 1 == flush_after:
            writer.flush()
    killed = tmp_path / "killed" / name
    shutil.copytree(writer.path, killed)  # the files as they are on disk now
    writer.close()
    return killed, records


def read_back(bag: Path) -> list[tuple[str, int, bytes]]:
    with Reader(bag) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_killed_recording_gives_back_everything_flushed(tmp_path, capsys, storage):
    bag, records = killed_recording(tmp_path, storage)
    assert is_unfinished(next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")))
    flushed = records[: 2 * FLUSHED_STEPS]

    out = tmp_path / "demos.hdf5"  # convert reads it as it is, and says so
    code, stdout, stderr = run_convert(capsys, bag.parent, "--config",
                                       config_file(tmp_path, config()), "--out", out)
    assert code == 0, stdout + stderr
    assert "warning: unfinished bag" in stdout and f"actjepa recover {bag}`" in stdout, stdout
    (episode,) = read_episodes(out).episodes
    assert episode.num_steps == FLUSHED_STEPS - 2
    assert_state_action_pairs(episode)

    assert cli.main(["recover", str(bag)]) == 0  # in place, the original kept beside it
    stdout = capsys.readouterr().out
    assert f"{bag}: recovered {len(flushed)} message(s)" in stdout, stdout
    assert (bag / "metadata.yaml").is_file() and not is_unfinished(bag)
    assert sorted(read_back(bag), key=lambda r: r[1]) == sorted(flushed, key=lambda r: r[1])
    kept = bag.parent / f".{bag.name}.unfinished"
    assert kept.is_dir() and not (kept / "metadata.yaml").exists()
    assert cli.main(["recover", str(bag.parent)]) == 0  # a complete bag is left alone
    assert f"{bag}: complete, nothing to recover" in capsys.readouterr().out
    (again,) = convert_bags([bag], config()).episodes
    np.testing.assert_array_equal(again.obs["state"], episode.obs["state"])


def test_a_torn_chunk_at_the_end_is_left_out_and_counted(tmp_path):
    """A power cut in the middle of writing a chunk: the whole chunks before it are kept."""
    bag, records = killed_recording(tmp_path)
    mcap = next(bag.glob("*.mcap"))
    whole = mcap.stat().st_size
    writer = BagWriter(tmp_path / "more", storage="mcap")  # a second chunk, then torn in half
    for topic in (ACTION, STATE):
        writer.add_topic(topic, TYPE)
    for topic, ns, raw in records[2 * FLUSHED_STEPS:]:
        writer.write(topic, ns, raw)
    writer.close()
    data = mcap.read_bytes() + b"\x06" + (10_000).to_bytes(8, "little") + b"\x00" * 500
    mcap.write_bytes(data)
    salvage = scan(mcap)
    assert salvage.messages == 2 * FLUSHED_STEPS and salvage.chunks == 1
    assert salvage.tail_bytes == len(data) - whole and "not a whole record" in salvage.describe()


def test_a_chunk_failing_its_crc_is_left_out_and_the_others_kept(tmp_path, capsys):
    """A finished bag with one corrupt chunk: convert refuses it (naming recover), recover keeps
    the chunks that pass."""
    records = serialized(Msgs())
    writer = BagWriter(tmp_path / "bag", storage="mcap")
    for topic in (ACTION, STATE):
        writer.add_topic(topic, TYPE)
    for i, (topic, ns, raw) in enumerate(records):
        writer.write(topic, ns, raw)
        if (i + 1) % 20 == 0:
            writer.flush()  # four chunks of 20 messages
    writer.close()
    mcap = next(writer.path.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    at = bytes(data).index(records[45][2])  # a message of the third chunk
    data[at + len(records[45][2]) - 1] ^= 0xFF
    mcap.write_bytes(bytes(data))
    result = convert_bags([writer.path], config())
    assert "CRC" in result.bags[0].skipped and "actjepa recover" in result.bags[0].skipped
    assert cli.main(["recover", str(writer.path)]) == 0
    assert "left out 1 corrupt chunk(s) (chunk at byte" in capsys.readouterr().out
    kept = read_back(writer.path)
    assert kept == records[:40] + records[60:]


def test_the_writer_flushes_by_itself_every_flush_period(tmp_path):
    """No explicit flush: a write at least flush_period_s after the last flush flushes, so a
    kill loses at most the last period's messages."""
    records = serialized(Msgs(), 10)
    writer = BagWriter(tmp_path / "bag", storage="mcap", flush_period_s=0.05, fsync=False)
    for topic in (ACTION, STATE):
        writer.add_topic(topic, TYPE)
    for topic, ns, raw in records[:10]:
        writer.write(topic, ns, raw)
    time.sleep(0.06)
    writer.write(*records[10])  # due: this write flushes all 11
    writer.write(*records[11])  # not due: stays in memory
    killed = tmp_path / "killed" / "bag"
    shutil.copytree(writer.path, killed)
    writer.close()
    assert scan(next(killed.glob("*.mcap"))).messages == 11


def test_recover_refuses_what_is_not_a_bag_in_one_line(tmp_path, capsys):
    folder = tmp_path / "episode_000"
    folder.mkdir()
    (folder / "episode_000.mcap").write_bytes(b"not an mcap at all")
    assert cli.main(["recover", str(folder)]) == cli.EXIT_ERROR
    out = capsys.readouterr().out.strip()
    assert out == f"{folder}: not recovered: {folder / 'episode_000.mcap'}: not an MCAP file " \
                  "(no MCAP magic at its start)", out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_000"]  # nothing left over


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0), flip=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_fuzz_recovery_never_invents_a_message(tmp_path_factory, cut, flip):
    """Any prefix of an unfinished MCAP, with or without a flipped byte: recovery either refuses
    in one line or gives back messages that were written, unchanged, and (no flip) every
    message of every chunk that lies wholly inside the prefix."""
    tmp = tmp_path_factory.mktemp("fuzz")
    records = serialized(Msgs(), 30)
    writer = BagWriter(tmp / "recording" / "bag", storage="mcap")
    for topic in (ACTION, STATE):
        writer.add_topic(topic, TYPE)
    ends = []  # (file size after the flush, messages flushed)
    for i, (topic, ns, raw) in enumerate(records):
        writer.write(topic, ns, raw)
        if (i + 1) % 10 == 0:
            writer.flush()
            ends.append((next(writer.path.glob("*.mcap")).stat().st_size, i + 1))
    data = bytearray(next(writer.path.glob("*.mcap")).read_bytes())
    writer.close()
    data = data[: max(8, round(cut * len(data)))]
    if flip is not None:
        data[min(len(data) - 1, round(flip * len(data)))] ^= 0x5A
    bag = tmp / "killed" / "bag"
    bag.mkdir(parents=True)
    (bag / "bag.mcap").write_bytes(bytes(data))
    try:
        salvage, _ = recover_bag(bag)
    except Exception as err:  # noqa: BLE001 - only a one-line BagError is acceptable
        from actjepa_core.bags import BagError

        assert isinstance(err, BagError) and "\n" not in str(err), err
        return
    got = read_back(bag)
    assert set(got) <= set(records)
    assert salvage.messages == len(got)
    if flip is None:
        whole = max((n for size, n in ends if size <= len(data)), default=0)
        assert len(got) >= whole


@pytest.mark.parametrize("content", ["header", "empty"])
def test_killed_before_the_first_message_recovers_an_empty_bag(tmp_path, capsys, content):
    """The writer puts the MCAP header on disk when it opens the bag; a file killed even
    earlier (empty) is still an unfinished bag, not garbage."""
    bag, _ = killed_recording(tmp_path, flush_after=0)
    mcap = next(bag.glob("*.mcap"))
    if content == "empty":
        mcap.write_bytes(b"")
    else:
        assert mcap.read_bytes().startswith(b"\x89MCAP0\r\n")
        mcap.write_bytes(mcap.read_bytes()[:8 + 9])  # as if killed right after opening
    assert is_unfinished(mcap)
    assert cli.main(["recover", str(bag)]) == 0
    assert f"{bag}: recovered 0 message(s) (none)" in capsys.readouterr().out
    assert read_back(bag) == []
