"""The deployed policy: latest observation -> frozen encoder -> policy -> safety filter -> action.

A managed (lifecycle) node, so a launch system or operator decides when the arm may move:
configure loads the checkpoint and warms it up (a bad file fails the transition, not the
process), activate starts commanding, deactivate stops, cleanup forgets the policy. With
``autostart`` it walks itself to active, for use without a lifecycle manager.

Inputs map ROS topics onto the checkpoint's observation keys (``*_key`` parameters): JointState
(reordered by ``joint_names``), a Float64MultiArray vector and one Image/CompressedImage per
camera (``image_key``, or several with ``image_keys``/``image_topics``/``image_transports``); an
action needs every camera's newest frame fresh, as every other input. Only the
newest message of each input is kept (depth-1 queues); an input that is malformed, non-finite,
of the wrong size or stale blocks commanding (one throttled log line per input says why) until
good data returns. Every action passes ``safety.ActionFilter`` (limits, per-tick change, finite),
so nothing non-finite or out of limits is ever published. In realtime mode, commanding that
resumes after an input went stale (a driver or simulator restarted, a camera that stalled) starts
again as from activation: the policy's per-episode state (action chunks, warm starts) and the
ramp belong to observations that are gone, so both are reset and the first command ramps from
rest. (In lockstep mode the simulator paces the loop and a pause is no fault: a new episode is
started with ``~/reset``, as the closed-loop runner does.)

MPC goals (``goal_topic``, ``goal_image_topic``, ``subgoals_topic``) are checked like the
observations: a message of the wrong size is refused by its length before conversion (at most
MAX_SUBGOALS subgoals), values must be finite in float32, and a refused goal leaves the previous
one in force (or, before the first, no goal and no action).

``mode: lockstep`` answers each new observation (all inputs updated) with one action as soon as
it arrives (deterministic rollouts against sim_node); ``mode: realtime`` acts at
``control_rate_hz`` on the latest observation. ``~/enable`` (SetBool) silences or resumes
output, ``~/reset`` (Trigger) resets the policy's per-episode state; ``~/latency`` and
``/diagnostics`` report how it is doing. ``output_type: twist_stamped`` with ``gripper_topic``
publishes the last action dimension on its own (std_msgs/Float64, the gripper) beside the twist
of the others, as MoveIt Servo and a gripper controller take them.

Any peer on the ROS domain can call these services and set parameters (DDS authenticates no one
without SROS2; docs/SECURITY.md), so the node limits what that achieves: while active the safety
limits only tighten (a wider box or step moves the arm faster than whoever started it agreed to;
widening needs a deactivate), ``checkpoint`` must resolve inside ``checkpoint_dirs`` unless it is
the file the node was started with, ``require_enable`` holds every command until an explicit
``~/enable true`` after each activate, and every accepted change of limits, checkpoint, lifecycle
state or enable is a warning and a count in /diagnostics.
"""
from __future__ import annotations

import ctypes
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from actjepa_core.errors import ActJepaError
from actjepa_core.policies import load_policy
from actjepa_core.units import MS_PER_S, NS_PER_S
from actjepa_ros import conversions, observations, params, safety
from actjepa_ros.params import LIVE_POLICY_PARAMS, POLICY_PARAMS
from actjepa_ros.share import share_dir
from actjepa_ros.spin import spin_node

NODE_NAME = "policy_node"
OUTPUT_DEPTH = 1  # a command that could not be delivered is not worth delivering late
LATENCY_WINDOW = 1000  # latencies kept for the diagnostics' percentiles
DIAGNOSTICS_TOPIC = "/diagnostics"
MAX_JOINTS = 1_000  # a JointState with more entries than this is refused before it is read
MAX_IMAGE_BYTES = 64 * 2**20  # image_resize: bigger frames are refused before decoding
MAX_PIXEL_BYTES = 16  # image_resize false: a frame of the model's size has at most this per pixel
MAX_SUBGOALS = 256  # subgoals are waypoints; each is encoded while the node waits (~0.1-1 ms)
RENEW_AFTER_S = 1.0  # an input quiet of oversized messages this long gets a fresh subscription
RENEW_MIN_BYTES = 2**20  # ... if one of them was at least this big (DDS kept a buffer that big)
RENEW_CHECK_S = 0.25
STAMP_HINT = ("(if the publisher runs on simulated time, set use_sim_time:=true here; if clocks "
              "are not synchronised, check_header_stamps:=false)")


