"""Node parameters as data: name, default, description, range, allowed values.

Each node lists its parameters once as ``ParamSpec``s; ``declare`` turns them into ROS parameters
whose descriptors carry the description and range (so ``ros2 param describe`` explains them and
``ros2 param set`` refuses out-of-range values with a reason). A value from a params file that is
out of range or of the wrong type does not crash the process: ``declare`` falls back to the
default and returns the problem, and the node refuses to start work (a lifecycle node fails
``configure`` with that reason) until it is fixed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from actjepa_core.sim.tasks import MT50

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
_ARRAY_TYPES = {float: ParameterType.PARAMETER_DOUBLE_ARRAY,
                str: ParameterType.PARAMETER_STRING_ARRAY,
                int: ParameterType.PARAMETER_INTEGER_ARRAY,
                bool: ParameterType.PARAMETER_BOOL_ARRAY}
_TYPE_HINTS = {ParameterType.PARAMETER_DOUBLE: "a float (write 1.0, not 1)",
               ParameterType.PARAMETER_DOUBLE_ARRAY: "a list of floats (write [1.0], not [1])",
               ParameterType.PARAMETER_INTEGER: "an integer",
               ParameterType.PARAMETER_STRING: "a string",
               ParameterType.PARAMETER_STRING_ARRAY: "a list of strings",
               ParameterType.PARAMETER_BOOL: "true or false"}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. ``items`` gives the element type of a list (needed for empty defaults);
    ``low``/``high`` become the descriptor's range (scalars), ``choices`` are checked by
    ``check_choices`` (ROS descriptors have no enumerations) and listed in the description."""

    name: str
    default: Any
    description: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[str, ...] = ()
    items: type | None = None
    read_only: bool = False

    @property
    def type(self) -> int:
        if isinstance(self.default, (list, tuple)):
            items = self.items or (type(self.default[0]) if self.default else None)
            if items is None:
                raise ValueError(f"parameter {self.name}: empty list default needs items=")
            return _ARRAY_TYPES[items]
        return _TYPES[type(self.default)]

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += " One of: " + ", ".join(repr(c) for c in self.choices) + "."
        descriptor = ParameterDescriptor(name=self.name, type=self.type, description=text,
                                         read_only=self.read_only)
        if self.low is not None or self.high is not None:
            if self.type == ParameterType.PARAMETER_INTEGER:
                descriptor.integer_range = [IntegerRange(
                    from_value=int(self.low), to_value=int(self.high), step=1)]
            elif self.type == ParameterType.PARAMETER_DOUBLE:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.low), to_value=float(self.high), step=0.0)]
            descriptor.additional_constraints = f"range [{self.low}, {self.high}]"
        return descriptor


def declare(node: Node, specs: Sequence[ParamSpec]) -> dict[str, str]:
    """Declare every spec on ``node``; returns {name: problem} for each refused override."""
    problems = {}
    for spec in specs:
        try:
            _declare_one(node, spec, ignore_override=False)
        except InvalidParameterTypeException:
            problems[spec.name] = (f"parameter {spec.name}: wrong type; expected "
                                   f"{_TYPE_HINTS.get(spec.type, 'the declared type')}")
            _declare_one(node, spec, ignore_override=True)
        except (InvalidParameterValueException, ParameterException) as err:
            problems[spec.name] = f"parameter {spec.name}: {_reason(err, spec.name)}"
            _declare_one(node, spec, ignore_override=True)
    current = {s.name: node.get_parameter(s.name).value for s in specs}
    return {**check_choices(current, specs), **problems}


def _declare_one(node: Node, spec: ParamSpec, ignore_override: bool) -> None:
    """rclpy infers a parameter's type from its default, and an empty list reads as a byte
    array: such parameters are declared by type, then given their typed empty default."""
    default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
    if not (isinstance(default, list) and not default):
        node.declare_parameter(spec.name, default, spec.descriptor(),
                               ignore_override=ignore_override)
        return
    kind = Parameter.Type(spec.type)
    node.declare_parameter(spec.name, kind, spec.descriptor(), ignore_override=ignore_override)
    if node.get_parameter_type(spec.name) == Parameter.Type.NOT_SET or ignore_override:
        node.set_parameters([Parameter(spec.name, kind, [])])


