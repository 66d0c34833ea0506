"""policy_node's MPC goal inputs: the goal (state and/or image) and subgoals it plans towards,
and the plan topic that reports the search.

Only a goal-conditioned policy (``needs_goal``, the latent MPC) subscribes to these, and they
follow their own rule, kept apart from the observations': a goal message is checked by its length
before conversion (at most MAX_SUBGOALS subgoals) and its values must be finite in float32, but a
refused one does not hold commanding as a bad observation does: it leaves the previous goal in
force (or, before the first, no goal and so no action).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray

from actjepa_ros import conversions, observations
from actjepa_ros.policy_input_limits import Oversized
from actjepa_ros.policy_reports import describe

MAX_SUBGOALS = 256  # subgoals are waypoints; each is encoded while the node waits (~0.1-1 ms)


class GoalInputs:
    """PolicyNode's goal subscriptions and their callbacks (a mixin: it uses the node's ``p``,
    ``policy``, ``goal_parts``, ``pub_plan``, ``decode_image``, ``complain``, the length checks
    of ``InputLimits`` and its rclpy methods)."""

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
        self.note_oversized(topic, err)

    def publish_plan(self) -> None:
        """The MPC's active subgoal and the cost of the plan it just executed the start of;
        nothing after a tick without a search (``prior.mode: direct``: there is no plan)."""
        if self.pub_plan is None:
            return
        cost = float(self.policy.planned_cost)
        if np.isfinite(cost):
            self.pub_plan.publish(Float64MultiArray(data=[
                float(self.policy.subgoal_index), cost]))
