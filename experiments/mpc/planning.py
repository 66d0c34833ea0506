"""Per-action planning time of latent MPC, per planner setting: what a control loop pays per tick.

    python -m experiments.mpc.planning --world runs/bench_mpc/push-v3/world/best.pt \
        --data runs/bench_mpc/push-v3-expert.hdf5 --out docs/BENCHMARKS.md

Each setting of an MPC study config (experiments/mpc/bench_mpc*.yaml) is built on one world
model and timed over real demo observations (one torch thread, after untimed warm-up calls), as
``policy.act(obs)``: encoder, goal scheme, every planner iteration's batched rollout. The
arithmetic it does is counted with torch's FLOP counter and set against the machine's measured
fp32 matmul peak, so "how close to the limit" is a number, not a guess.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from actjepa_core.bench.train_speed import matmul_peak_gflops, step_flops
from actjepa_core.config import apply_overrides
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.tables import markdown_table
from actjepa_core.units import MS_PER_S
from experiments.mpc.bench import MPCBenchConfig

WARMUP = 10


def untrained_parts(world, config) -> dict[str, dict]:
    """Freshly initialised value and prior weights: what they compute per action, and so its
    time, does not depend on what they learned (training them would only delay the timing)."""
    from actjepa_core.planning.prior import GoalPrior
    from actjepa_core.planning.value import GoalValue

    parts = {}
    if config.cost == "value":
        v = config.value
        parts["value_state"] = GoalValue(world.latent_dim, v.hidden, None, v.heads,
                                         v.pessimism).state_dict()
    if config.prior.mode != "none":
        parts["prior_state"] = GoalPrior(world.latent_dim, world.action_dim,
                                         config.prior.hidden).state_dict()
    return parts


def time_setting(world_path: Path, demos: list, setting, samples: int) -> dict:
    from actjepa_core.policies import FrozenWorld, MPCConfig, MPCPolicy

    config = apply_overrides(MPCConfig(), setting.overrides, where=f"setting {setting.name}")
    world = FrozenWorld.from_checkpoint(world_path)
    policy = MPCPolicy.build(world, demos, config, learned=untrained_parts(world, config))
    observations = [{"state": row} for ep in demos for row in ep.obs["state"]]
    goal = observations[-1]
    if config.goal == "subgoals":
        policy.set_subgoals([observations[len(observations) // 3], goal])
    else:
        policy.set_goal(goal)
    for obs in observations[:WARMUP]:
        policy.act(obs)
    flops = step_flops(lambda: policy.act(observations[0]))
    times = []
    for i in range(samples):
        obs = observations[(WARMUP + i) % len(observations)]
        t0 = time.perf_counter()
        policy.act(obs)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * MS_PER_S
    return {"setting": setting.name, "summary": policy.summary(), "p50_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)), "mflop_per_action": flops / 1e6,
            "gflops": flops / (np.median(ms) / MS_PER_S) / 1e9}


def run(config: MPCBenchConfig, world_path: Path, demos: list, samples: int = 300) -> str:
    torch.set_num_threads(1)
    peak, size = matmul_peak_gflops(torch.device("cpu"))
    rows = [time_setting(world_path, demos, s, samples) for s in config.settings]
    table = markdown_table(
        ["setting", "what", "p50 ms/action", "p99 ms/action", "MFLOP/action",
         "GFLOP/s (share of matmul peak)"],
        [[f"`{r['setting']}`", r["summary"], f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
          f"{r['mflop_per_action']:.1f}", f"{r['gflops']:.1f} ({100 * r['gflops'] / peak:.0f}%)"]
         for r in rows])
    return (f"One torch thread, {samples} actions per setting after {WARMUP} untimed; fp32 matmul "
            f"peak of this core {peak:.1f} GFLOP/s (n={size}).\n\n{table}")


COMMAND = "python -m experiments.mpc.planning"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="experiments/mpc/bench_mpc.yaml", help="settings YAML")
    p.add_argument("--world", required=True, help="world-model checkpoint (best.pt)")
    p.add_argument("--data", required=True, help="demos (episodes .hdf5): observations to plan "
                                                 "from, and the tracking memory")
    p.add_argument("--demos", type=int, default=90, help="demos used from --data")
    p.add_argument("--samples", type=int, default=300, help="timed actions per setting")
    p.add_argument("--out", default=None, help="markdown file to (re)write the section in")
    return p


def main(argv: list[str] | None = None) -> int:
    from actjepa_core.data.episodes import read_episodes
    from actjepa_core.evaluation.sections import write_section
    from experiments.mpc.bench import load_mpc_bench_config

    args = parser().parse_args(argv)
    try:
        config = load_mpc_bench_config(args.config).validate(args.config)
        demos = read_episodes(args.data, ["state"]).episodes[:args.demos]
        text = run(config, Path(args.world), demos, args.samples)
    except ActJepaError as err:
        print(f"{COMMAND}: error: {err}", file=sys.stderr)
        return 2
    if args.out:
        command = f"{COMMAND} --config {args.config} --world {args.world} --data {args.data}"
        # one block per config: bench_mpc -> planning, bench_mpc_learned -> planning-learned
        suffix = Path(args.config).stem.removeprefix("bench_mpc").strip("_").replace("_", "-")
        section = "planning" + (f"-{suffix}" if suffix else "")
        write_section(Path(args.out), section, f"Command: `{command}`.\n\n{text}")
        print(f"wrote the planning-time table into {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
