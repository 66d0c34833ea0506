"""The embedded simulated robot: Meta-World v3 tasks (Sawyer arm in MuJoCo) and scripted experts.

``SimArm`` wraps one task as a robot arm (reset, step, observe, joint states), so the ROS nodes and
the evaluation loop can drive it like hardware (its scripted experts: experts.py; demonstrations
recorded from them: collect.py). This package never imports ROS.

Where episodes come from. Meta-World's ``MT1(task, seed=b)`` makes 50 start configurations
(object and goal positions) from benchmark seed ``b``, with the goal visible in the state
(``ML1`` hides it, and the scripted experts then fail). Episode ``i`` of a run with seed ``s`` uses
configuration ``i % 50`` of ``MT1(task, seed=s * SEED_STRIDE + i // 50)``: a run is reproducible
from (task, seed, episode index) alone, and runs with different seeds (``collect --seed 0`` vs
``eval --seed 1``) never share a start configuration as long as each uses fewer than
``SEED_STRIDE * 50`` episodes.

Rendering. Images come from an off-screen MuJoCo camera through OSMesa (software GL; needs the
system library libosmesa6). ``MUJOCO_GL``/``PYOPENGL_PLATFORM`` must be set before mujoco is first
imported, so this module sets defaults at import time; set them yourself (e.g. ``egl``) to override.
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import functools  # noqa: E402  (the GL backend must be chosen before mujoco is imported)
from typing import Any, Iterable  # noqa: E402

import metaworld  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from actjepa_core.errors import ActJepaError  # noqa: E402
from actjepa_core.sim.experts import (  # noqa: E402
    ACTION_HIGH,
    ACTION_LOW,
    check_expert_task,
    expert_action,
    make_expert,
)
from actjepa_core.sim.tasks import check_expert_aim  # noqa: E402

STATE_DIM = 39  # hand xyz, gripper, two objects (pos+quat), previous frame of those, goal xyz
# what a real arm knows of itself, without a tracker on the object: the first 4 state entries,
# hand xyz and gripper opening (the "proprio" observation key)
PROPRIO = slice(0, 4)
HAND, GOAL = slice(0, 3), slice(36, 39)  # in the state
ACTION_DIM = 4  # hand dx, dy, dz (scaled by the env), gripper effort
TASKS_PER_BENCHMARK = 50  # start configurations Meta-World makes per MT1 benchmark seed
SEED_STRIDE = 1000  # benchmark seeds reserved per run seed (see module docstring)
EXTRA_STEPS_AFTER_SUCCESS = 10  # keep recording a little after success: demos show "holding still"
CAMERA = "corner4"  # fixed camera that shows arm, object and goal close up (checked by eye)
IMAGE_KEY = "image"  # the observation key of CAMERA; any other camera C observes as "image_C"
# Meta-World's cameras by name, with the quarter turns (np.rot90) that put "up" up, checked by eye.
# The corner cameras are rolled 180 degrees (their "up" axis points down), so their picture arrives
# upside down; rotating by 180 degrees (not a mirror flip) restores the true view. topview looks
# straight down with the arm's base at the bottom; behindGripper rides on the hand (a wrist camera).
# gripperPOV is left out: it renders the wrong view (Meta-World issue #505).
CAMERA_ROTATIONS = {"corner": 2, "corner2": 2, "corner3": 2, "corner4": 2, "topview": 0,
                    "behindGripper": 0}
# Software GL spends ~3/4 of each frame on the 4096-texel shadow map, and shadows are barely
# visible at the small sizes we learn from: without them a 64x64 frame renders ~4x faster.
CAST_SHADOWS = False
ARM_JOINTS = ("right_j0", "right_j1", "right_j2", "right_j3", "right_j4", "right_j5", "right_j6",
              "r_close", "l_close")  # Sawyer's 7 arm hinges + 2 gripper finger slides


class SuccessStop:
    """When an episode that should end ``extra_steps`` ticks after its first success is over:
    recorded demos (``collect_episodes``), the demo goals MPC is evaluated with (goals.py) and
    sim_node's ``end_on_success`` episodes all end this way."""

    def __init__(self, extra_steps: int = EXTRA_STEPS_AFTER_SUCCESS) -> None:
        self.extra_steps = extra_steps
        self.first_success: int | None = None  # the step count at the first success

    def record(self, steps: int, success: bool) -> None:
        """After a step: ``steps`` taken so far, and whether the task is solved now."""
        if success and self.first_success is None:
            self.first_success = steps

    def due(self, steps: int) -> bool:
        """Whether the episode is over after ``steps`` steps."""
        return self.first_success is not None and steps >= self.first_success + self.extra_steps


