"""Meta-World's scripted experts, one per v3 task: which task has which, and the expert's action
for a state, clipped to the arm's action bounds. (Task names alone: tasks.py, which imports no
MuJoCo.)"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")  # before mujoco is first imported (arm.py says why)
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from metaworld import policies  # noqa: E402

from actjepa_core.sim.tasks import MT50, check_task  # noqa: E402

ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # Meta-World's action space bounds
_EXPERT_WARNING = r"Constant\(s\) may be too high"  # experts' harmless "will be clipped" note

TASKS: dict[str, type] = {task: policies.ENV_POLICY_MAP[task] for task in MT50}
"""Supported Meta-World task name -> its scripted expert policy class: every v3 task (MT50, in
Meta-World's order; tasks.py holds the names without importing MuJoCo)."""


def check_expert_task(task: str) -> None:
    check_task(task)


def make_expert(task: str) -> Any:
    """Meta-World's scripted expert policy for ``task``."""
    check_expert_task(task)
    return TASKS[task]()


def expert_action(expert: Any, state: np.ndarray) -> np.ndarray:
    """The scripted ``expert``'s action for a Meta-World state: float32, clipped to [-1, 1]."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EXPERT_WARNING, category=UserWarning)
        action = expert.get_action(np.asarray(state, dtype=np.float64))
    return np.clip(action, ACTION_LOW, ACTION_HIGH).astype(np.float32)
