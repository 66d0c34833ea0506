"""Where a camera policy's reach-v3 misses end, to tell a miss by the success radius's margin
from a policy that leaves the goal: one line per policy, its misses listed.

Meta-World's reach expert parks the observed hand on the goal, which leaves the tool centre
(where success is measured) 4.5 cm from it against a 5 cm radius. A miss that ends with the tool
centre within a few cm of that radius stopped short; one that came that close and ended far off
passed the goal and left; the rest never came near.

    python -m experiments.camera.reach_misses POLICY_OR_RUN_CHECKPOINT [--episodes 50] \
        [--seed 1] [--max-steps 150] [--out docs/results/reach-misses.jsonl]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from actjepa_core.evaluation.evaluate import append_jsonl, git_commit, sim_cameras
from actjepa_core.policies.base import Policy, load_policy
from actjepa_core.policies.end_to_end import EndToEndConfig, EndToEndPolicy
from actjepa_core.policies.world import FrozenWorld
from actjepa_core.sim.arm import GOAL, HAND, SimArm
from experiments.mpc.demo_goal_margin import SUCCESS_RADIUS

TASK = "reach-v3"
NEAR = SUCCESS_RADIUS[TASK] + 0.03  # "near the goal": within 3 cm of the success radius
MISS_KINDS = ("stopped short", "passed and left", "never near")


def policy_at(path: Path) -> Policy:
    """A shipped policy file, or a camera-study run's checkpoint (last.pt) as its policy."""
    if path.name == "last.pt":
        return EndToEndPolicy(FrozenWorld.from_checkpoint(path), EndToEndConfig())
    return load_policy(path)


def episode_ends(policy: Policy, episodes: int, seed: int, max_steps: int) -> list[dict]:
    """Per episode: success, the goal, where the hand ended, the tool centre's closest and final
    distance to the goal (m)."""
    size, cameras = sim_cameras(policy)
    arm = SimArm(TASK, seed=seed, image_size=size, max_steps=max_steps, joints=True,
                 cameras=cameras)
    out = []
    try:
        for episode in range(episodes):
            obs, success, tool = arm.reset(episode), False, []
            policy.reset()
            while arm.steps < arm.max_steps and not success:
                obs, success = arm.step(policy.act(obs))
                tool.append(arm.task_metrics()["obj_to_target"])
            state = obs["state"]  # the simulator's; the policy never reads it
            out.append({"episode": episode, "success": success,
                        "goal": [round(float(v), 3) for v in state[GOAL]],
                        "hand_end": [round(float(v), 3) for v in state[HAND]],
                        "tool_min": round(min(tool), 4), "tool_end": round(tool[-1], 4)})
    finally:
        arm.close()
    return out


def miss_kind(end: dict) -> str:
    """One of MISS_KINDS, from the tool centre's closest and final distance to the goal."""
    if end["tool_end"] < NEAR:
        return MISS_KINDS[0]
    return MISS_KINDS[1] if end["tool_min"] < NEAR else MISS_KINDS[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy", type=Path)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=150)
    p.add_argument("--out", type=Path, default=Path("docs/results/reach-misses.jsonl"))
    args = p.parse_args(argv)
    ends = episode_ends(policy_at(args.policy), args.episodes, args.seed, args.max_steps)
    misses = [e for e in ends if not e["success"]]
    kinds = {k: sum(miss_kind(e) == k for e in misses) for k in MISS_KINDS}
    row = {"policy": str(args.policy), "task": TASK, "seed": args.seed,
           "episodes": args.episodes, "max_steps": args.max_steps,
           "successes": len(ends) - len(misses), "miss_kinds": kinds,
           "near_m": NEAR, "misses": misses, "git_commit": git_commit()}
    append_jsonl(args.out, row)
    print(json.dumps({k: row[k] for k in ("policy", "successes", "miss_kinds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
