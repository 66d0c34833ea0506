"""`actjepa convert` on real rosbag2 files written here with the `rosbags` library: sqlite3 and
MCAP, Humble (no embedded definitions), Jazzy and Kilted layouts, images, joint reordering, episode
splits, and every kind of bad input (skipped with its reason, exit code 3, atomic output)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from actjepa_core import cli
from actjepa_core.bags import ConvertConfig, convert_bags, convert_config_from_dict
from actjepa_core.bags.config import load_convert_config
from actjepa_core.bags.writer import BagWriter
from actjepa_core.data.episodes import read_episodes
from actjepa_core.errors import ActJepaError

REPO = Path(__file__).resolve().parents[3]
T0 = 1_700_000_000 * 10**9  # bag start (ns)
RATE_HZ = 80.0
PERIOD = round(1e9 / RATE_HZ)
ARRIVAL = 100_000  # ns between a step's action and its observation (same step, one callback)
STATE_DIM, ACTION_DIM = 5, 4
JOINTS = ["j0", "j1", "j2"]
STORES = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY, "kilted": Stores.ROS2_KILTED}
PICTURE = np.random.default_rng(0).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
STATE, ACTION = "/arm/state", "/arm/action"


# ---- message and bag builders -----------------------------------------------------------------
class Msgs:
    """Message objects of one ROS distribution's type store."""

    def __init__(self, distro: str = "kilted") -> None:
        self.store = get_typestore(STORES[distro])
        self.t = self.store.types

    def header(self, ns: int) -> object:
        return self.t["std_msgs/msg/Header"](
            stamp=self.t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
            frame_id="")

    def array(self, values) -> object:
        layout = self.t["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        return self.t["std_msgs/msg/Float64MultiArray"](layout=layout,
                                                         data=np.asarray(values, np.float64))

    def joints(self, ns: int, names, position, velocity=()) -> object:
        return self.t["sensor_msgs/msg/JointState"](
            header=self.header(ns), name=list(names), position=np.asarray(position, np.float64),
            velocity=np.asarray(velocity, np.float64), effort=np.zeros(0))

    def image(self, ns: int, rgb: np.ndarray, encoding: str = "rgb8") -> object:
        pixels = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1],
                  "mono8": rgb[:, :, :1]}.get(encoding, rgb)
        h, w, c = pixels.shape
        return self.t["sensor_msgs/msg/Image"](
            header=self.header(ns), height=h, width=w, encoding=encoding, is_bigendian=0,
            step=w * c, data=np.ascontiguousarray(pixels).reshape(-1))

    def compressed(self, ns: int, rgb: np.ndarray, fmt: str = "png") -> object:
        ok, data = cv2.imencode(f".{fmt}", rgb[:, :, ::-1])
        assert ok
        return self.t["sensor_msgs/msg/CompressedImage"](
            header=self.header(ns), format=f"rgb8; {fmt} compressed bgr8",
            data=data.reshape(-1))

    def twist(self, ns: int, values) -> object:
        v3 = self.t["geometry_msgs/msg/Vector3"]
        twist = self.t["geometry_msgs/msg/Twist"](linear=v3(*values[:3]), angular=v3(*values[3:]))
        return self.t["geometry_msgs/msg/TwistStamped"](header=self.header(ns), twist=twist)

    def trajectory(self, ns: int, names, positions) -> object:
        point = self.t["trajectory_msgs/msg/JointTrajectoryPoint"](
            positions=np.asarray(positions, np.float64), velocities=np.zeros(0),
            accelerations=np.zeros(0), effort=np.zeros(0),
            time_from_start=self.t["builtin_interfaces/msg/Duration"](sec=0, nanosec=12_500_000))
        return self.t["trajectory_msgs/msg/JointTrajectory"](
            header=self.header(0), joint_names=list(names), points=[point])

    def bool(self, value: bool) -> object:
        return self.t["std_msgs/msg/Bool"](data=value)

    def empty(self) -> object:
        return self.t["std_msgs/msg/Empty"]()


