"""Bad input into `actjepa convert`: a bag or episode that cannot be converted is skipped with one
line saying why, the rest is written (exit 3), and nothing half-written is ever left behind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from actjepa_core import cli
from actjepa_core.bags import convert_bags
from actjepa_core.bags.writer import BagWriter
from actjepa_core.data.episodes import read_episodes

from bag_factory import (
    ACTION,
    ARRIVAL,
    JOINTS,
    PERIOD,
    PICTURE,
    STATE,
    T0,
    Msgs,
    arm_records,
    as_humble,
    assert_state_action_pairs,
    config,
    config_file,
    run_convert,
    state_of,
    step_of_state,
    write_bag,
)


# ---- bad input --------------------------------------------------------------------------------
def test_bad_bags_are_skipped_with_reasons_and_the_rest_converted(tmp_path, capsys):
    msgs = Msgs()
    good = write_bag(tmp_path / "good", arm_records(msgs, 20))
    missing = write_bag(tmp_path / "missing", [r for r in arm_records(msgs, 20) if r[0] == STATE])
    truncated = write_bag(tmp_path / "truncated", arm_records(msgs, 20))
    mcap = next(truncated.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    garbage = write_bag(tmp_path / "garbage", arm_records(msgs, 20), storage="sqlite3")
    next(garbage.glob("*.db3")).write_bytes(b"not a database" * 100)
    empty = BagWriter(tmp_path / "empty")  # topics, no messages
    for topic in (STATE, ACTION):
        empty.add_topic(topic, "std_msgs/msg/Float64MultiArray")
    empty.close()
    unfinished = tmp_path / "unfinished"  # a recorder killed before closing: no metadata.yaml
    unfinished.mkdir()
    (unfinished / "unfinished_0.mcap").write_bytes(b"\x89MCAP0\r\n")
    out = tmp_path / "demos.hdf5"
    code, stdout, err = run_convert(capsys, good, missing, truncated, garbage, empty.path,
                                    unfinished, "--config", config_file(tmp_path, config()),
                                    "--out", out)
    assert code == cli.EXIT_SKIPPED, stdout + err
    assert len(read_episodes(out).episodes) == 1
    lines = stdout.splitlines()
    skipped = {Path(line.split(":")[0]).name: line for line in lines if ": skipped:" in line}
    assert set(skipped) == {"missing", "truncated", "garbage", "empty", "unfinished_0.mcap"}
    assert f"no topic {ACTION}; the bag has: {STATE} (std_msgs/msg/Float64MultiArray)" in \
        skipped["missing"]
    assert "corrupt" in skipped["truncated"] and "corrupt" in skipped["garbage"]
    assert f"no message on ['{STATE}', '{ACTION}']" in skipped["empty"]
    assert "converted 1 episode" in lines[-2] and "skipped 5 bags" in lines[-2]


def test_bad_messages_skip_their_episode(tmp_path, capsys):
    msgs = Msgs()

    extras = {  # bag name -> the /extra message of step k
        "joints": lambda k: msgs.joints(0, ["j0", "j1"], [k, k]),
        "encoding": lambda k: msgs.image(0, PICTURE, "16UC1"),
        "size": lambda k: msgs.image(0, PICTURE),
        "sizes": lambda k: msgs.image(0, PICTURE if k < 5 else PICTURE[:8])}
    for name, make in extras.items():
        write_bag(tmp_path / name, arm_records(msgs, 10) + [
            ("/extra", T0 + k * PERIOD + ARRIVAL, make(k)) for k in range(10)])
    short = write_bag(tmp_path / "short", arm_records(msgs, 2))
    good = write_bag(tmp_path / "good", arm_records(msgs, 10))
    wrong_type = write_bag(tmp_path / "wrong_type", [
        (ACTION, T0, msgs.bool(True)), (STATE, T0, msgs.array([1.0]))])
    extra = {"joints": ("q", {"joint_names": JOINTS}), "encoding": ("image", {}),
             "size": ("image", {"image_size": 24, "image_resize": False}),
             "sizes": ("image", {})}
    reasons = {}
    for bag, (key, changes) in extra.items():
        conf = config(observations={"state": [STATE], key: ["/extra"]}, **changes)
        result = convert_bags([tmp_path / bag], conf)
        assert not result.episodes and result.skipped
        reasons[bag] = result.bags[0].skipped_episodes[0]
    assert "lacks joint(s) ['j2']" in reasons["joints"]
    assert "image encoding '16UC1' is not supported" in reasons["encoding"]
    assert "observation 'image' changes shape within the episode" in reasons["sizes"]
    assert "/extra message at 0.000 s: image is 32x24; expected 24x24" in reasons["size"]
    out = tmp_path / "demos.hdf5"
    code, stdout, _ = run_convert(capsys, short, good, wrong_type, "--config",
                                  config_file(tmp_path, config()), "--out", out)
    assert code == cli.EXIT_SKIPPED and len(read_episodes(out).episodes) == 1
    assert "episode 0 (0.00-0.01 s): too short" in stdout
    assert "has type std_msgs/msg/Bool" in stdout


def test_unknown_message_types_skip_the_bag(tmp_path):
    store = get_typestore(Stores.EMPTY)
    from rosbags.typesys import get_types_from_msg

    store.register(get_types_from_msg("float64[] data", "my_msgs/msg/Vector"))
    store.register(get_typestore(Stores.ROS2_KILTED).fielddefs)
    bag = tmp_path / "custom"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        state = writer.add_connection(STATE, "my_msgs/msg/Vector", typestore=store)
        action = writer.add_connection(ACTION, "std_msgs/msg/Float64MultiArray", typestore=store)
        vector = store.types["my_msgs/msg/Vector"]
        for k in range(10):
            writer.write(state, T0 + k * PERIOD, bytes(store.serialize_cdr(
                vector(data=np.ones(3)), "my_msgs/msg/Vector")))
            writer.write(action, T0 + k * PERIOD, bytes(store.serialize_cdr(
                Msgs().array([1.0]), "std_msgs/msg/Float64MultiArray")))
    for humble in (False, True):  # with and without the definition embedded
        result = convert_bags([as_humble(bag) if humble else bag], config())
        assert "/arm/state has type my_msgs/msg/Vector; an observation topic must be one of" \
            in result.bags[0].skipped


def test_nothing_converted_is_an_error_and_writes_nothing(tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", [r for r in arm_records(Msgs(), 5) if r[0] == STATE])
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, bag, "--config", config_file(tmp_path, config()),
                                       "--out", out)
    assert code == cli.EXIT_ERROR and "no episode converted" in stderr
    assert f"{bag}: skipped: " in stdout
    assert not out.exists() and list(tmp_path.glob(".demos*")) == []  # atomic: no leftovers
    code, _, stderr = run_convert(capsys, tmp_path / "nope", "--out", out)
    assert code == cli.EXIT_ERROR and "no such bag" in stderr


# ---- non-finite values (issue 12, item 1) -----------------------------------------------------
def with_value(records, topic: str, step: int, index: int, value: float):
    """``records`` with element ``index`` of ``topic``'s message of ``step`` set to ``value``."""
    msgs = Msgs()
    changed = []
    for k, (name, ns, msg) in enumerate(records):
        if name == topic and k // 2 == step:
            data = np.array(msg.data, dtype=np.float64)
            data[index] = value
            msg = msgs.array(data)
        changed.append((name, ns, msg))
    return changed


