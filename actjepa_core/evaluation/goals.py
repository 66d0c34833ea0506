"""Goal observations for latent MPC on the simulated arm (Protocol 3 needs an o_g per episode).

Two ways to build o_g for episode i of a (task, seed) run (``actjepa eval --goal``; the goal is
the evaluation's choice, not the policy's):

- ``demo``: run the scripted expert from the same start configuration in a second SimArm and take
  its observation ``EXTRA_STEPS_AFTER_SUCCESS`` ticks after its first success, i.e. where the demo
  ``actjepa collect`` records for that episode ends (one tick past its last row). It is a real,
  physically consistent observation (arm pose, gripper, object, previous frame, image), so it lies
  where the encoder was trained. Works for state and image observations and every task.
- ``state``: copy the start observation and move the hand (reach) or hand and object (push,
  pick-place) onto the goal position the state vector already carries (obs[36:39]); the previous
  frame is set equal to the current one. No second simulator is needed, but the vector is
  synthetic (the hand sits inside the object, nothing moved but positions), and it is state-only.

- ``demo-subgoals``: the same expert run, giving subgoals as well: its observations at
  ``SUBGOAL_FRACTIONS`` of the way to its first success, then the ``demo`` goal (V-JEPA 2-AC plans
  pick-and-place toward two image subgoals and the final goal). A policy with ``set_subgoals``
  visits them in order.
- ``demo-waypoints``: the same expert run as dense subgoals, one every ``WAYPOINT_STRIDE`` ticks,
  then the goal: what a user who gives the node a waypoint path (the ROS subgoals topic) gets, and
  the upper bound of what planning with the world model does when the task's structure is given.

All read privileged information (the goal position) from the simulator, as Meta-World's goal
conditioned state does anyway. The default is ``demo``: with one reach-v3 world model and the
default MPCConfig, 20 evaluation episodes succeed 16 times with demo goals and 13 times with state
goals (15 vs 10 with 256 CEM samples): the synthetic vector lies off the data the encoder saw, the
demo's end state on it.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.sim.arm import EXTRA_STEPS_AFTER_SUCCESS, SimArm, SuccessStop

GOAL_SOURCES = ("demo", "state", "demo-subgoals", "demo-waypoints")  # `actjepa eval --goal`
SUBGOAL_FRACTIONS = (1 / 3, 2 / 3)  # where along the expert's way to success subgoals are taken
WAYPOINT_STRIDE = 5  # ticks between waypoints: one planning horizon of the default MPC
DEFAULT_GOAL_SOURCE = "demo"

# Meta-World's 39-D state layout (v3): current frame 0:18, previous frame 18:36, goal 36:39.
HAND = slice(0, 3)
OBJECT = slice(4, 7)
FRAME = slice(0, 18)
PREVIOUS_FRAME = slice(18, 36)
GOAL = slice(36, 39)
MOVED_BY_TASK: dict[str, tuple[slice, ...]] = {
    "reach-v3": (HAND,),  # the goal is a point for the hand; the puck is scenery
    "push-v3": (HAND, OBJECT),
    "pick-place-v3": (HAND, OBJECT),
}


def state_goal(task: str, start: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The start observation with the task's moved parts placed at the goal position."""
    if set(start) != {"state"}:
        raise ActJepaError(f"goal source 'state' builds state-only goals; the observation has "
                           f"keys {sorted(start)}; expected only 'state' (use goal source 'demo' "
                           "for image observations)")
    if task not in MOVED_BY_TASK:
        raise ActJepaError(f"goal source 'state' knows tasks {sorted(MOVED_BY_TASK)}; got "
                           f"{task!r}")
    state = np.array(start["state"], dtype=np.float32, copy=True)
    for part in MOVED_BY_TASK[task]:
        state[part] = state[GOAL]
    state[PREVIOUS_FRAME] = state[FRAME]
    return {"state": state}


class GoalMaker:
    """Builds goal observations for episodes of one (task, seed) run, reusing one expert arm."""

    def __init__(self, task: str, seed: int, source: str = DEFAULT_GOAL_SOURCE,
                 image_size: int | None = None) -> None:
        check_choice("", "goal source", source, GOAL_SOURCES)
        self.task, self.source = task, source
        # the expert gets the task's own step limit, whatever cap the evaluation runs under
        self._arm = (SimArm(task, seed=seed, image_size=image_size) if source != "state"
                     else None)

    def goal(self, episode: int, start: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The goal observation of ``episode``, whose start observation is ``start``."""
        return self.goals(episode, start)[-1]

    def goals(self, episode: int, start: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Subgoals then the goal (just the goal for ``demo`` and ``state``)."""
        if self._arm is None:
            return [state_goal(self.task, start)]
        path = demo_path(self._arm, episode)
        if self.source == "demo":
            return [path.goal]
        if self.source == "demo-waypoints":
            return [*path.waypoints(WAYPOINT_STRIDE), path.goal]
        return [*path.subgoals(SUBGOAL_FRACTIONS), path.goal]

    def close(self) -> None:
        if self._arm is not None:
            self._arm.close()


class DemoPath:
    """The expert's observations of one episode, up to its goal observation."""

    def __init__(self, observations: list[dict[str, np.ndarray]], success_step: int | None):
        self.observations = observations
        self.success_step = success_step

    @property
    def goal(self) -> dict[str, np.ndarray]:
        return self.observations[-1]

    def subgoals(self, fractions: tuple[float, ...]) -> list[dict[str, np.ndarray]]:
        reached = self.success_step or len(self.observations) - 1
        return [self.observations[max(1, round(f * reached))] for f in fractions]

    def waypoints(self, stride: int) -> list[dict[str, np.ndarray]]:
        """Every ``stride``-th observation after the start, before the goal."""
        return self.observations[stride:-1:stride]


def demo_path(arm: SimArm, episode: int) -> DemoPath:
    """Run the expert: observations until EXTRA_STEPS_AFTER_SUCCESS ticks after first success
    (or the step limit, if the expert never succeeds in this episode)."""
    observations = [arm.reset(episode)]
    stop = SuccessStop(EXTRA_STEPS_AFTER_SUCCESS)
    while arm.steps < arm.max_steps and not stop.due(arm.steps):
        obs, success = arm.step(arm.expert_action())
        observations.append(obs)
        stop.record(arm.steps, success)
    return DemoPath(observations, stop.first_success)


def demo_goal(arm: SimArm, episode: int) -> dict[str, np.ndarray]:
    """The expert demo's last observation: EXTRA_STEPS_AFTER_SUCCESS ticks after first success
    (or at the step limit, if the expert never succeeds in this episode)."""
    return demo_path(arm, episode).goal