def _reason(err: Exception, name: str) -> str:
    """rclpy's message minus its boilerplate ("Invalid parameter value (...) ... Reason: ")."""
    text = str(err)
    marker = "Reason: "
    text = text.split(marker, 1)[1] if marker in text else text
    return text.removesuffix(f": {name}")


def values(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Current values of the specs' parameters, lists as Python lists."""
    out = {}
    for spec in specs:
        value = node.get_parameter(spec.name).value
        # array parameters come back as lists or array.array depending on the rclpy version
        out[spec.name] = value if isinstance(value, (str, bool, int, float)) else list(value)
    return out


def check_choices(current: dict[str, Any], specs: Sequence[ParamSpec]) -> dict[str, str]:
    """{name: problem} for each parameter whose value is not among its spec's ``choices``."""
    problems = {}
    for spec in specs:
        if spec.choices and spec.name in current and current[spec.name] not in spec.choices:
            problems[spec.name] = (f"parameter {spec.name} is {current[spec.name]!r}; expected "
                                   f"one of {list(spec.choices)}")
    return problems


# ---- the nodes' parameters ------------------------------------------------------------------
# every Meta-World v3 task: actjepa_core.sim.experts.TASKS by name (tasks.py, which does not
# load MuJoCo into every node; test_sim_node checks the two agree)
SIM_TASKS = tuple(sorted(MT50))
SIM_TICK_S = 0.0125  # simulated time per Meta-World v3 step: frame_skip 5 x MuJoCo timestep 2.5 ms
MAX_EPISODE = 1_000_000  # SimArm's seed scheme stays unambiguous far beyond this
MAX_IMAGE_SIZE = 1024
# actjepa_core.sim.arm.CAMERA, named here without loading MuJoCo (test_sim_node checks they agree)
SIM_DEFAULT_CAMERA = "corner4"

SIM_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("task", "reach-v3", "Meta-World v3 task to simulate.", choices=SIM_TASKS),
    ParamSpec("seed", 0, "Run seed: with the episode index it fixes the start configuration "
              "(object and goal positions), so runs are reproducible.", 0, MAX_EPISODE),
    ParamSpec("episode", 0, "Episode index to start with; each ~/reset moves to the next one.",
              0, MAX_EPISODE),
    ParamSpec("image_size", 0, "Camera image side in pixels (square, rgb8) on image_topic; 0 = no "
              "camera (state only, ~30x faster per step).", 0, MAX_IMAGE_SIZE),
    ParamSpec("mode", "lockstep", "lockstep: one step per received action (deterministic "
              "evaluation); realtime: step at rate_hz with the latest action.",
              choices=("lockstep", "realtime")),
    ParamSpec("rate_hz", 1.0 / SIM_TICK_S, "Ticks per second in realtime mode and in expert mode. "
              "80 Hz is real time (each step simulates 12.5 ms).", 0.1, 1000.0),
    ParamSpec("action_timeout_s", 0.5, "realtime: hold still (zero action) once no action has "
              "arrived for this long.", 0.001, 3600.0),
    ParamSpec("lockstep_republish_s", 1.0, "lockstep: publish the current observation again after "
              "this long without an action (a late-starting policy still gets going); 0 = never.",
              0.0, 3600.0),
    ParamSpec("expert", False, "Drive the arm with the scripted expert at rate_hz and publish "
              "each applied action on action_topic (record demonstrations over ROS); it starts "
              "once the action topic has a subscriber; incoming actions are ignored."),
    ParamSpec("max_steps", 0, "Steps per episode; 0 = the task's own limit (500).", 0, 100_000),
    ParamSpec("end_on_success", False, "End the episode steps_after_success steps after the first "
              "success instead of at max_steps."),
    ParamSpec("steps_after_success", 0, "With end_on_success: steps still taken after the first "
              "success (demonstrations that show holding still).", 0, 100_000),
    ParamSpec("auto_reset", False, "Start the next episode by itself when one ends (instead of "
              "waiting for ~/reset)."),
    ParamSpec("publish_clock", True, "Publish /clock with simulated time and stamp observations "
              "with it; run the other nodes with use_sim_time:=true."),
    ParamSpec("action_topic", "~/action", "Actions in (std_msgs/Float64MultiArray, 4 values: "
              "hand dx, dy, dz in [-1, 1], gripper effort); in expert mode, actions out."),
    ParamSpec("twist_topic", "~/twist", "Hand velocity in (geometry_msgs/TwistStamped, MoveIt "
              "Servo's input): action dx, dy, dz = twist_scale x twist.linear, clipped to "
              "Meta-World's [-1, 1]; the angular part must be 0 (the hand does not turn). "
              "lockstep: one step once a twist and a gripper command are both in, either first; "
              "realtime: the latest of each. '' = not subscribed."),
    ParamSpec("gripper_topic", "~/gripper", "Gripper command in (std_msgs/Float64): Meta-World's "
              "gripper effort, -1 open to +1 closed, clipped to [-1, 1]; pairs with twist_topic. "
              "'' = not subscribed."),
    ParamSpec("twist_frame_id", "base", "Frame twists must be given in: the arm base "
              "(Meta-World's world axes: x across the table, y away from the robot, z up); a "
              "twist stamped in another frame is refused, an empty header.frame_id means this "
              "frame."),
    ParamSpec("twist_scale", 1.0, "Action units per unit of twist.linear: 1.0 reads the twist "
              "as unitless in [-1, 1] (MoveIt Servo's command_in_type 'unitless'; 1 = the "
              "largest step, 1 cm per 12.5 ms tick); 1.25 reads it in m/s (a full action moves "
              "the hand at 0.8 m/s).", 1e-6, 1e6),
    ParamSpec("joint_states_topic", "joint_states", "sensor_msgs/JointState of the arm's 7 hinges "
              "and 2 finger slides."),
    ParamSpec("image_topic", "camera/image_raw", "sensor_msgs/Image rgb8 from the fixed camera."),
    ParamSpec("cameras", [SIM_DEFAULT_CAMERA], "Meta-World cameras rendered at image_size (none "
              "with image_size 0), each on its own sensor_msgs/Image topic: 'corner4' (the scene, "
              "the default) on image_topic with frame camera_frame_id; any other camera C on "
              "image_topic with C inserted before its last name (camera/image_raw -> "
              "camera/C/image_raw), frame <camera_frame_id>_C. Cameras: corner, corner2, "
              "corner3, corner4, topview, behindGripper (on the wrist). The frames match "
              "`actjepa collect --obs` keys image and image_C.", items=str),
    ParamSpec("state_topic", "~/state", "std_msgs/Float64MultiArray: the 39-d task observation "
              "(hand, gripper, objects, previous frame, goal)."),
    ParamSpec("success_topic", "~/success", "std_msgs/Bool: whether the task is solved at this "
              "step."),
    ParamSpec("clock_topic", "/clock", "rosgraph_msgs/Clock, with publish_clock."),
    ParamSpec("camera_frame_id", "camera", "header.frame_id of the images."),
    ParamSpec("base_frame_id", "base", "header.frame_id of joint states."),
)