def test_non_finite_values_drop_their_ticks_and_the_rest_is_written(tmp_path, capsys):
    """One NaN, one Inf, one float64 too big for float32: those ticks are dropped with their
    reason, every other tick of every bag is written, exit 3, and the summary is true."""
    msgs = Msgs()
    good = write_bag(tmp_path / "good", arm_records(msgs, 30))
    nan = write_bag(tmp_path / "nan", with_value(arm_records(msgs, 30), STATE, 10, 2, np.nan))
    inf = write_bag(tmp_path / "inf", with_value(arm_records(msgs, 30), ACTION, 20, 0, np.inf))
    huge = write_bag(tmp_path / "huge", with_value(arm_records(msgs, 30), STATE, 5, 1, 1e300))
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, good, nan, inf, huge, "--config",
                                       config_file(tmp_path, config()), "--out", out)
    assert code == cli.EXIT_SKIPPED, stdout + stderr
    data = read_episodes(out)
    for episode in data.episodes:
        assert np.isfinite(episode.obs["state"]).all() and np.isfinite(episode.actions).all()
        assert_state_action_pairs(episode)
    assert sum(e.num_steps for e in data.episodes) == 28 + 3 * 27  # one tick each
    steps: dict[str, list[int]] = {}
    for e in convert_bags([good, nan, inf, huge], config()).episodes:
        steps.setdefault(Path(e.attrs["bag"]).name, []).extend(map(step_of_state, e.obs["state"]))
    assert steps["good"] == list(range(28))
    # the bad message's tick goes (state 10, 5; action 20 is the command after state 19) and
    # only the ticks around it that cannot form a transition
    for bag, bad in (("nan", 10), ("huge", 5), ("inf", 19)):
        assert bad not in steps[bag] and 25 <= len(steps[bag]) < 28, (bag, steps[bag])
    assert f"{STATE} message at 0.125 s: NaN in element 2" in stdout
    assert f"{ACTION} message at 0.250 s: Inf in element 0" in stdout
    assert f"{STATE} message at 0.063 s: 1e+300 in element 1 overflows float32" in stdout
    assert f"non-finite {STATE}" in stdout and f"non-finite {ACTION}" in stdout
    total = stdout.splitlines()[-2]
    assert total.startswith(f"converted {len(data.episodes)} episodes "
                            f"({sum(e.num_steps for e in data.episodes)} ticks"), total


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.lists(st.tuples(st.sampled_from([STATE, ACTION]), st.integers(0, 19),
                              st.integers(0, 3),
                              st.sampled_from([np.nan, np.inf, -np.inf, 1e39, -1e300])),
                    min_size=1, max_size=6))
