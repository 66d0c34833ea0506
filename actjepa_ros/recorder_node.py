"""Record demonstrations into rosbag2 files, one bag per episode, where `ros2 bag` is not installed.

Subscribes to the configured topics with ``raw=True`` and writes each message's CDR bytes as they
arrived (``actjepa_core.bags.writer``: MCAP by default, the message definitions embedded), stamped
with the node clock at reception, just as ``ros2 bag record`` does; ``actjepa convert`` reads these
bags like any other. An episode starts with ``~/start`` (or ``autostart``, or ``true`` on
``marker_topic``) and ends with ``~/stop`` (or ``false`` on the marker); ``~/stop`` answers with
the closed bag's path. Each received message is written in its callback; on stop, SIGINT or
SIGTERM the bag is closed with everything received so far. Against SIGKILL, the OOM killer or a
power cut, what was received is flushed to disk (a complete, CRC-checked MCAP chunk, or a sqlite3
commit; then fsync) at least every ``flush_period_s``: `actjepa recover` (or `actjepa convert`,
with a warning) gives back every message older than that from the unfinished bag.

Topic types come from ``types`` or, when that is empty, from the ROS graph once a publisher
appears (polled every ``discovery_period_s``); subscribe before the publishers start (give
``types``) to record an episode from its first message.

With ``episodes_file`` set, each closed bag is also converted (``actjepa convert``'s converter,
with the ``actjepa_convert`` entry of the params file) and its episodes appended to that episodes
file, in a separate process at lower priority (``actjepa_core.bags.worker``), so the callbacks
that write messages never wait for it. The file is replaced atomically per append: `actjepa
train` can read it at any time, also while recording goes on. Each outcome (episodes and ticks
added, ticks dropped and why, what was skipped and why) is logged and published as JSON on
``~/conversion``; ``~/convert`` rebuilds the file from every bag in ``output_dir``. On
SIGINT/SIGTERM the last episode is closed and its conversion given ``convert_shutdown_timeout_s``
to finish (a second signal: at once); whatever is not converted stays in its bag.

    python -m actjepa_ros.recorder_node --ros-args --params-file config/recorder.yaml
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from actjepa_core.bags.append import describe, stale_temporaries
from actjepa_core.bags.config import ConvertConfig, load_convert_config
from actjepa_core.bags.reader import find_bags
from actjepa_core.bags.writer import DEFAULT_DISTRO, BagWriter
from actjepa_core.errors import ActJepaError
from actjepa_ros import params
from actjepa_ros.params import RECORDER_PARAMS
from actjepa_ros.spin import StopSignals, spin_node

NODE_NAME = "recorder_node"
MARKER_DEPTH = 10
WARN_EVERY_S = 5.0
CONVERSION_DEPTH = 100  # ~/conversion results kept for late subscribers (transient local)


def message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/JointState' (or 'sensor_msgs/JointState') -> the rclpy message class."""
    parts = msgtype.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ActJepaError(f"message type {msgtype!r}; expected package/msg/Type")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.msg"), parts[-1])
    except (ImportError, AttributeError):
        raise ActJepaError(f"message type {msgtype}: no Python module provides it here "
                           f"(install the {parts[0]} package)") from None


def params_files(argv: Sequence[str]) -> list[str]:
    """The ``--params-file`` paths in the ``--ros-args`` sections of a command line."""
    files, in_ros, args = [], False, list(argv)
    for i, arg in enumerate(args):
        if arg == "--ros-args":
            in_ros = True
        elif arg == "--":
            in_ros = False
        elif in_ros and arg == "--params-file" and i + 1 < len(args):
            files.append(args[i + 1])
    return files


def find_convert_config(given: str, argv: Sequence[str]) -> tuple[ConvertConfig, str]:
    """The convert config for ``episodes_file``: from ``given``, else from the first params file
    with an actjepa_convert entry. Returns it and the file it came from."""
    if given:
        return load_convert_config(given), given
    files = params_files(argv)
    problems = []
    for path in files:
        try:
            return load_convert_config(path), path
        except ActJepaError as err:
            problems.append(str(err))
    raise ActJepaError("episodes_file is set but no convert config was found: "
                       + ("; ".join(problems) if problems else "no --params-file given")
                       + "; expected an actjepa_convert entry in the params file (see "
                       "config/recorder.yaml) or convert_config:=<file>")


