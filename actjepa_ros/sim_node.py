"""The simulated arm as a robot on ROS 2 topics: a stand-in for Gazebo or real hardware.

Meta-World's Sawyer (``actjepa_core.sim.arm.SimArm``) publishes what an arm driver and
camera would: ``joint_states``, ``camera/image_raw`` (rgb8, when ``image_size`` > 0), and, under
the node's name, the 39-d task observation ``~/state`` and ``~/success``; with ``publish_clock`` it
also publishes ``/clock`` and stamps every message of a tick with that same simulated time. It takes
4-d actions (hand dx, dy, dz, gripper; Float64MultiArray) on ``~/action``.

Two ways to run, because evaluation and deployment need different things:

* ``lockstep``: one simulator step per received action, observations published after each step
  and after each reset. A policy that answers every observation with one action then produces
  exactly the trajectory an in-process rollout would (deterministic evaluation over real DDS).
  If no action comes for ``lockstep_republish_s`` the current observation is sent again, so a
  policy that starts (or discovers the simulator) late still gets its first observation.
* ``realtime``: a fixed-rate loop like hardware: each tick applies the latest action, and holds
  still (zero action) once no action has arrived for ``action_timeout_s``.

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
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

from actjepa_core.errors import ActJepaError
from actjepa_core.sim.arm import ACTION_DIM, SimArm, SuccessStop
from actjepa_core.units import NS_PER_S
from actjepa_ros import conversions, params
from actjepa_ros.params import SIM_PARAMS
from actjepa_ros.spin import spin_node

NODE_NAME = "sim_node"
TICK_S = params.SIM_TICK_S
QUEUE_DEPTH = 10  # reliable queues: lock-step must not lose an action or an observation
WARN_EVERY_S = 5.0  # throttle for repeated complaints (bad actions, action timeout)


class SimNode(Node):
    """One SimArm episode at a time, its observations out, its actions in."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        problems = params.declare(self, SIM_PARAMS)
        if problems:
            raise ActJepaError("; ".join(problems.values()))
        self.p = params.values(self, SIM_PARAMS)
        self.lockstep = self.p["mode"] == "lockstep"
        self.arm = SimArm(self.p["task"], seed=self.p["seed"],
                          image_size=self.p["image_size"] or None,
                          max_steps=self.p["max_steps"] or None)
        self.sim_time_ns = 0
        self.stop = SuccessStop(self.p["steps_after_success"])
        self.done = False
        self.last_publish = time.monotonic()
        self.latest_action: np.ndarray | None = None
        self.latest_action_at = -np.inf
        self.timed_out = False
        self.expert_started = False
        self.last_obs: dict[str, np.ndarray] = {}
        self._last_msgs: list[tuple[object, object]] = []  # last observation: (publisher, msg)

        reliable = QoSProfile(depth=QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_joints = self.create_publisher(JointState, self.p["joint_states_topic"], reliable)
        self.pub_state = self.create_publisher(Float64MultiArray, self.p["state_topic"], reliable)
        self.pub_success = self.create_publisher(Bool, self.p["success_topic"], reliable)
        self.pub_image = (self.create_publisher(Image, self.p["image_topic"], reliable)
                          if self.arm.image_size else None)
        self.pub_clock = (self.create_publisher(Clock, self.p["clock_topic"], reliable)
                          if self.p["publish_clock"] else None)
        if self.p["expert"]:
            self.pub_action = self.create_publisher(Float64MultiArray, self.p["action_topic"],
                                                    reliable)
        else:
            self.create_subscription(Float64MultiArray, self.p["action_topic"], self.on_action,
                                     reliable)
        self.create_service(Trigger, "~/reset", self.on_reset)

        if self.p["expert"] or not self.lockstep:
            self.create_timer(1.0 / self.p["rate_hz"], self.on_tick)
        elif self.p["lockstep_republish_s"] > 0:
            self.create_timer(self.p["lockstep_republish_s"], self.on_republish)
        self.start_episode(self.p["episode"])

    # ---- episodes ---------------------------------------------------------------------------
    def start_episode(self, episode: int) -> None:
        obs = self.arm.reset(episode)
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
            self.latest_action, self.latest_action_at = action, time.monotonic()
            return
        if self.done:
            self.get_logger().debug("episode over: action dropped (call ~/reset)")
            return
        self.step(action)

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
        """The latest action, or zeros (hold still) once it is older than the timeout."""
        age = time.monotonic() - self.latest_action_at
        if self.latest_action is not None and age <= self.p["action_timeout_s"]:
            self.timed_out = False
            return self.latest_action
        if self.latest_action is not None and not self.timed_out:
            self.get_logger().warning(f"no action for {age:.2f} s (action_timeout_s="
                                      f"{self.p['action_timeout_s']:g}): holding still")
            self.timed_out = True
        return np.zeros(ACTION_DIM)

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
        if self.pub_image is not None:
            msgs.append((self.pub_image, conversions.rgb_to_image(
                obs["image"], stamp, self.p["camera_frame_id"])))
        msgs.append((self.pub_state, conversions.to_float64_multi_array(obs["state"], "state")))
        for publisher, msg in msgs:
            publisher.publish(msg)
        if success is not None:
            self.pub_success.publish(Bool(data=bool(success)))
        self._last_msgs = msgs  # the observation, for the lock-step watchdog (not ~/success)
        self.last_publish = time.monotonic()


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