def test_fuzz_non_finite_values_never_reach_the_episodes_file(tmp_path_factory, bad):
    records = arm_records(Msgs(), 20)
    for topic, step, index, value in bad:
        records = with_value(records, topic, step, index, value)
    bag = write_bag(tmp_path_factory.mktemp("bag") / "bag", records)
    result = convert_bags([bag], config())
    (report,) = result.bags
    assert result.skipped == bool(report.bad_messages)  # (the last messages no tick uses)
    for episode in result.episodes:
        assert np.isfinite(episode.obs["state"]).all() and np.isfinite(episode.actions).all()
    assert report.ticks == sum(e.num_steps for e in result.episodes)
    assert report.ticks + sum(report.dropped.values()) == 18  # every tick kept or accounted for


# ---- MCAP chunk CRCs (issue 12, item 2) -------------------------------------------------------
def recorder_bag(path: Path, steps: int = 30, storage: str = "mcap") -> Path:
    """A bag written by the recorder node's writer (BagWriter), as the recorder writes it."""
    msgs = Msgs()
    writer = BagWriter(path, storage=storage)
    for topic in (ACTION, STATE):
        writer.add_topic(topic, "std_msgs/msg/Float64MultiArray")
    for topic, ns, msg in arm_records(msgs, steps):
        writer.write(topic, ns, bytes(msgs.store.serialize_cdr(msg, msg.__msgtype__)))
    writer.close()
    return path


def chunk_crcs(mcap: Path) -> list[tuple[int, int]]:
    """(stored CRC, CRC of the chunk's records) of every chunk record of an uncompressed MCAP."""
    import binascii
    import struct

    data, pos, found = mcap.read_bytes(), 8, []
    while pos + 9 <= len(data):
        op, size = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        body = data[pos + 9: pos + 9 + size]
        if op == 0x06:
            _, _, raw_size, crc = struct.unpack_from("<QQQI", body)
            name_len = struct.unpack_from("<I", body, 28)[0]
            records = body[28 + 4 + name_len + 8:]
            assert len(records) == raw_size
            found.append((crc, binascii.crc32(records)))
        if op == 0x02:
            break
        pos += 9 + size
    return found


def test_the_recorders_mcap_bags_carry_chunk_crcs(tmp_path):
    bag = recorder_bag(tmp_path / "bag")
    crcs = chunk_crcs(next(bag.glob("*.mcap")))
    assert crcs and all(stored == actual != 0 for stored, actual in crcs)


def test_a_flipped_byte_in_a_payload_is_reported_as_corruption(tmp_path, capsys):
    good = recorder_bag(tmp_path / "good")
    bad = recorder_bag(tmp_path / "bad")
    mcap = next(bad.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    value = np.float64(state_of(7)[2]).tobytes()  # step 7's state, element 2: 702.0
    at = bytes(data).index(value)
    data[at + 6] ^= 0x01  # 702.0 -> 702.0000000000001-ish: a silent wrong value without a CRC
    mcap.write_bytes(bytes(data))
    out = tmp_path / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, good, bad, "--config",
                                       config_file(tmp_path, config()), "--out", out)
    assert code == cli.EXIT_SKIPPED, stdout + stderr
    (line,) = [line for line in stdout.splitlines() if line.startswith(f"{bad}: skipped:")]
    assert "CRC" in line and "corrupt" in line, line
    assert len(read_episodes(out).episodes) == 1


