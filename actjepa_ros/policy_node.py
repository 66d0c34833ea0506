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

This file holds the lifecycle, configure, the observation inputs and the control tick; the rest
are the node's mixins, one module each: ``policy_input_limits`` (messages refused by their length
before conversion, subscriptions renewed after oversized ones), ``policy_goals`` (the MPC goal
inputs and ``~/plan``), ``policy_services`` (``~/enable``, ``~/reset``, parameter changes and
their guards) and ``policy_reports`` (log lines, the audit of changes, /diagnostics).
"""
from __future__ import annotations

import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from actjepa_core.errors import ActJepaError
from actjepa_core.policies import load_policy
from actjepa_core.units import MS_PER_S, NS_PER_S
from actjepa_ros import conversions, observations, params, safety
from actjepa_ros.params import POLICY_PARAMS
from actjepa_ros.policy_goals import GoalInputs
from actjepa_ros.policy_input_limits import RENEW_CHECK_S, InputLimits
from actjepa_ros.policy_reports import DIAGNOSTICS_TOPIC, LATENCY_WINDOW, Reporting, describe
from actjepa_ros.policy_services import ServicesAndParameters
from actjepa_ros.share import share_dir
from actjepa_ros.spin import spin_node

NODE_NAME = "policy_node"
OUTPUT_DEPTH = 1  # a command that could not be delivered is not worth delivering late
STAMP_HINT = ("(if the publisher runs on simulated time, set use_sim_time:=true here; if clocks "
              "are not synchronised, check_header_stamps:=false)")


class PolicyNode(GoalInputs, InputLimits, ServicesAndParameters, Reporting, LifecycleNode):
    """Lifecycle node wrapping one ``actjepa_core`` policy (see the module docstring); its
    goal inputs, input limits, services and reports are the mixins' methods."""

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
            self.note_oversized(inp.topic, err)
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