@functools.lru_cache(maxsize=None)
def _benchmark(task: str, benchmark_seed: int) -> metaworld.MT1:
    """Build (once: it costs ~0.5 s) the MT1 benchmark holding this seed's start configurations."""
    return metaworld.MT1(task, seed=benchmark_seed)


def camera_key(camera: str) -> str:
    """The observation key a camera's images go under: ``image`` for CAMERA, else ``image_<C>``."""
    check_camera(camera)
    return IMAGE_KEY if camera == CAMERA else f"{IMAGE_KEY}_{camera}"


def key_camera(key: str) -> str | None:
    """The camera an observation key names (inverse of ``camera_key``); None for non-image keys."""
    if key == IMAGE_KEY:
        return CAMERA
    if not key.startswith(IMAGE_KEY + "_"):
        return None
    return check_camera(key[len(IMAGE_KEY) + 1:], key)


def key_cameras(keys: Iterable[str]) -> tuple[str, ...]:
    """The cameras that observation keys name, in key order (``camera_key``)."""
    return tuple(c for c in (key_camera(k) for k in keys) if c is not None)


def check_camera(camera: str, where: str | None = None) -> str:
    if camera not in CAMERA_ROTATIONS:
        raise ActJepaError(f"{where or 'camera'}: no simulated camera {camera!r}; expected one of "
                           f"{sorted(CAMERA_ROTATIONS)}")
    return camera


def check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ActJepaError(f"{name} is {value!r}; expected an integer >= {minimum}")
    return int(value)