# ---- message definitions (issue 12, item 3) ---------------------------------------------------
BROKEN_DEFINITION = "float64[] data\n}}} {{{ @@\n"  # rosbags prints 5 lines about it


def bag_with_definitions(path: Path, definitions: dict[str, str], storage: str = "mcap") -> Path:
    """The arm recording, plus a /camera/info topic; ``definitions`` replaces the embedded
    message definition of the named topics (in an MCAP, each channel has its own schema)."""
    msgs = Msgs()
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    records = arm_records(msgs, 20) + [("/camera/info", T0 + k * PERIOD, msgs.bool(True))
                                       for k in range(20)]
    types = {STATE: "std_msgs/msg/Float64MultiArray", ACTION: "std_msgs/msg/Float64MultiArray",
             "/camera/info": "std_msgs/msg/Bool"}
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, msgtype in types.items():
            if topic in definitions:
                connections[topic] = writer.add_connection(
                    topic, msgtype, msgdef=definitions[topic], rihs01="RIHS01_" + "0" * 64)
            else:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=msgs.store)
        for topic, ns, msg in sorted(records, key=lambda r: r[1]):
            writer.write(connections[topic], ns,
                         bytes(msgs.store.serialize_cdr(msg, msg.__msgtype__)))
    return path


def test_a_corrupt_definition_on_a_topic_not_converted_does_not_matter(tmp_path):
    for storage in ("mcap", "sqlite3"):
        bag = bag_with_definitions(tmp_path / storage, {"/camera/info": BROKEN_DEFINITION},
                                   storage)
        result = convert_bags([bag], config())
        assert not result.skipped, result.bags[0].skipped
        (episode,) = result.episodes
        assert_state_action_pairs(episode)


def test_a_corrupt_definition_on_a_converted_topic_is_one_line(tmp_path, capsys):
    bag = bag_with_definitions(tmp_path / "bag", {STATE: BROKEN_DEFINITION})
    good = write_bag(tmp_path / "good", arm_records(Msgs(), 20))
    code, stdout, stderr = run_convert(capsys, bag, good, "--config",
                                       config_file(tmp_path, config()), "--out",
                                       tmp_path / "o.hdf5")
    assert code == cli.EXIT_SKIPPED
    (line,) = [line for line in stdout.splitlines() if str(bag) in line]
    assert line.startswith(f"{bag}: skipped: ") and STATE in line, line
    assert "std_msgs/msg/Float64MultiArray" in line and "}}} {{{ @@" in line, line
    assert not stderr


# ---- mutated bags -----------------------------------------------------------------------------
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(storage=st.sampled_from(["mcap", "sqlite3"]),
       mutation=st.sampled_from(["truncate", "flip", "metadata", "zero"]),
       where=st.floats(0.0, 1.0), byte=st.integers(1, 255))
def test_fuzz_mutated_bags_never_give_a_traceback_or_a_partial_file(tmp_path_factory, capsys,
                                                                    storage, mutation, where,
                                                                    byte):
    """Truncated, flipped, zeroed storage files and deleted metadata: convert answers with
    skips and exit codes, one line per problem, and the output is whole or absent."""
    tmp = tmp_path_factory.mktemp("mutated")
    good = recorder_bag(tmp / "good", 20)
    bag = recorder_bag(tmp / "bag", 20, storage)
    if mutation == "metadata":
        (bag / "metadata.yaml").unlink()
    else:
        storage_file = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
        data = bytearray(storage_file.read_bytes())
        at = min(len(data) - 1, round(where * len(data)))
        if mutation == "truncate":
            data = data[:at]
        elif mutation == "flip":
            data[at] ^= byte
        else:
            data[at: at + 64] = bytes(len(data[at: at + 64]))
        storage_file.write_bytes(bytes(data))
    out = tmp / "demos.hdf5"
    code, stdout, stderr = run_convert(capsys, bag, good, "--config",
                                       config_file(tmp, config()), "--out", out)
    assert code in (0, cli.EXIT_SKIPPED), stdout + stderr
    assert "Traceback" not in stdout + stderr and not stderr
    assert all(line.count(": skipped: ") <= 1 for line in stdout.splitlines())
    assert len(read_episodes(out).episodes) >= 1  # the good bag, at least
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith(".")) == []
