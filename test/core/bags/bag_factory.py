"""Real rosbag2 files for the bag tests, written with the `rosbags` library: message builders for
one ROS distribution's type store, a bag writer, a simulated-arm-like recording (each step's
action, then the state it led to), a made-up rig's recording with faults put in (``Rig``), and the
checks and config the tests share."""
from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from actjepa_core import cli
from actjepa_core.bags import ConvertConfig, convert_config_from_dict

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


# ---- a made-up 3-joint rig with a known ground truth (issue 29) --------------------------------
# JointState at 100 Hz (every position is the real time the state was sampled), camera frames at
# 15 Hz (every pixel is the frame's number), Float64MultiArray commands at 10 Hz (every value is
# the real time the command was sent). Header stamps and receive times can be made to disagree,
# and faults put in for a span of real time.
JOINT_HZ, CAMERA_HZ, COMMAND_HZ = 100, 15, 10
JOINT_STATES, CAMERA, COMMANDS = "/joint_states", "/camera/image", "/cmd"
RIG_LATENCY_NS = 1_000_000  # publish -> receive
RIG_RATE_HZ = 10.0  # the output: one tick per command
RIG_MAX_AGE_S = 0.1
RIG_BOUND_S = RIG_MAX_AGE_S + 1 / RIG_RATE_HZ  # the most a written tick's messages lie apart
NS_PER_S = 10**9


@dataclass
class Rig:
    """What to record for ``seconds``; each ``*_at`` function maps real time (s) to a change."""

    seconds: float = 4.0
    camera: bool = False
    frame_shape: tuple[int, int] = (24, 32)  # rows, columns
    stamp_offset: Callable[[float], float] = lambda t: 0.0  # header stamp minus real time (s)
    joints_at: Callable[[float], list[str]] = lambda t: JOINTS  # names a JointState carries
    empty_at: Callable[[float], bool] = lambda t: False  # JointState with no positions
    command_length_at: Callable[[float], int] = lambda t: 3
    frame_shape_at: Callable[[float], tuple[int, int] | None] = lambda t: None
    duplicate: bool = False  # every message recorded twice (two identical publishers)
    msgs: Msgs = field(default_factory=Msgs)

    def records(self) -> list[tuple[str, int, object]]:
        records = []
        for k in range(int(self.seconds * JOINT_HZ)):
            records.append(self._joint_state(k / JOINT_HZ))
        for k in range(int(self.seconds * COMMAND_HZ)):
            t = k / COMMAND_HZ + 0.003  # just after a state: a controller's reaction
            records.append((COMMANDS, self._receive(t),
                            self.msgs.array(np.full(self.command_length_at(t), t))))
        if self.camera:
            for k in range(int(self.seconds * CAMERA_HZ)):
                records.append(self._frame(k))
        return records + records if self.duplicate else records

    def _receive(self, t: float) -> int:
        return T0 + round(t * NS_PER_S) + RIG_LATENCY_NS

    def _stamp(self, t: float) -> int:
        return T0 + round((t + self.stamp_offset(t)) * NS_PER_S)

    def _joint_state(self, t: float) -> tuple[str, int, object]:
        names = self.joints_at(t)
        position = [] if self.empty_at(t) else [t] * len(names)
        return JOINT_STATES, self._receive(t), self.msgs.joints(self._stamp(t), names, position)

    def _frame(self, k: int) -> tuple[str, int, object]:
        t = k / CAMERA_HZ
        rows, cols = self.frame_shape_at(t) or self.frame_shape
        pixels = np.full((rows, cols, 3), k % 256, dtype=np.uint8)
        return CAMERA, self._receive(t), self.msgs.compressed(self._stamp(t), pixels, "png")


def rig_config(**changes) -> dict:
    """The convert config of the rig (a dict: tests change keys before building it)."""
    data = {"rate_hz": RIG_RATE_HZ, "max_age_s": RIG_MAX_AGE_S, "time_source": "header",
            "observations": {"joints": [JOINT_STATES]}, "joint_names": JOINTS,
            "action": {"topic": COMMANDS}, "image_size": 0}
    data.update(changes)
    return data


def real_times(episode) -> tuple[np.ndarray, np.ndarray]:
    """Per tick: the real time of its JointState, and of its command (the ground truth)."""
    return episode.obs["joints"][:, 0].astype(float), episode.actions[:, 0].astype(float)


def frame_times(episode) -> np.ndarray:
    """Per tick: the real time of its camera frame (pixel value = frame number)."""
    frames = np.asarray(episode.obs["image"])
    return frames[:, 0, 0, 0].astype(float) / CAMERA_HZ


def jpeg_frame(k: int, shape: tuple[int, int] = (480, 640)) -> np.ndarray:
    """A camera-like frame (gradients moving with ``k``), for jpeg bags of realistic size."""
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    return np.stack([(x + k) % 256, (y + 2 * k) % 256, (x + y) // 5 % 256],
                    axis=-1).astype(np.uint8)


def encode_jpeg(rgb: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.reshape(-1)


def write_camera_bag(path: Path, seconds: float, shape: tuple[int, int] = (480, 640),
                     broken: frozenset[int] = frozenset()) -> Path:
    """A rig recording with jpeg frames of ``shape`` (camera-like: moving gradients), written in
    time order one message at a time, so a 10-minute bag never sits in memory; frame numbers in
    ``broken`` carry bytes that are no image."""
    msgs = Msgs()
    events = sorted([(round(k * NS_PER_S / JOINT_HZ), JOINT_STATES, k)
                     for k in range(int(seconds * JOINT_HZ))]
                    + [(round(k * NS_PER_S / CAMERA_HZ), CAMERA, k)
                       for k in range(int(seconds * CAMERA_HZ))]
                    + [(round(k * NS_PER_S / COMMAND_HZ) + 3_000_000, COMMANDS, k)
                       for k in range(int(seconds * COMMAND_HZ))])
    fmt = "rgb8; jpeg compressed bgr8"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        types = {JOINT_STATES: "sensor_msgs/msg/JointState",
                 CAMERA: "sensor_msgs/msg/CompressedImage",
                 COMMANDS: "std_msgs/msg/Float64MultiArray"}
        connections = {t: writer.add_connection(t, m, typestore=msgs.store)
                       for t, m in types.items()}
        for ns, topic, k in events:
            t = ns / NS_PER_S
            if topic == JOINT_STATES:
                msg = msgs.joints(T0 + ns, JOINTS, [t] * 3)
            elif topic == CAMERA:
                data = (np.frombuffer(b"not an image" * 8, np.uint8) if k in broken
                        else encode_jpeg(jpeg_frame(k, shape)))
                msg = msgs.t["sensor_msgs/msg/CompressedImage"](header=msgs.header(T0 + ns),
                                                                 format=fmt, data=data)
            else:
                msg = msgs.array([t] * 3)
            writer.write(connections[topic], T0 + ns + RIG_LATENCY_NS,
                         bytes(msgs.store.serialize_cdr(msg, types[topic])))
    return path