class Oversized(safety.SafetyError):
    """A message refused by its length alone, before any conversion; ``nbytes``: about how
    big it was."""

    def __init__(self, message: str, nbytes: int) -> None:
        super().__init__(message)
        self.nbytes = nbytes


def release_free_memory() -> None:
    """Give memory already freed back to the system: glibc keeps large freed blocks (such as
    the buffers of a dropped subscription) for reuse, so without this RSS stays at its peak."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def describe(err: Exception) -> str:
    """An error as one log line: our own errors say what was wrong; others also say their type
    (a library's multi-line text is joined onto one line)."""
    text = str(err) if isinstance(err, ActJepaError) else f"{type(err).__name__}: {err}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class PolicyNode(LifecycleNode):
    """Lifecycle node wrapping one ``actjepa_core`` policy (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.param_problems = params.declare(self, POLICY_PARAMS)
        self.p: dict[str, Any] = params.values(self, POLICY_PARAMS)
        self.policy = None
        self.inputs: dict[str, observations.Input] = {}
        self.freshness: safety.Freshness | None = None
        self.filter: safety.ActionFilter | None = None
        self.build_output: Callable[[np.ndarray], Any] | None = None
        self.ramp_positions: slice | None = None
        self.goal_parts: dict[str, np.ndarray] = {}
        self.owned_subscriptions: list[Any] = []  # made at configure, destroyed at cleanup
        self.owned_timers: list[Any] = []
        self.input_subscriptions: dict[str, tuple[Any, tuple]] = {}  # topic -> (sub, its args)
        self.renew_due: dict[str, float] = {}  # topic -> when to renew its subscription
        self.pub_action = self.pub_latency = self.pub_plan = self.pub_gripper = None
        self.active = False
        self.enabled = bool(self.p["start_enabled"]) and not self.p["require_enable"]
        # the file named at start is the operator's choice; any other must be in checkpoint_dirs
        self.started_checkpoint = (Path(self.p["checkpoint"]).expanduser().resolve()
                                   if self.p["checkpoint"] else None)
        self.checkpoint_dirs = safety.resolve_folders(self.p["checkpoint_dirs"],
                                                      [share_dir() / "models"])
        self.changes: Counter[str] = Counter()  # accepted changes by kind, for /diagnostics
        self.lifecycle_label = "unconfigured"
        self.failure: str | None = None  # why the last configure failed
        self.blocked: str | None = None  # why the last control attempt published nothing
        self.interrupted: str | None = None  # why the next command starts again from rest
        self.published = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.complaint_loggers: dict[str, Any] = {}
        self.create_service(SetBool, "~/enable", self.on_enable)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.create_timer(self.p["diagnostics_period_s"], self.publish_diagnostics)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        for problem in self.param_problems.values():
            self.get_logger().error(f"{problem} (configure will fail until it is fixed)")
        self.get_logger().info(self.startup_line())

    def startup_line(self) -> str:
        """What guards commanding, said once at start (an integrator reads it in the log)."""
        hold = ("require_enable: every command held until an explicit ~/enable true (also after "
                "each activate)" if self.p["require_enable"]
                else f"commanding once active{'' if self.enabled else ' and enabled'}")
        return (f"started: {hold}; safety limits only tighten while active; checkpoints from "
                f"[{', '.join(str(f) for f in self.checkpoint_dirs)}]")

    def audit(self, kind: str, text: str) -> None:
        """An accepted change of what the arm may do: a warning (kept with the robot's logs)
        and a count in /diagnostics, whoever made it."""
        self.changes[kind] += 1
        self.get_logger().warning(text)

    # ---- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.setup()
        except Exception as err:  # noqa: BLE001 - any bad file/setting must fail the transition
            self.teardown()
            reason = self.failure = describe(err)
            self.get_logger().error(f"configure failed: {reason}")
            return TransitionCallbackReturn.FAILURE
        self.failure, self.lifecycle_label = None, "inactive"
        self.audit("lifecycle", f"configured: inactive ({self.p['checkpoint']})")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result == TransitionCallbackReturn.SUCCESS:
            self.restart()
            if self.p["require_enable"]:
                self.enabled = False  # each activation waits for its own explicit ~/enable
            self.active, self.lifecycle_label = True, "active"
            state_text = ("commanding" if self.enabled else "disabled (require_enable: waiting "
                          "for ~/enable true)" if self.p["require_enable"] else "disabled")
            self.audit("lifecycle", f"active: {state_text} on {self.p['output_topic']} "
                                    f"({self.p['mode']})")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active, self.lifecycle_label = False, "inactive"
        self.audit("lifecycle", "inactive: not commanding")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        self.lifecycle_label = "unconfigured"
        self.audit("lifecycle", "cleaned up: unconfigured, no policy loaded")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.teardown()
        self.lifecycle_label = "finalized"
        self.audit("lifecycle", "shut down: finalized")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.teardown()
        self.lifecycle_label = "unconfigured"
        self.audit("lifecycle", "error: not commanding, unconfigured")
        return TransitionCallbackReturn.SUCCESS

    # ---- configure ----------------------------------------------------------------------------
    def setup(self) -> None:
        """Check parameters, load and warm the policy, make subscriptions and publishers."""
        self.p = params.values(self, POLICY_PARAMS)
        problems = list(self.param_problems.values())
        if problems:
            raise ActJepaError("; ".join(problems))
        p = self.p
        outside = safety.checkpoint_problem(p["checkpoint"], self.checkpoint_dirs,
                                            self.started_checkpoint)
        if outside:
            raise ActJepaError(outside)
        path = Path(p["checkpoint"]).expanduser().resolve()  # the file checked is the file loaded
        if p["torch_threads"]:
            torch.set_num_threads(p["torch_threads"])
        started = time.monotonic()
        self.policy = self.load(p, path)
        spec = self.policy.obs_spec
        self.inputs = observations.plan_inputs(p, spec, self.get_logger().info)
        warm_ms = self.warm_up(spec)
        dim = self.policy.action_dim
        self.filter = safety.ActionFilter(self.limits(p, dim),
                                          np.zeros(dim) if p["ramp_from"] == "zero" else None)
        self.ramp_positions = observations.ramp_positions(p, self.inputs, dim)
        self.build_output, msg_type = self.output_builder(dim)
        self.pub_action = self.create_lifecycle_publisher(
            msg_type, p["output_topic"],
            QoSProfile(depth=OUTPUT_DEPTH, reliability=ReliabilityPolicy.RELIABLE))
        self.pub_gripper = (self.create_lifecycle_publisher(
            Float64, p["gripper_topic"],
            QoSProfile(depth=OUTPUT_DEPTH, reliability=ReliabilityPolicy.RELIABLE))
            if p["gripper_topic"] else None)
        self.pub_latency = self.create_lifecycle_publisher(Float64, p["latency_topic"], 10)
        self.pub_plan = (self.create_lifecycle_publisher(Float64MultiArray, p["plan_topic"], 10)
                         if self.policy.needs_goal and p["plan_topic"] else None)
        self.freshness = safety.Freshness(list(self.inputs), p["stale_timeout_s"])
        self.complaint_loggers = {}  # throttle settings may have changed: fresh contexts
        self.subscribe(spec)
        if p["mode"] == "realtime":
            self.owned_timers.append(self.create_timer(1.0 / p["control_rate_hz"], self.control))
        self.owned_timers.append(self.create_timer(RENEW_CHECK_S, self.renew_subscriptions))
        self.get_logger().info(
            f"loaded {self.policy.policy_type} policy {str(path)!r} on {p['device']} in "
            f"{time.monotonic() - started:.1f} s (warm-up act {warm_ms:.1f} ms); inputs "
            + ", ".join(f"{i.topic} -> '{i.key}'" for i in self.inputs.values())
            + f"; output {p['output_type']} on {p['output_topic']}"
            + (f", gripper on {p['gripper_topic']}" if p["gripper_topic"] else ""))

    @staticmethod
    def load(p: dict[str, Any], path: Path) -> Any:
        """The policy named by ``checkpoint``: a policy file, or (policy_type lerobot) a LeRobot
        pretrained policy folder with its features table."""
        if p["policy_type"] == "lerobot":
            if not p["checkpoint"] or not path.is_dir():
                raise ActJepaError(f"checkpoint {p['checkpoint']!r} is not a folder; expected a "
                                   "LeRobot pretrained policy folder (parameter checkpoint, "
                                   "policy_type lerobot)")
            from actjepa_core.policies.lerobot import load_lerobot_policy

            return load_lerobot_policy(path, observations.lerobot_features(p), p["device"])
        if not p["checkpoint"] or not path.is_file():
            raise ActJepaError(f"checkpoint {p['checkpoint']!r} does not exist; expected a policy "
                               "file from `actjepa train-policy` (parameter checkpoint)")
        safety.check_archive(path)
        return load_policy(path, device=p["device"], policy_type=p["policy_type"] or None)

    def warm_up(self, spec: dict[str, dict]) -> float:
        """One act() on a zero observation: the first real action is not slowed by lazy init."""
        dummy = {k: np.zeros(v["shape"], dtype=np.dtype(v["dtype"])) for k, v in spec.items()}
        started = time.perf_counter()
        if self.policy.needs_goal:  # MPC: no goal yet, warm the encoder only
            self.policy.encode(dummy)
        else:
            self.policy.act(dummy)
        self.policy.reset()
        return (time.perf_counter() - started) * MS_PER_S

    def limits(self, p: dict[str, Any], dim: int) -> safety.ActionLimits:
        """Limits from parameters, defaulting to the checkpoint's action bounds."""
        bounds = self.policy.action_bounds
        low, high = p["action_min"] or bounds[0], p["action_max"] or bounds[1]
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ActJepaError("the policy records no action range (its data statistics); set "
                               "action_min and action_max")
        return safety.ActionLimits.build(dim, low, high, p["max_delta"] or np.inf)

    def output_builder(self, dim: int) -> tuple[Callable[[np.ndarray], Any], type]:
        p = self.p
        return conversions.action_message_factory(
            p["output_type"], dim, stamp=lambda: self.get_clock().now().to_msg(),
            twist_fields=self.twist_fields(dim), frame_id=p["output_frame_id"],
            joint_names=p["trajectory_joint_names"] or p["joint_names"],
            time_from_start_s=p["trajectory_time_s"] or 1.0 / p["control_rate_hz"],
            twist_scale=p["twist_scale"])

    def twist_fields(self, dim: int) -> list[str]:
        p = self.p
        return conversions.gripper_twist_fields(p["output_type"], p["gripper_topic"],
                                                p["twist_fields"], dim)

    def subscribe(self, spec: dict[str, dict]) -> None:
        p = self.p
        reliability = (ReliabilityPolicy.RELIABLE if p["input_qos"] == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=reliability,
                         durability=DurabilityPolicy.VOLATILE)
        subs = []
        if "joint_states" in self.inputs:
            names, fields = list(p["joint_names"]), list(p["joint_state_fields"])
            subs.append((JointState, p["joint_states_topic"], lambda m: self.receive(
                "joint_states", lambda: conversions.joint_state_vector(m, names, fields),
                m.header.stamp, max(len(m.name), len(m.position), len(m.velocity),
                                    len(m.effort)))))
        if "state" in self.inputs:
            subs.append((Float64MultiArray, p["state_topic"], lambda m: self.receive(
                "state", lambda: conversions.multi_array_vector(m), length=len(m.data))))
        subs += [self.camera_subscription(inp, spec[inp.key]["shape"])
                 for inp in self.inputs.values() if inp.transport is not None]
        if self.policy.needs_goal:
            subs += self.goal_subscriptions(spec)
        for msg_type, topic, callback in subs:
            subscription = self.create_subscription(msg_type, topic, callback, qos)
            self.owned_subscriptions.append(subscription)
            self.input_subscriptions[topic] = (subscription, (msg_type, topic, callback, qos))

    def camera_subscription(self, inp: observations.Input, shape: Sequence[int]
                            ) -> tuple[type, str, Callable]:
        """One camera: Image or CompressedImage by its transport, decoded to its key's shape."""
        image_type = CompressedImage if inp.transport == "compressed" else Image
        return (image_type, inp.topic, lambda m: self.receive(
            inp.name, lambda: self.decode_image(m, shape), m.header.stamp, len(m.data)))

    def goal_subscriptions(self, spec: dict[str, dict]) -> list[tuple[type, str, Callable]]:
        """MPC goal inputs; each message is checked by its length before any conversion."""
        p, subs = self.p, []
        state_key, image_key = p["state_key"], p["image_key"]
        if p["goal_topic"] and state_key in spec:
            state_shape = tuple(spec[state_key]["shape"])
            size = int(np.prod(state_shape))
            subs.append((Float64MultiArray, p["goal_topic"], lambda m: self.on_goal(
                p["goal_topic"], state_key, lambda: self.check_vector_length(
                    len(m.data), size, f"goal '{state_key}'"),
                lambda: observations.goal_vector(conversions.multi_array_vector(m),
                                                 size).reshape(state_shape))))
        if p["subgoals_topic"] and set(spec) == {state_key}:
            subs.append((Float64MultiArray, p["subgoals_topic"], self.on_subgoals))
        if p["goal_image_topic"] and image_key in spec:
            image_shape = spec[image_key]["shape"]
            subs.append((Image, p["goal_image_topic"], lambda m: self.on_goal(
                p["goal_image_topic"], image_key,
                lambda: self.check_image_length(len(m.data), image_shape, "goal image"),
                lambda: self.decode_image(m, image_shape))))
        return subs

    def decode_image(self, msg: Image | CompressedImage, shape: Sequence[int]) -> np.ndarray:
        if isinstance(msg, CompressedImage):
            self.check_declared_size(bytes(msg.data), shape)
        rgb = (conversions.compressed_to_rgb(msg) if isinstance(msg, CompressedImage)
               else conversions.image_to_rgb(msg))
        return conversions.fit_image(rgb, shape, self.p["image_resize"])

    def teardown(self) -> None:
        for timer in self.owned_timers:
            self.destroy_timer(timer)
        for subscription in self.owned_subscriptions:
            self.destroy_subscription(subscription)
        for publisher in (self.pub_action, self.pub_latency, self.pub_plan, self.pub_gripper):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self.owned_timers, self.owned_subscriptions = [], []
        self.input_subscriptions, self.renew_due = {}, {}
        self.pub_action = self.pub_latency = self.pub_plan = self.pub_gripper = None
        self.policy = self.filter = self.freshness = self.build_output = None
        self.ramp_positions = None
        self.inputs, self.goal_parts = {}, {}

    # ---- inputs -------------------------------------------------------------------------------
    def receive(self, name: str, convert: Callable[[], np.ndarray], stamp: Any = None,
                length: int | None = None) -> None:
        """Keep a message's value if it is usable; otherwise record and report why not. A
        message whose ``length`` (values, entries or bytes) cannot fit the input is refused
        before any conversion work."""
        if name not in self.inputs:  # a callback racing a cleanup
            return
        inp = self.inputs[name]
        arrived = time.monotonic()
        try:
            if length is not None:
                self.check_length(inp, length)
            value = convert()
            if inp.size is not None and value.size != inp.size:
                raise safety.SafetyError(f"{value.size} values; expected {inp.size} for "
                                         f"observation '{inp.key}'")
            safety.check_finite({inp.key: value})
            stamp_s = None
            if stamp is not None and self.p["check_header_stamps"]:
                stamp_s = stamp.sec + stamp.nanosec / NS_PER_S
                now_s = self.get_clock().now().nanoseconds / NS_PER_S
                problem = self.freshness.stamp_problem(name, stamp_s, now_s)
                if problem:
                    raise safety.SafetyError(f"{problem} {STAMP_HINT}")
        except Exception as err:  # noqa: BLE001 - a bad message must never stop the node
            inp.value, inp.problem = None, describe(err)
            self.complain(name, f"not acting on {name} from {inp.topic}: {inp.problem}")
            if isinstance(err, Oversized) and err.nbytes >= RENEW_MIN_BYTES:
                self.renew_due[inp.topic] = time.monotonic() + RENEW_AFTER_S
            return
        previous = self.freshness.received.get(name)
        if (self.p["mode"] == "realtime" and previous is not None
                and arrived - previous > self.freshness.timeout_s):  # it went stale meanwhile
            self.interrupted = self.interrupted or (f"{name} silent for {arrived - previous:.2f} "
                                                    "s")
        inp.value, inp.problem, inp.received_s = value, None, arrived
        inp.count += 1
        self.freshness.mark(name, arrived, stamp_s)
        if self.p["mode"] == "lockstep":
            self.control()

    def check_length(self, inp: observations.Input, length: int) -> None:
        """Refuse, unread, a message too long for ``inp`` (an 8 MB array where 39 values are
        expected costs a length check, not a conversion)."""
        if inp.name == "state":
            self.check_vector_length(length, inp.size, f"observation '{inp.key}'")
        if inp.name == "joint_states" and length > MAX_JOINTS:
            raise Oversized(f"JointState with {length} entries; expected at most {MAX_JOINTS} "
                            "(refused unread)", 32 * length)
        if inp.transport is not None:
            self.check_image_length(length, self.policy.obs_spec[inp.key]["shape"], "image")

    @staticmethod
    def check_vector_length(length: int, size: int, what: str) -> None:
        if length != size:
            raise Oversized(f"{length} values; expected {size} for {what}"
                            + (" (refused unread)" if length > size else ""), 8 * length)

    def check_image_length(self, length: int, shape: Sequence[int], what: str) -> None:
        height, width = shape[:2]
        limit = (MAX_IMAGE_BYTES if self.p["image_resize"]
                 else max(height * width * MAX_PIXEL_BYTES, 4096))
        if length > limit:
            raise Oversized(f"{what} message of {length} bytes; expected at most {limit} for "
                            f"the model's {width}x{height} input (refused unread)", length)

    def check_declared_size(self, data: bytes, shape: Sequence[int]) -> None:
        """Refuse, before decoding, a jpeg/png whose header declares more pixels than it may
        have (a small file can inflate to gigabytes)."""
        size = safety.declared_size(data)
        if size is None:
            return  # not jpeg/png, or cut short: the decoder refuses it
        width, height = size
        if self.p["image_resize"]:
            if width * height * 3 > MAX_IMAGE_BYTES:
                raise Oversized(f"compressed image declares {width}x{height} pixels; expected at "
                                f"most {MAX_IMAGE_BYTES // 2**20} MB decoded (refused undecoded)",
                                len(data))
        elif (height, width) != (int(shape[0]), int(shape[1])):
            raise safety.SafetyError(f"compressed image declares {width}x{height} pixels; "
                                     f"expected {shape[1]}x{shape[0]} (or enable image_resize)")

    def renew_subscriptions(self) -> None:
        """Timer: an input that received an oversized message gets a new subscription once
        such messages stop (RENEW_AFTER_S): DDS keeps the buffers of the largest sample a
        subscription took, so this gives that memory back."""
        now = time.monotonic()
        for topic, due in list(self.renew_due.items()):
            if now < due or topic not in self.input_subscriptions:
                continue
            del self.renew_due[topic]
            old, args = self.input_subscriptions[topic]
            self.owned_subscriptions.remove(old)
            self.destroy_subscription(old)
            new = self.create_subscription(*args)
            self.owned_subscriptions.append(new)
            self.input_subscriptions[topic] = (new, args)
            self.get_logger().info(f"{topic}: subscription renewed after an oversized message "
                                   "(its buffers released)")
            release_free_memory()

    def on_goal(self, topic: str, key: str, check: Callable[[], None],
                convert: Callable[[], np.ndarray]) -> None:
        """MPC goal parts; the goal is set once every observation key has a valid one. A part
        is kept only once it has passed ``check`` (its length, before conversion) and
        ``convert`` (its shape and values)."""
        if self.policy is None:
            return
        try:
            check()
            parts = {**self.goal_parts, key: convert()}
            complete = set(parts) >= set(self.policy.obs_spec)
            if complete:
                self.policy.set_goal(dict(parts))
            self.goal_parts = parts
        except Exception as err:  # noqa: BLE001 - keep the previous goal, keep running
            self.refuse_goal(topic, "goal refused", err)
            return
        if complete:
            self.get_logger().info(f"new goal set ({', '.join(sorted(parts))})")

    def on_subgoals(self, msg: Float64MultiArray) -> None:
        """MPC subgoals for a state-only model: rows of an (M, K) array, visited in order."""
        if self.policy is None:
            return
        key, topic = self.p["state_key"], self.p["subgoals_topic"]
        size = int(self.policy.obs_spec[key]["shape"][0])
        try:
            self.check_subgoals_length(len(msg.data), size)
            observations.check_subgoal_layout([d.size for d in msg.layout.dim], len(msg.data),
                                              size)
            rows = observations.subgoal_rows(conversions.multi_array_vector(msg), size)
            self.policy.set_subgoals([{key: row} for row in rows])
        except Exception as err:  # noqa: BLE001 - keep the previous goal, keep running
            self.refuse_goal(topic, "subgoals refused", err)
            return
        self.get_logger().info(f"{len(rows)} subgoals set")

    @staticmethod
    def check_subgoals_length(length: int, size: int) -> None:
        """Refuse, unread, a subgoals message that cannot be 1..MAX_SUBGOALS rows of ``size``."""
        if length > MAX_SUBGOALS * size:
            raise Oversized(f"{length} values ({length / size:.0f} subgoals of {size}); "
                            f"expected at most {MAX_SUBGOALS} subgoals (refused unread)",
                            8 * length)

    def refuse_goal(self, topic: str, what: str, err: Exception) -> None:
        """One line saying why a goal message was refused and what the node does instead."""
        keeps = ("keeping the previous goal" if getattr(self.policy, "goal", None) is not None
                 else "no goal yet: not commanding")
        self.complain("goal", f"{what} on {topic}: {describe(err)}; {keeps}", blocks=False)
        if isinstance(err, Oversized) and err.nbytes >= RENEW_MIN_BYTES:
            self.renew_due[topic] = time.monotonic() + RENEW_AFTER_S

    def publish_plan(self) -> None:
        """The MPC's active subgoal and the cost of the plan it just executed the start of;
        nothing after a tick without a search (``prior.mode: direct``: there is no plan)."""
        if self.pub_plan is None:
            return
        cost = float(self.policy.planned_cost)
        if np.isfinite(cost):
            self.pub_plan.publish(Float64MultiArray(data=[
                float(self.policy.subgoal_index), cost]))

    # ---- control ------------------------------------------------------------------------------
    def control(self) -> None:
        """One control tick: act on the latest observation if everything is in order."""
        if not (self.active and self.enabled) or self.policy is None:
            return
        if self.p["mode"] == "lockstep" and any(i.count == i.used for i in self.inputs.values()):
            return  # wait until every input has a new message
        if any(i.problem for i in self.inputs.values()):
            return  # already reported when the message arrived
        stamp_now = (self.get_clock().now().nanoseconds / NS_PER_S
                     if self.p["check_header_stamps"] else None)
        stale = self.freshness.problems(time.monotonic(), stamp_now)
        if stale:
            for line in stale:  # a stream going quiet is its own kind of problem
                name = line.split(": ", 1)[0]
                topic = self.inputs[name].topic if name in self.inputs else "?"
                self.complain(name + ".stale", f"not acting: {line} (topic {topic})")
            if self.published:
                self.interrupted = self.interrupted or stale[0].split(";", 1)[0]
            return
        interrupted = self.interrupted
        try:
            if interrupted:  # what the policy and the ramp remember is from before the gap
                self.restart()
            if self.ramp_positions is not None and self.filter.previous is None:
                self.filter.reset(self.inputs["joint_states"].value[self.ramp_positions])
            obs = observations.assemble(self.inputs, self.policy.obs_spec)
            action = self.filter(self.policy.act(obs))
            msg = self.build_output(action)
        except Exception as err:  # noqa: BLE001 - nothing is published, the node keeps running
            self.complain("policy", f"no action published: {describe(err)}")
            return
        self.pub_action.publish(msg)
        if self.pub_gripper is not None:  # the last dimension, as filtered (twist_fields)
            self.pub_gripper.publish(Float64(data=float(action[-1])))
        newest = max(i.received_s for i in self.inputs.values())
        latency_ms = (time.monotonic() - newest) * MS_PER_S
        self.pub_latency.publish(Float64(data=latency_ms))
        self.publish_plan()
        self.latencies_ms.append(latency_ms)
        self.published += 1
        for inp in self.inputs.values():
            inp.used = inp.count
        if interrupted:
            self.get_logger().info(f"commanding again after an interruption ({interrupted}): "
                                   "policy state reset, the first command ramped from rest")
        elif self.blocked:
            self.get_logger().info(f"commanding again (was blocked: {self.blocked})")
        self.blocked = None

    def restart(self) -> None:
        """Fresh start of commanding: policy state, rate limiter, stale actions forgotten."""
        self.interrupted = None
        if self.policy is not None:
            self.policy.reset()
            self.filter.reset()

    def complain(self, source: str, text: str, blocks: bool = True) -> None:
        """Log ``text`` at most once per warn_throttle_s per source (rclpy's throttle is per
        logger and call site, so each source gets its own child logger); ``blocks``: it is why
        nothing is being published (diagnostics say so until commanding resumes)."""
        if blocks:
            self.blocked = text
        logger = self.complaint_loggers.get(source)
        if logger is None:  # camera inputs are named image/<key>: a logger name has no '/'
            logger = self.complaint_loggers[source] = self.get_logger().get_child(
                source.replace("/", "_"))
        logger.warning(text, throttle_duration_sec=self.p["warn_throttle_s"])

    # ---- services and parameters ------------------------------------------------------------
    def on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data and not self.enabled:
            self.restart()
        changed = self.enabled != bool(request.data)
        self.enabled = bool(request.data)
        response.success = True
        response.message = "enabled" if self.enabled else "disabled: publishing nothing"
        if changed:
            self.audit("enable", response.message)
        else:
            self.get_logger().info(response.message)
        return response

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = self.policy is not None
        if self.policy is None:
            response.message = "not configured: no policy to reset"
        else:
            self.restart()
            response.message = "policy reset"
        return response

    def on_set_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        """Refuse values the node could not use; apply safety limits at once when configured."""
        new = {c.name: c.value for c in changes}
        problems = params.check_choices(new, POLICY_PARAMS)
        if "checkpoint" in new:
            outside = safety.checkpoint_problem(new["checkpoint"], self.checkpoint_dirs,
                                                self.started_checkpoint)
            if outside:
                problems["checkpoint"] = outside
        limits = None
        if not problems and self.filter is not None and set(new) & set(LIVE_POLICY_PARAMS):
            merged = {**self.p, **{k: list(new[k]) for k in LIVE_POLICY_PARAMS if k in new}}
            try:
                limits = self.limits(merged, self.policy.action_dim)
                wider = safety.widening(self.filter.limits, limits) if self.active else None
                if wider:
                    problems["limits"] = (f"{wider} while active; limits only tighten while the "
                                          "node is active: deactivate, set them, activate (or "
                                          "restart with a new params file)")
            except ActJepaError as err:
                problems["limits"] = str(err)
        if problems:
            reason = "; ".join(problems.values())
            self.get_logger().warning(f"parameter change refused: {reason}")  # one per request
            return SetParametersResult(successful=False, reason=reason)
        for name in new:
            self.param_problems.pop(name, None)
        if limits is not None:
            self.filter.limits = limits
            self.p.update({k: list(v) for k, v in new.items() if k in LIVE_POLICY_PARAMS})
            self.audit("limits", f"action limits now [{limits.low.tolist()}, "
                                 f"{limits.high.tolist()}], max_delta "
                                 f"{limits.max_delta.tolist()}")
        elif set(new) & set(LIVE_POLICY_PARAMS):
            self.audit("limits", "safety limits set: " + ", ".join(
                f"{k} {list(new[k])}" for k in LIVE_POLICY_PARAMS if k in new)
                + " (applied at the next configure)")
        if "checkpoint" in new and new["checkpoint"] != self.get_parameter("checkpoint").value:
            self.audit("checkpoint", f"checkpoint set to {new['checkpoint']!r} (loaded at the "
                                     "next configure)")
        later = sorted(set(new) - set(LIVE_POLICY_PARAMS) - {"use_sim_time"})
        if later and self.policy is not None:
            self.get_logger().info(f"{', '.join(later)}: applied at the next configure "
                                   "(deactivate, cleanup, configure, activate)")
        return SetParametersResult(successful=True)

    def publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name=f"{self.get_name()}: actjepa policy",
                                  hardware_id=self.p["output_topic"])
        if self.failure:
            status.level = DiagnosticStatus.ERROR
            status.message = f"configure failed: {self.failure}"
        elif not self.active:
            status.level, status.message = DiagnosticStatus.OK, f"{self.lifecycle_label}: idle"
        elif not self.enabled:
            status.level, status.message = DiagnosticStatus.OK, "disabled by ~/enable"
        elif self.blocked:
            status.level, status.message = DiagnosticStatus.WARN, self.blocked
        else:
            status.level, status.message = DiagnosticStatus.OK, "commanding"
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        values = {"lifecycle": self.lifecycle_label, "enabled": str(self.enabled),
                  "actions_published": str(self.published),
                  "latency_ms_p50": f"{np.percentile(lat, 50):.2f}",
                  "latency_ms_p99": f"{np.percentile(lat, 99):.2f}",
                  "policy_type": getattr(self.policy, "policy_type", ""),
                  **({"subgoal_index": str(self.policy.subgoal_index),
                      "planned_cost": f"{self.policy.planned_cost:.4g}"}
                     if getattr(self.policy, "needs_goal", False) else {}),
                  "checkpoint": self.p["checkpoint"],
                  "require_enable": str(self.p["require_enable"]),
                  **{f"{kind}_changes": str(self.changes[kind])
                     for kind in ("limits", "checkpoint", "lifecycle", "enable")}}
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)


def autostarted() -> PolicyNode:
    """A new node, walked to active when its ``autostart`` parameter says so."""
    node = PolicyNode()
    if node.p["autostart"]:
        if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
        else:
            node.get_logger().error("autostart: configure failed; staying unconfigured (fix "
                                    "the parameter, then call ~/change_state configure)")
    return node


def main(args: Sequence[str] | None = None) -> int:
    """``python -m actjepa_ros.policy_node --ros-args --params-file config/policy.yaml``."""
    return spin_node(autostarted, NODE_NAME, args=args)


if __name__ == "__main__":
    sys.exit(main())

