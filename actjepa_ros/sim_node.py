"""The simulated arm as a robot on ROS 2 topics: a stand-in for Gazebo or real hardware.

Meta-World's Sawyer (``actjepa_core.sim.arm.SimArm``) publishes what an arm driver and
camera would: ``joint_states``, ``camera/image_raw`` (rgb8, when ``image_size`` > 0; each further
camera of ``cameras`` on its own topic, e.g. the wrist camera's ``camera/behindGripper/image_raw``:
sim_cameras.py), and, under the node's name, the 39-d task observation ``~/state`` and
``~/success``; with ``publish_clock`` it also publishes ``/clock`` and stamps every message of a
tick with that same simulated time. It takes 4-d actions (hand dx, dy, dz, gripper;
Float64MultiArray) on ``~/action``, or the same split the way real cells command an arm: hand
velocity as ``geometry_msgs/TwistStamped`` on ``~/twist`` (MoveIt Servo's input; ``twist_scale``
x linear velocity in ``twist_frame_id``, the angular part 0) and the gripper as
``std_msgs/Float64`` on ``~/gripper``. Values beyond Meta-World's [-1, 1] are clipped.

Two ways to run, because evaluation and deployment need different things:

* ``lockstep``: one simulator step per received action (a 4-d array, or a twist and a gripper
  command: the step is taken once both are in, whichever came first), observations published
  after each step and after each reset. A policy that answers every observation with one
  action then produces exactly the trajectory an in-process rollout would (deterministic
  evaluation over real DDS).
  If no action comes for ``lockstep_republish_s`` the current observation is sent again, so a
  policy that starts (or discovers the simulator) late still gets its first observation.
* ``realtime``: a fixed-rate loop like hardware: each tick applies the latest command of each
  part (hand from the array or the twist, gripper from the array or the gripper topic), and a
  part no command has reached for ``action_timeout_s`` holds still (zero).

``expert: true`` drives the arm with Meta-World's scripted expert at ``rate_hz`` and publishes
each applied action on the action topic, so demonstrations can be recorded from topics.
``~/reset`` (std_srvs/Trigger) starts the next episode (``episode`` is the first one).
"""
from __future__ import annotations

import sys
import time
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray
from std_srvs.srv import Trigger

from actjepa_core.errors import ActJepaError
from actjepa_core.sim.arm import (
    ACTION_DIM,
    CAMERA_ROTATIONS,
    SimArm,
    SuccessStop,
    camera_key,
    check_camera,
)
from actjepa_core.units import NS_PER_S
from actjepa_ros import conversions, params
from actjepa_ros.sim_cameras import DEFAULT_CAMERA, CameraOutput, camera_outputs
from actjepa_ros.spin import spin_node

NODE_NAME = "sim_node"
TICK_S = params.SIM_TICK_S
QUEUE_DEPTH = 10  # reliable queues: lock-step must not lose an action or an observation
WARN_EVERY_S = 5.0  # throttle for repeated complaints (bad actions, action timeout)
HAND, GRIPPER = slice(0, 3), slice(3, 4)  # the parts of Meta-World's 4-d action
PARTS = {"hand": HAND, "gripper": GRIPPER}