MODES = ("lockstep", "realtime")
OUTPUT_TYPES = ("float64_multi_array", "twist_stamped", "joint_trajectory")
POLICY_TYPES = ("", "bc", "nn", "mpc", "e2e", "lerobot")
IMAGE_TRANSPORTS = ("raw", "compressed")
INPUT_QOS = ("sensor_data", "reliable")
RAMP_FROM = ("zero", "joint_positions", "none")
MAX_RATE_HZ = 1000.0
MAX_THREADS = 1024
MAX_TIMEOUT_S = 3600.0
CHECKPOINT_DIRS = ("models", "runs", "policies")  # where the README puts policy files
# policy_type lerobot: what `actjepa export lerobot` names our camera + joint-state observations
LEROBOT_FEATURES = ("observation.state", "observation.images.image")
LEROBOT_KEYS = ("joints", "image")

POLICY_PARAMS: tuple[ParamSpec, ...] = (
    # -- what runs --
    ParamSpec("autostart", False, "Configure and activate on start (no lifecycle manager "
              "needed); false leaves the node unconfigured for a manager to drive."),
    ParamSpec("checkpoint", "", "Policy file (.pt) from `actjepa train-policy`; with "
              "policy_type 'lerobot', a LeRobot pretrained policy folder (config.json, "
              "model.safetensors and its pre/post-processors, as lerobot-train writes them). "
              "Loaded at configure."),
    ParamSpec("policy_type", "", "Required policy type in the file; '' accepts any; 'lerobot' "
              "serves a LeRobot policy folder (needs the lerobot package; lerobot_features and "
              "lerobot_keys say which observation key fills which of its input features).",
              choices=POLICY_TYPES),
    ParamSpec("lerobot_features", LEROBOT_FEATURES, "policy_type lerobot: the LeRobot input "
              "features (observation.state, observation.images.<camera>, ...), each filled by "
              "the observation key at the same position in lerobot_keys (ROS parameters cannot "
              "be lists of structs: two parallel lists). Every input feature of the policy must "
              "be listed; cameras are resized to its image size (image_resize).", items=str),
    ParamSpec("lerobot_keys", LEROBOT_KEYS, "policy_type lerobot: the observation key that "
              "fills each entry of lerobot_features, as the *_key parameters name them (e.g. "
              "joints from joint_states_key, image from image_key).", items=str),
    ParamSpec("device", "cpu", "Torch device for the policy: cpu, cuda, cuda:N or auto."),
    ParamSpec("torch_threads", 1, "CPU threads torch may use for one action; 1 keeps latency "
              "steady beside drivers and other nodes (2 threads on a busy 2-core machine: p99 "
              "5 -> 80 ms); 0 = torch's default (every core).", 0, MAX_THREADS),
    ParamSpec("start_enabled", True, "Whether ~/enable starts true: false waits for an explicit "
              "~/enable before the first action."),
    ParamSpec("require_enable", False, "For hardware: hold every command until an explicit "
              "~/enable true, at start and again after every activate (a lifecycle transition "
              "alone never starts the arm moving); overrides start_enabled. Read-only: set it in "
              "the params file or on the command line.", read_only=True),
    ParamSpec("checkpoint_dirs", CHECKPOINT_DIRS, "Folders a checkpoint must lie in "
              "(after resolving symlinks; relative folders from the working directory); the "
              "package's own models/ folder and the checkpoint the node was started with are "
              "always accepted. A checkpoint set later (ros2 param set, by any peer on the "
              "domain) outside them is refused. Read-only: set it in the params file or on the "
              "command line.", items=str, read_only=True),
    # -- when it acts --
    ParamSpec("mode", "realtime", "lockstep: one action per new observation (every input "
              "updated since the last action), as soon as it arrives; realtime: act at "
              "control_rate_hz on the latest observation.", choices=MODES),
    ParamSpec("control_rate_hz", 10.0, "realtime: actions per second.", 0.1, MAX_RATE_HZ),
    ParamSpec("stale_timeout_s", 0.5, "An input older than this (since arrival, or by its header "
              "stamp) blocks commanding until fresh data arrives.", 0.001, MAX_TIMEOUT_S),
    ParamSpec("check_header_stamps", True, "Also judge staleness by header stamps (Image, "
              "JointState) against this node's clock; turn off when publisher clocks are not "
              "synchronised with this machine."),
    ParamSpec("input_qos", "sensor_data", "sensor_data: best effort, depth 1 (drop rather than "
              "queue); reliable: reliable, depth 1 (lock-step evaluation).", choices=INPUT_QOS),
    # -- inputs: which topic fills which observation key --
    ParamSpec("joint_states_topic", "joint_states", "sensor_msgs/JointState input."),
    ParamSpec("joint_states_key", "", "Observation key the joint states fill ('' = not used); "
              "the values come first when state_topic fills the same key."),
    ParamSpec("joint_names", [], "Joints taken from JointState, in this order (reordered by name; "
              "a message missing one is refused).", items=str),
    ParamSpec("joint_state_fields", ["position"], "JointState fields concatenated per joint "
              "list: position, velocity, effort."),
    ParamSpec("state_topic", "sim_node/state", "std_msgs/Float64MultiArray vector input (e.g. "
              "the simulator's 39-d task observation)."),
    ParamSpec("state_key", "state", "Observation key the vector fills ('' = not used)."),
    ParamSpec("image_topic", "camera/image_raw", "Camera base topic (image_transport naming): "
              "sensor_msgs/Image on it with image_transport 'raw'; with 'compressed', "
              "CompressedImage on <image_topic>/compressed."),
    ParamSpec("image_key", "image", "Observation key the image fills ('' = not used)."),
    ParamSpec("image_transport", "raw", "raw: Image (rgb8, bgr8, rgba8, bgra8, mono8; more via "
              "cv_bridge) on image_topic; compressed: CompressedImage (jpeg, png) on "
              "<image_topic>/compressed, as image_transport's compressed plugin publishes it.",
              choices=IMAGE_TRANSPORTS),
    ParamSpec("image_keys", [], "Several cameras: the observation key each fills (e.g. [scene, "
              "wrist]), in the order of image_topics and image_transports (ROS parameters cannot "
              "be lists of structs: three parallel lists). [] = the one camera of image_key, "
              "image_topic and image_transport; when set, those three are not used. Every "
              "camera's newest frame must be fresh (stale_timeout_s) for an action.", items=str),
    ParamSpec("image_topics", [], "Several cameras: the base topic of each camera in image_keys "
              "(image_transport naming, as image_topic).", items=str),
    ParamSpec("image_transports", [], "Several cameras: 'raw' or 'compressed' for each camera in "
              "image_keys (as image_transport); [] = all raw, one value = every camera.",
              items=str),
    ParamSpec("image_resize", True, "Resize images to the model's size; false refuses images of "
              "another size."),
    ParamSpec("goal_topic", "", "MPC: Float64MultiArray goal for state_key ('' = none)."),
    ParamSpec("goal_image_topic", "", "MPC: Image goal for image_key ('' = none)."),
    ParamSpec("subgoals_topic", "", "MPC: Float64MultiArray of M subgoals for state_key, visited "
              "in order (layout (M, K), or M*K values flat; the last is the final goal; "
              "'' = none)."),
    ParamSpec("plan_topic", "~/plan", "MPC: Float64MultiArray [active subgoal index, planned "
              "cost] after every action ('' = none)."),
    # -- output --
    ParamSpec("output_type", "float64_multi_array", "float64_multi_array: a ros2_control "
              "forward command controller; twist_stamped: MoveIt Servo; joint_trajectory: a "
              "joint trajectory controller.", choices=OUTPUT_TYPES),
    ParamSpec("output_topic", "sim_node/action", "Where actions are published."),
    ParamSpec("output_frame_id", "", "header.frame_id of twist_stamped output (e.g. the "
              "planning frame MoveIt Servo expects)."),
    ParamSpec("twist_fields", [], "twist_stamped: the twist field of each action dimension "
              "(linear.x ... angular.z, '' = not sent); [] = linear xyz then angular xyz.",
              items=str),
    ParamSpec("twist_scale", 1.0, "twist_stamped: each twist field = twist_scale x its action "
              "value, after the safety filter (m/s or rad/s per action unit; 1.0 for MoveIt "
              "Servo's command_in_type 'unitless' and for sim_node's default twist_scale).",
              1e-6, 1e6),
    ParamSpec("gripper_topic", "", "twist_stamped: std_msgs/Float64 topic the last action "
              "dimension goes to, as is after the safety filter (a gripper command, e.g. "
              "sim_node's ~/gripper); twist_fields then default to linear xyz for the others. "
              "'' = no gripper output."),
    ParamSpec("trajectory_joint_names", [], "joint_trajectory: joint names, one per action "
              "dimension; [] = joint_names.", items=str),
    ParamSpec("trajectory_time_s", 0.0, "joint_trajectory: time_from_start of the point; 0 = one "
              "control period.", 0.0, MAX_TIMEOUT_S),
    # -- safety --
    ParamSpec("action_min", [], "Lower action limit per dimension (or one value for all); [] = "
              "the checkpoint's action bounds. Applied live; while active only a tighter value is "
              "accepted.", items=float),
    ParamSpec("action_max", [], "Upper action limit per dimension (or one value for all); [] = "
              "the checkpoint's action bounds. Applied live; while active only a tighter value is "
              "accepted.", items=float),
    ParamSpec("max_delta", [], "Largest change of each action dimension per published action "
              "(or one value for all); [] = unbounded. Applied live; while active only a smaller "
              "value is accepted.", items=float),
    ParamSpec("ramp_from", "zero", "What max_delta bounds the first action after "
              "activate/enable/reset against: zero (velocity or delta commands: start from "
              "rest), joint_positions (absolute position commands: the current positions of "
              "joint_names, one per action dimension, from the joint states input), none (only "
              "the limits).", choices=RAMP_FROM),
    # -- reporting --
    ParamSpec("latency_topic", "~/latency", "std_msgs/Float64: ms from the arrival of the "
              "observation to the publication of its action."),
    ParamSpec("diagnostics_period_s", 1.0, "Period of the diagnostic_msgs/DiagnosticArray on "
              "/diagnostics.", 0.01, MAX_TIMEOUT_S),
    ParamSpec("warn_throttle_s", 5.0, "Each kind of problem is logged at most once per this "
              "period (it keeps being refused in between).", 0.01, MAX_TIMEOUT_S),
)
# ---- recorder_node -----------------------------------------------------------------------
# rosbag2 storages the recorder writes (actjepa_core.bags.writer.STORAGES; test_recorder_node
# checks the two agree: importing the writer here would load rosbags for every node)
BAG_STORAGES = ("mcap", "sqlite3")
RELIABILITIES = ("auto", "reliable", "best_effort")
MAX_DEPTH = 100_000
MAX_PERIOD_S = 3600.0
SIM_TOPICS = ["joint_states", "sim_node/state", "sim_node/action", "sim_node/success"]