class RecorderNode(Node):
    """Subscriptions to the configured topics, and the bag of the episode being recorded."""

    def __init__(self, argv: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        problems = params.declare(self, RECORDER_PARAMS)
        if problems:
            raise ActJepaError("; ".join(problems.values()))
        self.p = params.values(self, RECORDER_PARAMS)
        self.pending = self.topic_types()  # topic -> type ('' = not known yet)
        self.subscribed: dict[str, str] = {}
        self.bag: BagWriter | None = None
        self.episode = 0
        self.distro = os.environ.get("ROS_DISTRO", DEFAULT_DISTRO)
        self.converter: Any = None  # actjepa_core.bags.worker.ConversionWorker
        self.convert_config: ConvertConfig | None = None
        self.pub_conversion: Any = None
        self.results_lock = threading.Lock()
        if self.p["episodes_file"]:
            self.start_conversions(argv)
        self.create_service(Trigger, "~/start", self.on_start)
        self.create_service(Trigger, "~/stop", self.on_stop)
        if self.p["marker_topic"]:
            self.create_subscription(Bool, self.p["marker_topic"], self.on_marker,
                                     QoSProfile(depth=MARKER_DEPTH,
                                                reliability=ReliabilityPolicy.RELIABLE))
        self.discover()
        self.discovery = (self.create_timer(self.p["discovery_period_s"], self.discover)
                          if self.pending else None)
        self.flusher = self.create_timer(self.p["flush_period_s"], self.flush)
        if self.p["autostart"]:
            self.start()

    # ---- the episodes file ------------------------------------------------------------------
    def start_conversions(self, argv: Sequence[str]) -> None:
        """Load and check the convert config, start the conversion process, ``~/convert``."""
        from actjepa_core.bags.worker import ConversionWorker

        config, source = find_convert_config(self.p["convert_config"], argv)
        recorded = set(self.pending)
        missing = [t for t in config.required_topics() if t not in recorded]
        if missing:
            raise ActJepaError(f"the convert config in {source} uses {missing}, which this "
                               f"recorder does not record (topics: {sorted(recorded)}); expected "
                               "every observation and action topic among the recorded ones")
        self.convert_config = config
        out = Path(self.p["episodes_file"])
        for leftover in stale_temporaries(out):
            leftover.unlink(missing_ok=True)
            self.get_logger().warning(f"removed {leftover}: an append to {out.name} that did not "
                                      "finish (the file itself is whole)")
        self.pub_conversion = self.create_publisher(String, "~/conversion", QoSProfile(
            depth=CONVERSION_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.converter = ConversionWorker(self.on_conversion)
        self.create_service(Trigger, "~/convert", self.on_convert)
        self.get_logger().info(f"each episode's bag is appended to {out} (convert config: "
                               f"{source}, {config.rate_hz:g} Hz, observations "
                               f"{dict(config.observations)}, action {config.action.topic})")

    def convert(self, bag: str) -> None:
        """Queue a closed bag's conversion (append to the episodes file)."""
        if self.converter is not None:
            self.converter.submit({"kind": "append", "bag": bag, "config": self.convert_config,
                                   "episodes_file": self.p["episodes_file"]})

    def rebuild(self) -> str:
        """``~/convert``: queue a rebuild of the episodes file from every closed bag in
        output_dir (the one being recorded is appended when it closes)."""
        folder = Path(self.p["output_dir"])
        recording = self.bag.path.resolve() if self.bag is not None else None
        bags = []
        if folder.is_dir() and any(folder.iterdir()):
            bags = [str(b) for b in find_bags([folder])
                    if recording is None
                    or (b.resolve() != recording and recording not in b.resolve().parents)]
        if not bags:
            raise ActJepaError(f"no closed bag in {folder}; nothing to rebuild "
                               f"{self.p['episodes_file']} from")
        job = self.converter.submit({"kind": "rebuild", "bags": bags,
                                     "config": self.convert_config,
                                     "episodes_file": self.p["episodes_file"]})
        return (f"rebuild {job} queued: {self.p['episodes_file']} from {len(bags)} bag(s) in "
                f"{folder}; the result follows on {self.pub_conversion.topic_name} and in the "
                "log")

    def on_conversion(self, result: dict[str, Any]) -> None:
        """A conversion's outcome (from the worker's thread): log it, publish it."""
        line = describe(result)
        with self.results_lock:
            if self.pub_conversion is None:  # shutting down: the log line is all that is left
                print(f"[{NODE_NAME}] {line}", file=sys.stderr, flush=True)
                return
            logger = self.get_logger()
            (logger.info if result["ok"] and not result.get("skipped") else logger.warning)(line)
            self.pub_conversion.publish(String(data=json.dumps(result, default=str)))

    def finish_conversions(self, signals: StopSignals | None) -> None:
        """Shutdown: give queued conversions convert_shutdown_timeout_s, then stop them."""
        if self.converter is None:
            return
        waiting = self.converter.pending()
        timeout = self.p["convert_shutdown_timeout_s"]
        if waiting:
            self.get_logger().info(f"waiting up to {timeout:g} s for {waiting} conversion(s) "
                                   "(send the signal again to stop them now)")
        left = self.converter.close(timeout, signals.hurry if signals else None)
        for job in left:
            what = job.get("bag") or f"rebuild from {len(job.get('bags', []))} bag(s)"
            self.get_logger().warning(
                f"not converted: {what}: {job['why']}; `actjepa convert` or ~/convert adds it")
        with self.results_lock:
            self.pub_conversion = None
        self.converter = None

    def topic_types(self) -> dict[str, str]:
        topics = [self.resolve_topic_name(t) for t in self.p["topics"]]
        types = self.p["types"]
        if not topics:
            raise ActJepaError("parameter topics is empty; expected the topics to record")
        if types and len(types) != len(topics):
            raise ActJepaError(f"parameter types has {len(types)} entries for {len(topics)} "
                               "topics; expected one per topic, or [] to discover them")
        return dict(zip(topics, types or [""] * len(topics)))

    # ---- subscriptions ----------------------------------------------------------------------
    def discover(self) -> None:
        """Subscribe to every pending topic whose type is given or now visible in the graph."""
        graph = dict(self.get_topic_names_and_types()) if any(
            not t for t in self.pending.values()) else {}
        for topic, msgtype in list(self.pending.items()):
            seen = graph.get(topic, [])
            if not msgtype and len(seen) == 1:
                msgtype = seen[0]
            if not msgtype:
                self.get_logger().info(f"waiting for a publisher on {topic} to learn its type",
                                       throttle_duration_sec=WARN_EVERY_S)
                continue
            del self.pending[topic]
            self.subscribe(topic, msgtype)
        if not self.pending and getattr(self, "discovery", None) is not None:
            self.discovery.cancel()

    def subscribe(self, topic: str, msgtype: str) -> None:
        try:
            cls = message_class(msgtype)
        except ActJepaError as err:
            self.get_logger().error(f"not recording {topic}: {err}")
            return
        self.create_subscription(cls, topic, lambda raw, t=topic: self.on_message(t, raw),
                                 self.qos_for(topic), raw=True)
        self.subscribed[topic] = msgtype
        if self.bag is not None:
            self.add_to_bag(topic)
        self.get_logger().info(f"subscribed to {topic} ({msgtype})")

    def qos_for(self, topic: str) -> QoSProfile:
        choice = self.p["reliability"]
        if choice == "auto":
            offered = [i.qos_profile.reliability for i in self.get_publishers_info_by_topic(topic)]
            best_effort = offered and all(r == ReliabilityPolicy.BEST_EFFORT for r in offered)
            choice = "best_effort" if best_effort else "reliable"
        reliability = (ReliabilityPolicy.BEST_EFFORT if choice == "best_effort"
                       else ReliabilityPolicy.RELIABLE)
        return QoSProfile(depth=self.p["queue_depth"], reliability=reliability)

    def on_message(self, topic: str, raw: bytes) -> None:
        """Write one message, stamped with the node clock now (the receive time)."""
        if self.bag is None or not self.bag.has_topic(topic):
            return
        self.bag.write(topic, self.get_clock().now().nanoseconds, raw)

    # ---- episodes ---------------------------------------------------------------------------
    def start(self) -> str:
        """Open the next episode's bag; returns its path."""
        if self.bag is not None:
            raise ActJepaError(f"already recording {self.bag.path}; call ~/stop first")
        self.bag = BagWriter(self.next_path(), self.p["storage"], self.distro,
                             flush_period_s=self.p["flush_period_s"], fsync=self.p["fsync"])
        for topic in self.subscribed:
            self.add_to_bag(topic)
        self.get_logger().info(f"episode {self.episode}: recording {sorted(self.subscribed)} "
                               f"to {self.bag.path}")
        return str(self.bag.path)

    def flush(self) -> None:
        """Timer: what arrived since the last flush goes to disk (writes flush too, when due)."""
        if self.bag is None:
            return
        try:
            self.bag.flush()
        except OSError as err:
            self.get_logger().error(f"episode {self.episode}: cannot flush {self.bag.path}: "
                                    f"{err}", throttle_duration_sec=WARN_EVERY_S)

    def add_to_bag(self, topic: str) -> None:
        try:
            self.bag.add_topic(topic, self.subscribed[topic])
        except ActJepaError as err:
            self.get_logger().error(str(err))

    def stop(self) -> str:
        """Close the bag being written (index, metadata); returns its path."""
        if self.bag is None:
            raise ActJepaError("not recording; call ~/start first")
        bag, self.bag = self.bag, None
        counts = bag.close()
        listing = ", ".join(f"{t}: {n}" for t, n in sorted(counts.items())) or "no messages"
        self.get_logger().info(f"episode {self.episode}: wrote {bag.path} ({listing})")
        self.episode += 1
        self.convert(str(bag.path))
        return str(bag.path)

    def next_path(self) -> Path:
        folder = Path(self.p["output_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d_%H%M%S")
        path = folder / f"{self.p['bag_prefix']}_{stamp}_{self.episode:03d}"
        suffix = 1
        while path.exists():
            path = folder / f"{self.p['bag_prefix']}_{stamp}_{self.episode:03d}_{suffix}"
            suffix += 1
        return path

    # ---- requests ---------------------------------------------------------------------------
    def on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        return self.answer(self.start, response)

    def on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        return self.answer(self.stop, response)

    def on_convert(self, request: Trigger.Request,
                   response: Trigger.Response) -> Trigger.Response:
        return self.answer(self.rebuild, response)

    def answer(self, action: Any, response: Trigger.Response) -> Trigger.Response:
        """Trigger response: success and the bag path, or failure and why."""
        try:
            response.message, response.success = action(), True
        except ActJepaError as err:
            response.message, response.success = str(err), False
            self.get_logger().warning(str(err))
        return response

    def on_marker(self, msg: Bool) -> None:
        """true: start an episode (unless recording); false: stop it (if recording)."""
        if bool(msg.data) == (self.bag is not None):
            return
        try:
            self.start() if msg.data else self.stop()
        except ActJepaError as err:
            self.get_logger().error(str(err))


def main(args: Sequence[str] | None = None) -> int:
    """``python -m actjepa_ros.recorder_node --ros-args --params-file config/recorder.yaml``.

    SIGINT/SIGTERM (``spin.spin_node``): the episode being recorded is closed and logged while
    the node can still log, then queued conversions get convert_shutdown_timeout_s."""
    signals = StopSignals()
    argv = list(sys.argv if args is None else args)
    return spin_node(lambda: RecorderNode(argv), NODE_NAME,
                     lambda node: _shut_down(node, signals), args, signals)


def _shut_down(node: RecorderNode, signals: StopSignals) -> None:
    """Close the episode being recorded with everything it received, then the conversions."""
    if node.bag is not None:
        try:
            node.stop()
        except Exception as err:  # noqa: BLE001 - a full disk must not hide the shutdown
            node.get_logger().error(f"episode {node.episode}: closing the bag failed: {err}")
    node.finish_conversions(signals)


if __name__ == "__main__":
    sys.exit(main())