class SimNode(Node):
    """One SimArm episode at a time, its observations out, its actions in."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        problems = params.declare(self, params.SIM_PARAMS)
        if problems:
            raise ActJepaError("; ".join(problems.values()))
        self.p = params.values(self, params.SIM_PARAMS)
        self.lockstep = self.p["mode"] == "lockstep"
        cameras = check_cameras(self.p["cameras"])
        self.arm = SimArm(self.p["task"], seed=self.p["seed"],
                          image_size=self.p["image_size"] or None,
                          max_steps=self.p["max_steps"] or None, cameras=cameras)
        if not self.arm.image_size and list(cameras) != [DEFAULT_CAMERA]:
            self.get_logger().warning(f"cameras {list(cameras)} not rendered: image_size is 0 "
                                      "(expected image_size > 0 for camera topics)")
        self.sim_time_ns = 0
        self.stop = SuccessStop(self.p["steps_after_success"])
        self.done = False
        self.last_publish = time.monotonic()
        self.command = np.zeros(ACTION_DIM)  # realtime: the latest command of each dimension
        self.command_at = np.full(ACTION_DIM, -np.inf)  # ... and when it arrived
        self.pending: dict[str, np.ndarray] = {}  # lockstep: twist/gripper parts of the next step
        self.timed_out = False
        self.expert_started = False
        self.last_obs: dict[str, np.ndarray] = {}
        self._last_msgs: list[tuple[object, object]] = []  # last observation: (publisher, msg)

        reliable = QoSProfile(depth=QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_joints = self.create_publisher(JointState, self.p["joint_states_topic"], reliable)
        self.pub_state = self.create_publisher(Float64MultiArray, self.p["state_topic"], reliable)
        self.pub_success = self.create_publisher(Bool, self.p["success_topic"], reliable)
        # one publisher per rendered camera: (observation key, publisher, frame_id)
        self.pub_images = [(camera_key(out.camera), self.create_publisher(Image, out.topic,
                                                                          reliable), out.frame_id)
                           for out in camera_outputs(self.p)]
        self.log_cameras(camera_outputs(self.p))
        self.pub_clock = (self.create_publisher(Clock, self.p["clock_topic"], reliable)
                          if self.p["publish_clock"] else None)
        if self.p["expert"]:
            self.pub_action = self.create_publisher(Float64MultiArray, self.p["action_topic"],
                                                    reliable)
        else:
            self.subscribe_commands(reliable)
        self.create_service(Trigger, "~/reset", self.on_reset)

        if self.p["expert"] or not self.lockstep:
            self.create_timer(1.0 / self.p["rate_hz"], self.on_tick)
        elif self.p["lockstep_republish_s"] > 0:
            self.create_timer(self.p["lockstep_republish_s"], self.on_republish)
        self.start_episode(self.p["episode"])

    def log_cameras(self, outputs: list[CameraOutput]) -> None:
        """One start-up line naming each camera's topic: with several cameras, which topic shows
        which view is the first thing an integrator wiring a policy's image_topics needs."""
        if outputs:
            self.get_logger().info("cameras " + ", ".join(
                f"{o.camera} -> {self.resolve_topic_name(o.topic)} ({o.frame_id})"
                for o in outputs) + f", {self.arm.image_size}x{self.arm.image_size} rgb8")

    def subscribe_commands(self, qos: QoSProfile) -> None:
        """The 4-d action array, and the twist and gripper topics unless set to ''."""
        self.create_subscription(Float64MultiArray, self.p["action_topic"], self.on_action, qos)
        if self.p["twist_topic"]:
            self.create_subscription(TwistStamped, self.p["twist_topic"], self.on_twist, qos)
        if self.p["gripper_topic"]:
            self.create_subscription(Float64, self.p["gripper_topic"], self.on_gripper, qos)

    # ---- episodes ---------------------------------------------------------------------------
    def start_episode(self, episode: int) -> None:
        obs = self.arm.reset(episode)
        self.pending = {}  # half a command belongs to the episode that ended
        self.stop, self.done = SuccessStop(self.p["steps_after_success"]), False
        self.get_logger().info(f"{self.arm.task} episode {episode} (seed {self.arm.seed}) "
                               f"started; {self.p['mode']} mode")
        self.publish(obs, success=None)  # ~/success reports steps: one message per step

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Start the next episode (the current index + 1)."""
        self.start_episode(self.arm.episode + 1)
        response.success = True
        response.message = f"episode {self.arm.episode} of {self.arm.task} (seed {self.arm.seed})"
        return response

    def step(self, action: np.ndarray) -> None:
        """Apply one action, publish what the arm sees after it, end the episode if due."""
        obs, success = self.arm.step(action)
        self.stop.record(self.arm.steps, success)
        self.publish(obs, success)
        if self.episode_over():
            self.done = True
            first = self.stop.first_success
            outcome = f"solved at step {first}" if first is not None else "not solved"
            self.get_logger().info(f"episode {self.arm.episode} ended after {self.arm.steps} "
                                   f"steps: {outcome}")
            if self.p["auto_reset"]:
                self.start_episode(self.arm.episode + 1)

    def episode_over(self) -> bool:
        if self.arm.steps >= self.arm.max_steps:
            return True
        return self.p["end_on_success"] and self.stop.due(self.arm.steps)

    # ---- actions in -------------------------------------------------------------------------
    def on_action(self, msg: Float64MultiArray) -> None:
        action = conversions.multi_array_vector(msg)
        problem = action_problem(action)
        if problem:
            self.get_logger().warning(f"refused action on {self.p['action_topic']}: {problem}",
                                      throttle_duration_sec=WARN_EVERY_S)
            return
        if not self.lockstep:
            self.hold(slice(0, ACTION_DIM), action)
            return
        if self.done:
            self.get_logger().debug("episode over: action dropped (call ~/reset)")
            return
        self.step(action)

    def on_twist(self, msg: TwistStamped) -> None:
        try:
            hand = conversions.twist_to_hand(msg, self.p["twist_scale"], self.p["twist_frame_id"])
        except conversions.ConversionError as err:
            self.refuse("twist", self.p["twist_topic"], str(err))
            return
        self.on_part("hand", hand)

    def on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            self.refuse("gripper", self.p["gripper_topic"], f"{msg.data} is not finite")
            return
        self.on_part("gripper", np.array([msg.data]))

    def refuse(self, source: str, topic: str, problem: str) -> None:
        """One line per refused command, throttled per topic (rclpy throttles per logger and
        call site: a child logger per source keeps a bad twist from hiding a bad gripper)."""
        self.get_logger().get_child(source).warning(f"refused command on {topic}: {problem}",
                                                    throttle_duration_sec=WARN_EVERY_S)

    def on_part(self, part: str, values: np.ndarray) -> None:
        """A hand or gripper command. realtime: held as the latest of its part. lockstep: kept
        until the other part is in too, then one step with both (arrival order does not matter:
        the two topics are separate DDS streams)."""
        if not self.lockstep:
            self.hold(PARTS[part], values)
            return
        if self.done:
            self.get_logger().debug(f"episode over: {part} command dropped (call ~/reset)")
            return
        if part in self.pending:
            self.get_logger().warning(f"a second {part} command before the other part of the "
                                      "step arrived: the newer one is kept",
                                      throttle_duration_sec=WARN_EVERY_S)
        self.pending[part] = values
        if len(self.pending) == len(PARTS):
            action = np.concatenate([self.pending["hand"], self.pending["gripper"]])
            self.pending = {}
            self.step(action)

    def hold(self, where: slice, values: np.ndarray) -> None:
        """realtime: the newest command for these action dimensions, applied every tick."""
        self.command[where], self.command_at[where] = values, time.monotonic()

    def on_tick(self) -> None:
        """Fixed-rate loop (realtime mode, expert mode)."""
        if self.done:
            if not self.lockstep:  # hardware keeps reporting its state while idle
                self.publish(self.last_obs, None)
            return
        if self.p["expert"]:
            if not self.expert_started and not self.listener_ready():
                return
            self.expert_started = True
            action = self.arm.expert_action()
            self.pub_action.publish(conversions.to_float64_multi_array(action, "action"))
        else:
            action = self.held_action()
        self.step(action)

    def listener_ready(self) -> bool:
        """Expert mode starts once something (a recorder) listens to its actions, so a
        recording made from topics holds the episode from its first step."""
        if self.pub_action.get_subscription_count() > 0:
            return True
        self.get_logger().info(f"expert: waiting for a subscriber on {self.p['action_topic']}",
                               throttle_duration_sec=WARN_EVERY_S)
        return False

    def held_action(self) -> np.ndarray:
        """The latest command of each dimension; zero (hold still) where it is older than the
        timeout, so a hand whose twist stream stopped stops even while the gripper is fed."""
        age = time.monotonic() - self.command_at
        fresh = age <= self.p["action_timeout_s"]
        lapsed = np.isfinite(age) & ~fresh  # commanded once, quiet since
        if not lapsed.any():
            self.timed_out = False
        elif not self.timed_out:
            self.get_logger().warning(f"no command for {float(age[lapsed].max()):.2f} s on "
                                      f"action dimensions {np.flatnonzero(lapsed).tolist()} "
                                      f"(action_timeout_s={self.p['action_timeout_s']:g}): "
                                      "holding still there")
            self.timed_out = True
        return np.where(fresh, self.command, 0.0)

    def on_republish(self) -> None:
        """Lock-step watchdog: nobody answered the last observation; send it again."""
        if self.done or time.monotonic() - self.last_publish < self.p["lockstep_republish_s"]:
            return
        for publisher, msg in self._last_msgs:
            publisher.publish(msg)
        self.last_publish = time.monotonic()

    # ---- observations out -------------------------------------------------------------------
    def publish(self, obs: dict[str, np.ndarray], success: bool | None) -> None:
        """Everything the arm reports for one tick, all stamped with the same time; ``success``
        (None after a reset or while idle) goes out once per step."""
        self.last_obs = obs
        self.sim_time_ns += int(TICK_S * NS_PER_S)
        stamp = (Time(sec=self.sim_time_ns // NS_PER_S, nanosec=self.sim_time_ns % NS_PER_S)
                 if self.pub_clock else self.get_clock().now().to_msg())
        msgs: list[tuple[object, object]] = []
        if self.pub_clock:
            msgs.append((self.pub_clock, Clock(clock=stamp)))
        joints = JointState(name=list(self.arm.joint_names),
                            position=self.arm.joint_positions().tolist(),
                            velocity=self.arm.joint_velocities().tolist())
        joints.header.stamp, joints.header.frame_id = stamp, self.p["base_frame_id"]
        msgs.append((self.pub_joints, joints))
        for key, publisher, frame_id in self.pub_images:
            msgs.append((publisher, conversions.rgb_to_image(obs[key], stamp, frame_id)))
        msgs.append((self.pub_state, conversions.to_float64_multi_array(obs["state"], "state")))
        for publisher, msg in msgs:
            publisher.publish(msg)
        if success is not None:
            self.pub_success.publish(Bool(data=bool(success)))
        self._last_msgs = msgs  # the observation, for the lock-step watchdog (not ~/success)
        self.last_publish = time.monotonic()


def check_cameras(cameras: Sequence[str]) -> tuple[str, ...]:
    """The ``cameras`` parameter, checked: one or more distinct simulated camera names."""
    for camera in cameras:
        check_camera(camera, "parameter cameras")
    if not cameras or len(set(cameras)) != len(cameras):
        raise ActJepaError(f"parameter cameras is {list(cameras)}; expected one or more distinct "
                           f"names of {sorted(CAMERA_ROTATIONS)}")
    return tuple(cameras)


def action_problem(action: np.ndarray) -> str | None:
    """Why an incoming action cannot be applied, or None."""
    if action.shape != (ACTION_DIM,):
        return f"{action.size} values; expected {ACTION_DIM} (hand dx, dy, dz, gripper)"
    if not np.isfinite(action).all():
        return f"{action.tolist()} contains NaN or Inf"
    return None


def main(args: Sequence[str] | None = None) -> int:
    """``python -m actjepa_ros.sim_node --ros-args --params-file config/sim.yaml``."""
    return spin_node(SimNode, NODE_NAME, lambda node: node.arm.close(), args)


if __name__ == "__main__":
    sys.exit(main())