def write_bag(path: Path, records, storage: str = "mcap", distro: str = "kilted",
              version: int = 9) -> Path:
    """A bag of ``records`` [(topic, receive ns, message)] with rosbags' own Writer."""
    msgs = Msgs(distro)
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=version, storage_plugin=plugin) as writer:
        connections = {}
        for topic, ns, msg in sorted(records, key=lambda r: r[1]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msg.__msgtype__,
                                                           typestore=msgs.store)
            writer.write(connections[topic], ns,
                         bytes(msgs.store.serialize_cdr(msg, msg.__msgtype__)))
    return path


def as_humble(path: Path) -> Path:
    """Make a sqlite3 bag look like Humble wrote it: no embedded definitions, no ros_distro."""
    db = next(path.glob("*.db3"))
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM message_definitions")
    meta = yaml.safe_load((path / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    info["version"] = 5
    info.pop("ros_distro", None)
    (path / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return path


def state_of(step: int) -> np.ndarray:
    return np.arange(STATE_DIM) + 100.0 * step


def action_of(step: int) -> np.ndarray:
    return np.arange(ACTION_DIM) * 0.1 + step


def arm_records(msgs: Msgs, steps: int, start_ns: int = T0, first_step: int = 0):
    """A simulated-arm-like recording: per step, the action, then the state it led to."""
    records = []
    for k in range(first_step, first_step + steps):
        t = start_ns + (k - first_step) * PERIOD
        records.append((ACTION, t, msgs.array(action_of(k))))
        records.append((STATE, t + ARRIVAL, msgs.array(state_of(k))))
    return records


def config(**changes) -> ConvertConfig:
    data = {"rate_hz": RATE_HZ, "max_age_s": 0.05, "observations": {"state": [STATE]},
            "action": {"topic": ACTION}}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) and key in (
            "action", "episodes") else value
    return convert_config_from_dict(data, "test")


def config_file(tmp_path: Path, conf: ConvertConfig) -> Path:
    import dataclasses

    path = tmp_path / "convert.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(conf)))
    return path


def step_of_state(row: np.ndarray) -> int:
    return int(round(row[0] / 100.0))


def assert_state_action_pairs(episode) -> None:
    """Each tick's action is the command that moved the arm from this state to the next."""
    steps = [step_of_state(r) for r in episode.obs["state"]]
    assert steps == list(range(steps[0], steps[0] + len(steps)))
    for row, action, k in zip(episode.obs["state"], episode.actions, steps):
        np.testing.assert_array_equal(row, np.float32(state_of(k)))
        np.testing.assert_array_equal(action, np.float32(action_of(k + 1)))


def run_convert(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["convert", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


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


@pytest.mark.parametrize("latency", [0.1, 0.5, 0.9])
def test_each_state_pairs_with_the_command_that_reacted_to_it_whatever_its_latency(tmp_path,
                                                                                   latency):
    """A simulator that renders before publishing delivers step k's state late, just before
    the command for it; the pairing must not slip by one."""
    msgs = Msgs()
    records = [(topic, t if topic == ACTION else t - ARRIVAL + round(latency * PERIOD), msg)
               for topic, t, msg in arm_records(msgs, 30)]
    bag = write_bag(tmp_path / "bag", records)
    (episode,) = convert_bags([bag], config()).episodes
    assert episode.num_steps >= 27
    assert_state_action_pairs(episode)
    if latency > 0.5:  # the latest command at the next tick is one too far: not the default
        (late,) = convert_bags([bag], config(action={"at": "next_tick"})).episodes
        k = step_of_state(late.obs["state"][0])
        np.testing.assert_array_equal(late.actions[0], np.float32(action_of(k + 2)))


def test_action_at_tick_takes_the_latest_command_instead(tmp_path):
    bag = write_bag(tmp_path / "bag", arm_records(Msgs(), 20))
    (episode,) = convert_bags([bag], config(action={"at": "tick"})).episodes
    for row, action in zip(episode.obs["state"], episode.actions):
        np.testing.assert_array_equal(action, np.float32(action_of(step_of_state(row))))


def test_bag_files_and_folders_of_bags_are_found(tmp_path):
    write_bag(tmp_path / "bags" / "a", arm_records(Msgs(), 10))
    write_bag(tmp_path / "bags" / "b", arm_records(Msgs(), 10), storage="sqlite3")
    lone = next((tmp_path / "bags" / "a").glob("*.mcap"))
    result = convert_bags([tmp_path / "bags", lone], config())
    assert [Path(r.path).name for r in result.bags] == ["a", "b", lone.name]
    assert len(result.episodes) == 3 and not result.skipped


# ---- observations -----------------------------------------------------------------------------
def test_joint_states_are_reordered_by_name_with_velocities(tmp_path):
    msgs, rng = Msgs(), np.random.default_rng(1)
    records = arm_records(msgs, 20)
    for k in range(20):
        order = rng.permutation(JOINTS + ["gripper"])
        values = {n: 10.0 * k + i for i, n in enumerate(JOINTS + ["gripper"])}
        records.append(("/joint_states", T0 + k * PERIOD + ARRIVAL, msgs.joints(
            0, order, [values[n] for n in order], [-values[n] for n in order])))
    bag = write_bag(tmp_path / "bag", records)
    conf = config(observations={"state": [STATE], "joints": ["/joint_states"]},
                  joint_names=["j2", "j0"], joint_state_fields=["position", "velocity"])
    (episode,) = convert_bags([bag], conf).episodes
    for state, joints in zip(episode.obs["state"], episode.obs["joints"]):
        k = step_of_state(state)
        np.testing.assert_array_equal(joints, [10 * k + 2, 10 * k, -(10 * k + 2), -10 * k])
    both = convert_bags([bag], config(observations={"state": ["/joint_states", STATE]},
                                      joint_names=["j1"])).episodes[0]
    assert both.obs["state"].shape[1] == 1 + STATE_DIM  # joint values first, then the vector
    for row in both.obs["state"]:
        assert row[0] == 10 * step_of_state(row[1:]) + 1


@pytest.mark.parametrize("kind", ["rgb8", "bgr8", "mono8", "png", "jpeg"])
def test_images_and_compressed_images_are_decoded_and_resized(tmp_path, kind):
    msgs = Msgs()
    records = arm_records(msgs, 12)
    for k in range(12):
        t = T0 + k * PERIOD + ARRIVAL
        frame = np.roll(PICTURE, k, axis=1)
        msg = (msgs.compressed(t, frame, kind) if kind in ("png", "jpeg")
               else msgs.image(t, frame, kind))
        records.append(("/camera/image_raw", t, msg))
    bag = write_bag(tmp_path / "bag", records)
    conf = config(observations={"state": [STATE], "image": ["/camera/image_raw"]}, image_size=16)
    (episode,) = convert_bags([bag], conf).episodes
    images = episode.obs["image"]
    assert images.shape == (10, 16, 16, 3) and images.dtype == np.uint8
    for state, image in zip(episode.obs["state"], images):
        frame = np.roll(PICTURE, step_of_state(state), axis=1)
        if kind == "mono8":
            frame = np.repeat(frame[:, :, :1], 3, axis=2)
        expected = cv2.resize(frame, (16, 16), interpolation=cv2.INTER_AREA)
        tolerance = 40 if kind == "jpeg" else 0
        assert np.abs(image.astype(int) - expected).mean() <= tolerance


def test_header_stamps_can_time_the_streams(tmp_path):
    """Joint states stamped at the step but received late (a slow link) line up by header."""
    msgs = Msgs()
    records = []
    for k in range(20):
        t = T0 + k * PERIOD
        records.append(("/cmd", t, msgs.twist(t, action_of(k).tolist() + [0.0, 0.0])))
        records.append(("/joint_states", t + 3 * PERIOD, msgs.joints(t + ARRIVAL, JOINTS,
                                                                     [k, 2 * k, 3 * k])))
    bag = write_bag(tmp_path / "bag", records)
    conf = config(observations={"q": ["/joint_states"]}, joint_names=JOINTS,
                  action={"topic": "/cmd"}, time_source="header")
    (episode,) = convert_bags([bag], conf).episodes
    for q, action in zip(episode.obs["q"], episode.actions):
        assert action.shape == (6,)  # TwistStamped: linear then angular
        np.testing.assert_array_equal(action[:ACTION_DIM], np.float32(action_of(q[0] + 1)))
    late = convert_bags([bag], config(observations={"q": ["/joint_states"]}, joint_names=JOINTS,
                                      action={"topic": "/cmd"})).episodes[0]
    assert late.actions[0, 0] - late.obs["q"][0, 0] == pytest.approx(4.0)  # receive: 3 off


# ---- actions ----------------------------------------------------------------------------------
def test_joint_trajectory_commands_and_joint_deltas(tmp_path):
    msgs = Msgs()
    records = []
    for k in range(15):
        t = T0 + k * PERIOD
        records.append(("/traj", t, msgs.trajectory(t, ["j1", "j0", "j2"], [k + 0.5, k, k + 1])))
        records.append(("/joint_states", t + ARRIVAL, msgs.joints(t, JOINTS, [k, k ** 2, 0])))
    bag = write_bag(tmp_path / "bag", records)
    base = {"observations": {"q": ["/joint_states"]}, "joint_names": JOINTS}
    (episode,) = convert_bags([bag], config(**base, action={"topic": "/traj"})).episodes
    for q, action in zip(episode.obs["q"], episode.actions):
        k = q[0] + 1  # the next command
        np.testing.assert_array_equal(action, [k, k + 0.5, k + 1])
    (episode,) = convert_bags([bag], config(**base, action={
        "topic": "/joint_states", "source": "joint_delta", "joint_names": ["j1"]})).episodes
    for q, action in zip(episode.obs["q"], episode.actions):
        assert action[0] == (q[0] + 1) ** 2 - q[0] ** 2


# ---- episodes ---------------------------------------------------------------------------------
def test_gaps_split_episodes_and_stale_streams_drop_ticks(tmp_path, capsys):
    msgs = Msgs()
    records = arm_records(msgs, 20) + arm_records(msgs, 20, T0 + 3 * 10**9, first_step=100)
    records = [r for r in records if not (r[0] == STATE and T0 + 8 * PERIOD < r[1] < T0 + 16
                                          * PERIOD)]  # a camera-like hiccup in episode 0
    bag = write_bag(tmp_path / "bag", records)
    # 15 ms: a tick normally sees a state P/2 = 6 ms old; a missing one makes it >= 19 ms
    conf = config(episodes={"split": "gap", "gap_s": 1.0}, max_age_s=0.015)
    result = convert_bags([bag], conf)
    assert len(result.episodes) == 3  # episode 0 cut at the hiccup, episode 1 whole
    for episode in result.episodes:
        assert_state_action_pairs(episode)
    assert [e.attrs["bag_episode"] for e in result.episodes] == [0, 0, 1]
    assert result.bags[0].dropped[f"stale {STATE}"] > 0 and not result.skipped
    code, stdout, _ = run_convert(capsys, bag, "--config", config_file(tmp_path, conf), "--out",
                                  tmp_path / "o.hdf5")
    assert code == 0 and f"dropped (stale {STATE}:" in stdout


@pytest.mark.parametrize("marker", ["bool", "empty"])
def test_marker_topics_split_episodes(tmp_path, marker):
    msgs = Msgs()
    records = arm_records(msgs, 60)
    if marker == "bool":  # recorded 5..25 and 35..55
        records += [("/marker", T0 + s * PERIOD + ARRIVAL * 2, msgs.bool(on))
                    for s, on in ((5, True), (25, False), (35, True), (55, False))]
    else:  # boundaries at 20 and 40: three episodes
        records += [("/marker", T0 + s * PERIOD + ARRIVAL * 2, msgs.empty()) for s in (20, 40)]
    bag = write_bag(tmp_path / "bag", records)
    result = convert_bags([bag], config(episodes={"split": "marker", "marker_topic": "/marker"}))
    assert len(result.episodes) == (2 if marker == "bool" else 3)
    for episode in result.episodes:
        assert_state_action_pairs(episode)
        assert 15 <= episode.num_steps <= 20
    if marker == "bool":
        assert {step_of_state(e.obs["state"][0]) for e in result.episodes} == {6, 36}


def test_success_comes_from_a_bool_topic(tmp_path):
    msgs = Msgs()
    records = arm_records(msgs, 10) + [("/ok", T0 + k * PERIOD + ARRIVAL, msgs.bool(k == 6))
                                       for k in range(10)]
    bag = write_bag(tmp_path / "bag", records)
    assert convert_bags([bag], config(success_topic="/ok")).episodes[0].success is True
    assert convert_bags([bag], config(success_topic="/other")).episodes[0].success is None


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
