"""Moved: the simulated arm lives in actjepa_core/sim/ (arm.py, experts.py, collect.py). This
module only re-exports the old names for code not yet moved over (experiments/camera and a few
tests); import from actjepa_core.sim instead. To be deleted once nothing imports it."""
from actjepa_core.sim.arm import (
    ACTION_DIM,
    ARM_JOINTS,
    EXTRA_STEPS_AFTER_SUCCESS,
    STATE_DIM,
    SimArm,
    SuccessStop,
    proprio_of,
)
from actjepa_core.sim.collect import collect_episodes
from actjepa_core.sim.experts import TASKS, expert_action, make_expert

__all__ = ["ACTION_DIM", "ARM_JOINTS", "EXTRA_STEPS_AFTER_SUCCESS", "STATE_DIM", "TASKS", "SimArm",
           "SuccessStop", "collect_episodes", "expert_action", "make_expert", "proprio_of"]
