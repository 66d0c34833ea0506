"""Step 9, benchmarks: `actjepa bench train` (training speed vs the paper's reference code,
images in memory vs streamed)."""
from __future__ import annotations

import argparse


def cmd_bench_train(args: argparse.Namespace) -> None:
    from actjepa_core.bench import train_speed

    if args.obs == "image":
        train_speed.run_image_benchmark(
            data_path=args.data, out=args.out, budget_mb=args.budget_mb,
            steps=args.steps or train_speed.IMAGE_STEPS, workers=tuple(args.workers),
            batch=args.batch_size, device=args.device,
            task=args.task if args.task != "push-v3" else "reach-v3")
        return
    train_speed.run_benchmark(data_path=args.data, out=args.out, steps=args.steps or 300,
                              repeats=args.repeats, device=args.device, task=args.task,
                              episodes=args.episodes)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks")
    bench = p.add_subparsers(dest="bench", required=True)
    b = bench.add_parser("train", help="training speed vs the paper's reference implementation")
    b.add_argument("--data", default=None, help="episodes file (default: collect push-v3 demos)")
    b.add_argument("--task", default="push-v3")
    b.add_argument("--episodes", type=int, default=50)
    b.add_argument("--steps", type=int, default=None,
                   help="timed steps per repeat (default 300; --obs image: 30)")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--device", default="cpu")
    b.add_argument("--out", default=None, help="markdown file to (re)write the results section in")
    b.add_argument("--obs", choices=("state", "image"), default="state",
                   help="image: 64x64 image training held in memory vs streamed from disk, on a "
                        "dataset 4.5x --budget-mb (made from reach-v3 renders unless --data)")
    b.add_argument("--budget-mb", type=float, default=64.0,
                   help="--obs image: the memory budget (data.memory_budget_gb) of the run")
    b.add_argument("--workers", type=int, nargs="+", default=[1],
                   help="--obs image: streaming DataLoader workers, one run per value")
    b.add_argument("--batch-size", type=int, default=64, help="--obs image: batch")
    b.set_defaults(func=cmd_bench_train)