RECORDER_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("topics", SIM_TOPICS, "Topics to record (relative names resolve in the node's "
              "namespace)."),
    ParamSpec("types", [], "Message type of each topic, in the order of topics (e.g. "
              "sensor_msgs/msg/JointState); [] = look each up in the ROS graph once a publisher "
              "appears.", items=str),
    ParamSpec("output_dir", "bags", "Folder the bags are written into (created if missing)."),
    ParamSpec("bag_prefix", "episode", "Bag names: <prefix>_<date>_<time>_<episode number>."),
    ParamSpec("storage", "mcap", "rosbag2 storage: mcap (Jazzy's default) or sqlite3.",
              choices=BAG_STORAGES),
    ParamSpec("autostart", False, "Start recording the first episode at startup."),
    ParamSpec("marker_topic", "", "std_msgs/Bool: true starts an episode, false stops it "
              "('' = none)."),
    ParamSpec("reliability", "auto", "Subscriptions: auto = best effort for topics whose "
              "publishers offer only best effort (cameras with sensor-data QoS), else reliable "
              "(topics not yet published: reliable).", choices=RELIABILITIES),
    ParamSpec("queue_depth", 100, "Messages each subscription queues while the node writes.",
              1, MAX_DEPTH),
    ParamSpec("discovery_period_s", 0.5, "How often topics of unknown type are looked up in the "
              "ROS graph.", 0.01, MAX_PERIOD_S),
    ParamSpec("flush_period_s", 1.0, "What was received is on disk, readable after a crash "
              "(SIGKILL, OOM, power cut), within this many seconds (an MCAP chunk closed, or a "
              "sqlite3 commit).", 0.01, MAX_PERIOD_S),
    ParamSpec("fsync", True, "Each flush also waits for the disk (survives a power cut, not "
              "only a killed process)."),
    ParamSpec("episodes_file", "", "Episodes file (HDF5) each closed bag's episodes are "
              "appended to, atomically, by a separate process ('' = only bags)."),
    ParamSpec("convert_config", "", "YAML with the `actjepa convert` config (its "
              "actjepa_convert entry, or a plain file); '' = the --params-file(s) this node was "
              "started with."),
    ParamSpec("convert_shutdown_timeout_s", 10.0, "On SIGINT/SIGTERM, how long conversions "
              "still queued may take before they are left to ~/convert (a second signal: at "
              "once).", 0.0, MAX_PERIOD_S),
)

LIVE_POLICY_PARAMS = ("action_min", "action_max", "max_delta")  # while active: only tighter
