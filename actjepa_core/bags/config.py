"""What `actjepa convert` reads from a bag: which topic fills which observation key, which topic
is the action, and how the streams are resampled into control ticks and cut into episodes.

The config lives in one YAML file with the recorder node's parameters (``config/recorder.yaml``):
under a ``/**/actjepa_convert: ros__parameters:`` entry, which ROS params-file parsers accept and
apply to no node, so ``ros2 launch`` and ``--params-file`` can be given the same file. A plain YAML
file holding the same keys at its top level works too. Unknown keys and wrong types are errors
naming the file and the dotted key (``actjepa_core.config.from_dict``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actjepa_core.config import from_dict, read_yaml
from actjepa_core.data.messages import JOINT_STATE_FIELDS
from actjepa_core.errors import ActJepaError, check_choice

SECTION = "actjepa_convert"  # the params-file entry holding the convert config
ROS_PARAMETERS = "ros__parameters"
TIME_SOURCES = ("receive", "header")
ACTION_SOURCES = ("topic", "joint_delta")
ACTION_TIMINGS = ("after_obs", "next_tick", "tick")
SPLITS = ("bag", "gap", "marker")
TYPESTORES = ("auto", "humble", "iron", "jazzy", "kilted")
# Sane ranges of the numeric keys, as interval text. Beyond them a value is a typo
# or a unit mistake (1e10 Hz rounds the tick period to 0 ns; .inf s overflows nanoseconds), so it
# is refused at load instead of failing deep in the conversion.
MAX_RATE_HZ = 10_000.0  # a tick every 100 us: beyond any controller's rate
MAX_SECONDS = 3600.0  # ages, gaps and clock jumps longer than an hour are not tolerances
MAX_IMAGE_SIDE = 8192
MIN_RATE_HZ = 0.01  # a tick every 100 s: slower is no control rate
NUMBER_RANGES = {"rate_hz": f"[{MIN_RATE_HZ:g}, {MAX_RATE_HZ:g}]",
                 "max_age_s": f"(0, {MAX_SECONDS:g}]",
                 "clock_jump_s": f"(0, {MAX_SECONDS:g}]", "tick_phase": "[0, 1)",
                 "episodes.gap_s": f"(0, {MAX_SECONDS:g}]"}


@dataclass
class ActionConfig:
    """Where each tick's action comes from."""

    topic: str = "/sim_node/action"  # the command topic (joint_delta: a JointState topic)
    # topic: the recorded command (Float64MultiArray, Twist(Stamped) -> 6-d linear+angular,
    # JointTrajectory -> first point's positions, JointState -> positions);
    # joint_delta: positions at the next tick minus positions at this tick (no command recorded)
    source: str = "topic"
    # which command moved the arm from obs[t] to obs[t+1] (what a transition needs):
    # after_obs: the first command received after the tick's newest observation message (the
    # reaction to it, whatever the observation's latency), if it comes before the next tick,
    # else the command still in effect then; next_tick: the latest command at or before the
    # next tick; tick: the latest command at or before the tick
    at: str = "after_obs"
    joint_names: list[str] = field(default_factory=list)  # JointTrajectory/JointState/joint_delta
    # joints in this order; [] = the top-level joint_names (JointTrajectory: [] = as sent)


@dataclass
class EpisodeSplitConfig:
    """How a bag becomes episodes."""

    split: str = "bag"  # bag: one episode per bag | gap: also at silences | marker: marker topic
    gap_s: float = 1.0  # gap: a silence on every configured topic longer than this splits
    marker_topic: str = ""  # marker: std_msgs/Bool (true starts, false ends an episode) or
    # std_msgs/Empty (each message ends one episode and starts the next)


