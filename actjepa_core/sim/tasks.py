"""The Meta-World v3 tasks the simulated arm offers: every task with a scripted expert.

Names only, so that parsers and ROS nodes can check a task name without importing MuJoCo
(``sim.TASKS`` maps the same names to the experts; test_tasks checks the two against Meta-World's
own MT10/MT50 lists). ``MT10`` and ``MT50`` keep Meta-World's order.
"""
from __future__ import annotations

from actjepa_core.errors import ActJepaError

MT10: tuple[str, ...] = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3")
"""Meta-World's MT10 benchmark (metaworld.env_dict.MT10_V3)."""

MT50: tuple[str, ...] = (
    "assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3", "button-press-topdown-v3",
    "button-press-topdown-wall-v3", "button-press-v3", "button-press-wall-v3",
    "coffee-button-v3", "coffee-pull-v3", "coffee-push-v3", "dial-turn-v3", "disassemble-v3",
    "door-close-v3", "door-lock-v3", "door-open-v3", "door-unlock-v3", "hand-insert-v3",
    "drawer-close-v3", "drawer-open-v3", "faucet-open-v3", "faucet-close-v3", "hammer-v3",
    "handle-press-side-v3", "handle-press-v3", "handle-pull-side-v3", "handle-pull-v3",
    "lever-pull-v3", "pick-place-wall-v3", "pick-out-of-hole-v3", "pick-place-v3",
    "plate-slide-v3", "plate-slide-side-v3", "plate-slide-back-v3", "plate-slide-back-side-v3",
    "peg-insert-side-v3", "peg-unplug-side-v3", "soccer-v3", "stick-push-v3", "stick-pull-v3",
    "push-v3", "push-wall-v3", "push-back-v3", "reach-v3", "reach-wall-v3", "shelf-place-v3",
    "sweep-into-v3", "sweep-v3", "window-open-v3", "window-close-v3")
"""Meta-World's MT50 benchmark (metaworld.env_dict.MT50_V3): every v3 task, each with a
scripted expert in metaworld.policies."""

TASK_SETS: dict[str, tuple[str, ...]] = {"mt10": MT10, "mt50": MT50}


def check_task(task: str) -> str:
    """``task`` if it is a known task name; otherwise one line saying what is known."""
    if task not in MT50:
        stem = task.split("-v")[0]
        close = sorted((t for t in MT50 if stem and stem in t),
                       key=lambda t: (not t.startswith(stem), len(t)))
        hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
        raise ActJepaError(f"unknown task {task!r}{hint}; expected a Meta-World v3 task with a "
                           f"scripted expert, one of {', '.join(sorted(MT50))}")
    return task


def resolve_tasks(spec: str) -> list[str]:
    """``mt10`` | ``mt50`` | comma-separated task names -> the task list (in that order, once
    each)."""
    spec = spec.strip()
    if spec.lower() in TASK_SETS:
        return list(TASK_SETS[spec.lower()])
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise ActJepaError(f"--tasks {spec!r} names no task; expected mt10, mt50 or a "
                           "comma-separated list such as push-v3,door-open-v3")
    return list(dict.fromkeys(check_task(name) for name in names))


# what the scripted expert steers onto the goal: the observed hand (Meta-World's experts) or the
# tool centre between the fingers, where reach success is measured (SimArm.expert_action)
EXPERT_AIMS = ("hand", "tool")
TOOL_AIM_TASKS = ("reach-v3",)  # experts that steer the hand to the goal position


def check_expert_aim(task: str, aim: str) -> str:
    """``aim`` if the expert of ``task`` can steer it onto the goal (EXPERT_AIMS)."""
    if aim not in EXPERT_AIMS:
        raise ActJepaError(f"expert aim {aim!r}: expected one of {list(EXPERT_AIMS)}")
    if aim == "tool" and task not in TOOL_AIM_TASKS:
        raise ActJepaError(f"expert aim 'tool' on {task}: expected one of "
                           f"{list(TOOL_AIM_TASKS)}, whose expert steers the hand to the goal")
    return aim