class SimArm:
    """One Meta-World task as a robot arm: reset to an episode's start, step an action, observe."""

    def __init__(self, task: str, seed: int = 0, image_size: int | None = None,
                 max_steps: int | None = None, proprio: bool = False,
                 joints: bool = False, cameras: tuple[str, ...] = (CAMERA,)) -> None:
        check_expert_task(task)
        self.task = task
        self.proprio = proprio  # also observe "proprio" (``proprio_of``), for policies that read it
        # also observe "joints": the positions sim_node publishes on joint_states, as float32
        self.joints = joints
        self.seed = check_count("seed", seed, 0)
        self.image_size = None if image_size is None else check_count("image_size", image_size, 1)
        env_cls = _benchmark(task, self.seed * SEED_STRIDE).train_classes[task]
        # every camera renders at image_size through one renderer, each under its own key
        self.cameras = tuple(check_camera(c) for c in cameras)
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ActJepaError(f"cameras {list(cameras)}: expected one or more distinct names of "
                               f"{sorted(CAMERA_ROTATIONS)}")
        self._env = env_cls()
        self._renderer: mujoco.Renderer | None = None
        if self.image_size is not None:
            vis = self._env.model.vis.global_  # the off-screen buffer must hold the picture
            vis.offwidth = max(vis.offwidth, self.image_size)
            vis.offheight = max(vis.offheight, self.image_size)
            if not CAST_SHADOWS:
                self._env.model.light_castshadow[:] = 0  # rendering only; physics unaffected
        default_steps = int(self._env.max_path_length)
        self.max_steps = (default_steps if max_steps is None
                          else check_count("max_steps", max_steps, 1))
        # Meta-World refuses to step past its own horizon; make that horizon ours.
        self._env.max_path_length = max(self.max_steps, default_steps)
        self._expert = make_expert(task)
        model = self._env.model
        self.joint_names: list[str] = list(ARM_JOINTS)
        self._qpos_idx = np.array([model.joint(n).qposadr[0] for n in ARM_JOINTS])
        self._qvel_idx = np.array([model.joint(n).dofadr[0] for n in ARM_JOINTS])
        self.steps = 0
        self.episode: int | None = None
        self._state: np.ndarray | None = None  # Meta-World's float64 observation
        self._last_action = np.zeros(ACTION_DIM, dtype=np.float32)

    def reset(self, episode: int) -> dict[str, np.ndarray]:
        """Put arm, object and goal at the start configuration of ``episode`` (module doc)."""
        episode = check_count("episode", episode, 0)
        bench = _benchmark(self.task, self.seed * SEED_STRIDE + episode // TASKS_PER_BENCHMARK)
        self._env.set_task(bench.train_tasks[episode % TASKS_PER_BENCHMARK])
        self._state, _ = self._env.reset()
        self.episode, self.steps = episode, 0
        self._last_action = np.zeros(ACTION_DIM, dtype=np.float32)
        return self._observe()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], bool]:
        """Apply ``action`` (clipped to [-1, 1]) for one control tick; return (obs, solved now)."""
        if self._state is None:
            raise ActJepaError(f"{self.task}: step() called before reset(); expected "
                               "reset(episode) first")
        if self.steps >= self.max_steps:
            raise ActJepaError(f"{self.task} episode {self.episode}: already ran max_steps="
                               f"{self.max_steps} steps; expected reset() before stepping again")
        raw = np.asarray(action, dtype=np.float64)
        if raw.shape != (ACTION_DIM,):
            raise ActJepaError(f"{self.task}: action has shape {raw.shape}; expected "
                               f"({ACTION_DIM},)")
        if not np.isfinite(raw).all():
            raise ActJepaError(f"{self.task}: action {raw.tolist()} contains NaN or Inf; expected "
                               "finite values")
        self._last_action = np.clip(raw, ACTION_LOW, ACTION_HIGH).astype(np.float32)
        self._state, _, _, _, info = self._env.step(self._last_action)
        self.steps += 1
        return self._observe(), bool(info["success"])

    def expert_action(self, aim: str = "hand") -> np.ndarray:
        """The scripted expert's action for the current state: float32, clipped to [-1, 1].

        ``aim="tool"`` (reach tasks only) moves the goal the expert reads by the hand-to-tool-
        centre offset: Meta-World's reach expert parks the observed hand on the goal, which
        leaves the tool centre, where success is measured, 4.5 cm from it against a 5 cm radius;
        aimed at the tool centre, its demos end with the whole radius as margin.
        """
        if self._state is None:
            raise ActJepaError(f"{self.task}: expert_action() called before reset(); expected "
                               "reset(episode) first")
        if check_expert_aim(self.task, aim) == "hand":
            return expert_action(self._expert, self._state)
        state = self._state.copy()
        state[GOAL] += state[HAND] - self._env.tcp_center  # hand goal that puts the tool on it
        return expert_action(self._expert, state)

    @property
    def last_action(self) -> np.ndarray:
        """The clipped action applied at the last step (zeros right after reset)."""
        return self._last_action.copy()

    def task_metrics(self) -> dict[str, float]:
        """Meta-World's own evaluation of the current state (``success``, ``obj_to_target``, ...):
        the success metric, which measures the tool centre point, not the observed hand."""
        if self._state is None:
            raise ActJepaError(f"{self.task}: task_metrics() called before reset(); expected "
                               "reset(episode) first")
        _, info = self._env.evaluate_state(self._state, self._last_action)
        return {key: float(value) for key, value in info.items()}

    def joint_positions(self) -> np.ndarray:
        """Arm hinge angles (rad) and finger slides (m), in ``joint_names`` order, float64."""
        return self._env.data.qpos[self._qpos_idx].copy()

    def joint_velocities(self) -> np.ndarray:
        """Velocities of ``joint_names`` (rad/s, m/s), float64."""
        return self._env.data.qvel[self._qvel_idx].copy()

    def render(self, camera: str = CAMERA) -> np.ndarray:
        """The camera's image, uint8 (S, S, 3), up is up. Needs ``image_size``."""
        if self.image_size is None:
            raise ActJepaError(f"{self.task}: render() needs image_size; expected SimArm(..., "
                               "image_size=N)")
        rotations = CAMERA_ROTATIONS[check_camera(camera)]
        try:
            if self._renderer is None:
                self._renderer = mujoco.Renderer(self._env.model, self.image_size,
                                                 self.image_size)
            self._renderer.update_scene(self._env.data, camera=camera)
            frame = self._renderer.render()
        except Exception as err:  # GL setup failures surface here with backend-specific types
            raise ActJepaError(
                f"could not render camera {camera!r} with MUJOCO_GL="
                f"{os.environ.get('MUJOCO_GL')!r} ({type(err).__name__}: {err}); expected working "
                "off-screen OpenGL (install libosmesa6, or set MUJOCO_GL=egl)") from err
        return np.ascontiguousarray(np.rot90(frame, rotations), dtype=np.uint8)

    def close(self) -> None:
        """Free the simulator and its GL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()

    def _observe(self) -> dict[str, np.ndarray]:
        obs = {"state": np.asarray(self._state, dtype=np.float32)}
        if self.proprio:
            obs["proprio"] = proprio_of(obs["state"])
        if self.joints:
            obs["joints"] = self.joint_positions().astype(np.float32)
        if self.image_size is not None:
            for camera in self.cameras:
                obs[camera_key(camera)] = self.render(camera)
        return obs


# what SimArm can observe: these, and "image_<C>" for each camera C but CAMERA (camera_key)
OBS_KEYS = ("state", "proprio", "joints", IMAGE_KEY)


def proprio_of(state: np.ndarray) -> np.ndarray:
    """The proprioceptive part of Meta-World states (..., 39) -> (..., 4): hand xyz, gripper."""
    return np.ascontiguousarray(state[..., PROPRIO], dtype=np.float32)
