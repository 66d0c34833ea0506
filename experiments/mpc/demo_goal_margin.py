"""How far inside the success radius the ``demo`` goals of latent MPC lie.

MPC evaluations (``--goal demo``) plan toward the scripted expert's observation a few ticks after
its first success in the same start configuration. A goal-reaching policy that matches that
observation only to within the goal's own margin (success radius minus the goal's distance to the
target, in the simulator's success metric) fails however well it plans. Meta-World's scripted
reach-v3 policy steers the hand body (obs[0:3]) onto the target, while success measures the tool
centre point between the fingers, a few cm lower: this script measures the margin per task.

    python experiments/mpc/demo_goal_margin.py [--episodes 50] [--seed 1] \
        [--out docs/results/demo-goal-margin.jsonl]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from actjepa_core.evaluation.evaluate import append_jsonl
from actjepa_core.evaluation.goals import demo_path
from actjepa_core.sim.arm import SimArm

# Meta-World v3's success radii (the tasks' evaluate_state): the metric info["obj_to_target"]
# measures hand to target on reach-v3, object to target on push-v3 and pick-place-v3
SUCCESS_RADIUS = {"reach-v3": 0.05, "push-v3": 0.05, "pick-place-v3": 0.07}


def goal_distances(task: str, episodes: int, seed: int) -> np.ndarray:
    """(episodes,) the success metric at each demo goal (m)."""
    arm = SimArm(task, seed=seed)
    try:
        out = []
        for episode in range(episodes):
            demo_path(arm, episode)  # leaves the arm at the goal observation
            out.append(arm.task_metrics()["obj_to_target"])
        return np.asarray(out)
    finally:
        arm.close()


def margin_row(task: str, episodes: int, seed: int) -> dict:
    d = goal_distances(task, episodes, seed)
    radius = SUCCESS_RADIUS[task]
    margin = radius - d
    return {"task": task, "episodes": episodes, "seed": seed, "radius_m": radius,
            "goal_distance_m": {"min": round(float(d.min()), 4),
                                "median": round(float(np.median(d)), 4),
                                "max": round(float(d.max()), 4)},
            "margin_m": {"min": round(float(margin.min()), 4),
                         "median": round(float(np.median(margin)), 4)},
            "share_margin_under_1cm": round(float((margin < 0.01).mean()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1, help="the MPC evaluations' eval_seed")
    parser.add_argument("--out", default=None, help="append one JSON line per task here")
    args = parser.parse_args()
    for task in SUCCESS_RADIUS:
        row = margin_row(task, args.episodes, args.seed)
        print(json.dumps(row))
        if args.out:
            append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