@dataclass
class ConvertConfig:
    """The `actjepa convert` config. Defaults: the simulated arm (config/sim.yaml)."""

    rate_hz: float = 80.0  # control rate of the output (the simulated arm steps at 80 Hz)
    time_source: str = "receive"  # receive: bag timestamps | header: header.stamp where the
    # message has one (and it is not zero), else the receive time
    max_age_s: float = 0.1  # a stream whose latest message is older than this at a tick drops it
    clock_jump_s: float = 0.1  # time_source header: a stream whose header stamp steps this much
    # more (or less) than its receive time did is a clock jump (an NTP step, a driver restart):
    # the recording is split there. A smaller step is taken as delivery jitter, so consecutive
    # ticks may then lie one period +- this apart in real time
    tick_phase: float = 0.5  # ticks start this fraction of a period after every stream has a
    # message: half a period away from the arrivals of same-rate streams, so jitter does not
    # flip which message a tick sees
    observations: dict[str, list[str]] = field(
        default_factory=lambda: {"state": ["/sim_node/state"]})  # key -> topics, concatenated in
    # order (JointState, Float64MultiArray); an image key takes one Image/CompressedImage topic
    joint_names: list[str] = field(default_factory=list)  # JointState joints, in this order
    joint_state_fields: list[str] = field(default_factory=lambda: ["position"])  # add velocity
    image_size: int = 0  # side of the square output image; 0 = the bag's size (all frames equal)
    image_resize: bool = True  # false: frames of another size than image_size are refused
    action: ActionConfig = field(default_factory=ActionConfig)
    episodes: EpisodeSplitConfig = field(default_factory=EpisodeSplitConfig)
    success_topic: str = ""  # std_msgs/Bool: an episode succeeded if any message in it is true
    # (a bag without this topic gives episodes of unknown success)
    typestore: str = "auto"  # message definitions for bags that embed none (Humble sqlite3):
    # auto = the bag's ros_distro, else humble

    def validate(self, where: str) -> "ConvertConfig":
        """Raise ActJepaError naming ``where`` and the key for the first bad value."""
        check_choice(where, "time_source", self.time_source, TIME_SOURCES)
        check_choice(where, "action.source", self.action.source, ACTION_SOURCES)
        check_choice(where, "action.at", self.action.at, ACTION_TIMINGS)
        check_choice(where, "episodes.split", self.episodes.split, SPLITS)
        check_choice(where, "typestore", self.typestore, TYPESTORES)
        problems = self.number_problems(where)
        if problems:
            raise ActJepaError("\n".join(problems))
        unknown = [f for f in self.joint_state_fields if f not in JOINT_STATE_FIELDS]
        if unknown or not self.joint_state_fields:
            raise ActJepaError(f"{where}: joint_state_fields {self.joint_state_fields}; expected "
                               f"a non-empty list of {list(JOINT_STATE_FIELDS)}")
        if not self.action.topic:
            raise ActJepaError(f"{where}: action.topic is empty; expected the command topic "
                               "(or, with action.source joint_delta, a JointState topic)")
        if self.episodes.split == "marker" and not self.episodes.marker_topic:
            raise ActJepaError(f"{where}: episodes.split is marker but episodes.marker_topic is "
                               "empty; expected a std_msgs/Bool or std_msgs/Empty topic")
        return self

    def number_problems(self, where: str) -> list[str]:
        """One line per numeric key that is not finite or out of its sane range (all of them at
        once: a config with three bad numbers is fixed in one go)."""
        problems = []
        for key, interval in NUMBER_RANGES.items():
            value = self._value(key)
            if not (math.isfinite(value) and _inside(value, interval)):
                problems.append(f"{where}: {key} is {value!r}; expected a finite number in "
                                f"{interval}")
        if not 0 <= self.image_size <= MAX_IMAGE_SIDE:
            problems.append(f"{where}: image_size is {self.image_size}; expected 0 (the bag's "
                            f"size) or a side in pixels up to {MAX_IMAGE_SIDE}")
        return problems

    def _value(self, dotted: str) -> float:
        owner: Any = self
        for part in dotted.split("."):
            owner = getattr(owner, part)
        return owner

    def action_joints(self) -> list[str]:
        return list(self.action.joint_names or self.joint_names)

    def required_topics(self) -> list[str]:
        """Every topic a bag must have, each once, in config order (not the success topic)."""
        topics = [t for ts in self.observations.values() for t in ts]
        topics += [self.action.topic, self.episodes.marker_topic if
                   self.episodes.split == "marker" else ""]
        return list(dict.fromkeys(t for t in topics if t))


def _inside(value: float, interval: str) -> bool:
    """Whether ``value`` lies in ``interval``, written as "(0, 10]" or "[0, 1)"."""
    low, high = (float(x) for x in interval[1:-1].split(","))
    above = low <= value if interval[0] == "[" else low < value
    below = value <= high if interval[-1] == "]" else value < high
    return above and below


def convert_config_from_dict(data: Any, where: str) -> ConvertConfig:
    """Build and validate a ConvertConfig; ``observations`` (a mapping) is checked here."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ActJepaError(f"{where}: the convert config must be a mapping, got "
                           f"{type(data).__name__}")
    data = dict(data)
    observations = data.pop("observations", None)
    config = from_dict(ConvertConfig, data, where)
    if observations is not None:
        config.observations = _observations(observations, where)
    return config.validate(where)


def _observations(value: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(value, dict) or not value:
        raise ActJepaError(f"{where}: observations must map observation keys to topic lists, "
                           f"e.g. {{state: [/joint_states]}}; got {value!r}")
    result = {}
    for key, topics in value.items():
        if isinstance(topics, str):
            topics = [topics]
        if (not isinstance(topics, list) or not topics
                or not all(isinstance(t, str) and t for t in topics)):
            raise ActJepaError(f"{where}: observations.{key} must be a non-empty list of topic "
                               f"names, got {topics!r}")
        result[str(key)] = list(topics)
    return result


def load_convert_config(path: str | Path | None) -> ConvertConfig:
    """The config in ``path`` (its actjepa_convert entry, or the whole file); None: defaults."""
    if path is None:
        return ConvertConfig().validate("built-in convert config")
    path = Path(path)
    return convert_config_from_dict(_section(read_yaml(path), path), str(path))


def _section(content: Any, path: Path) -> Any:
    """The convert entry of a ROS params file, or the whole document of a plain one."""
    if not isinstance(content, dict):
        return content
    ros_entries = {k: v for k, v in content.items()
                   if isinstance(v, dict) and ROS_PARAMETERS in v}
    if not ros_entries:
        return content
    for key, value in ros_entries.items():
        if str(key).rstrip("/").split("/")[-1] == SECTION:
            return value[ROS_PARAMETERS]
    raise ActJepaError(f"{path}: a ROS params file without an '/**/{SECTION}: {ROS_PARAMETERS}:' "
                       f"entry (it has {sorted(map(str, content))}); expected the convert config "
                       "there, see config/recorder.yaml")
