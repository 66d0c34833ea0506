"""Step 5, closed-loop success: `actjepa eval` (a policy file or the expert, in the simulator)
and `actjepa results` (markdown tables from its JSON lines)."""
from __future__ import annotations

import argparse

from actjepa_core.errors import ActJepaError

# evaluation.goals.GOAL_SOURCES, default first (importing it here would load MuJoCo for every
# command; test_cli checks the two agree)
GOAL_SOURCES = ("demo", "state", "demo-subgoals", "demo-waypoints")


def cmd_eval(args: argparse.Namespace) -> None:
    from actjepa_core.evaluation.evaluate import (
        ExpertPolicy,
        append_jsonl,
        evaluate,
        format_table,
        result_row,
    )

    if args.threads < 0:
        raise ActJepaError(f"--threads is {args.threads}; expected 0 (torch's default) or more")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.expert:
        policy, name = ExpertPolicy(args.task), "expert"
    else:
        from actjepa_core.policies import load_policy

        policy, name = load_policy(args.policy, device=args.device), args.policy
    goal_source = args.goal if getattr(policy, "needs_goal", False) else None
    result = evaluate(policy, args.task, args.episodes, noise=args.noise, seed=args.seed,
                      max_steps=args.max_steps, progress=not args.quiet, goal_source=args.goal)
    row = result_row(result, name, policy.policy_type, goal_source,
                     variant=getattr(policy, "variant", ""))
    append_jsonl(args.out, row)
    print(format_table([row]))
    print(f"appended to {args.out}")


def cmd_results(args: argparse.Namespace) -> None:
    from actjepa_core.evaluation.results import noise_table, read_rows, success_table

    rows = read_rows(args.jsonl)
    print(noise_table(rows, args.by_noise) if args.by_noise else success_table(rows, args.noise))


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="closed-loop success rate of a policy file (or the expert) "
                                    "on a simulated task")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--policy", help="policy file (.pt) from `actjepa train-policy`")
    who.add_argument("--expert", action="store_true", help="Meta-World's scripted expert instead")
    p.add_argument("--task", required=True, help="Meta-World v3 task, e.g. push-v3")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--noise", type=float, default=0.0,
                   help="test-time Gaussian noise std on the normalised observation")
    p.add_argument("--seed", type=int, default=1,
                   help="start configurations (collect's default demos use seed 0)")
    p.add_argument("--max-steps", type=int, default=None, help="cap per episode (default: task's)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads torch may use for one action (0: torch's default, all "
                        "cores); as the policy node's torch_threads, 1 keeps the per-action time "
                        "steady when other processes share the cores")
    p.add_argument("--goal", choices=GOAL_SOURCES, default=GOAL_SOURCES[0],
                   help="policies that plan toward a goal (MPC): how each episode's goal "
                        "observation is built, the expert's end state (demo) or the start "
                        "state moved onto the goal position (state), expert subgoals then "
                        "its end state (demo-subgoals), or the expert's path as waypoints every "
                        "few ticks (demo-waypoints); default %(default)s")
    p.add_argument("--out", default="runs/eval.jsonl", help="results file to append a line to")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)


def add_results_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="markdown success table from `actjepa eval` JSON lines")
    p.add_argument("jsonl", help="results file written by `actjepa eval --out`")
    p.add_argument("--noise", type=float, default=0.0, help="which test-time noise level")
    p.add_argument("--by-noise", default=None, metavar="KIND",
                   help="instead: one policy kind (e.g. bc) across noise levels")
    p.set_defaults(func=cmd_results)
