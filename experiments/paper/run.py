"""The paper's four tables (main, noise, ablations, data efficiency) re-measured in the simulator:
train every representation objective, a BC head on each frozen encoder, and evaluate in closed
loop; one JSON line per finished cell, so a stopped run resumes where it stopped.

    python -m experiments.paper.run --config experiments/paper/paper_state.yaml --jobs 2
    python -m experiments.paper.run --config experiments/paper/paper_image.yaml --report \\
        --out docs/results/paper.md
    python -m experiments.paper.run --quick --work /tmp/paper   # the pipeline in about a minute
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from experiments.entry import run_main
from experiments.paper.plan import TRAIN_DEVICES, PaperConfig, load_paper_config

COMMAND = "python -m experiments.paper.run"


def quick_config(config: PaperConfig) -> PaperConfig:
    """The pipeline end to end in about a minute: one task, few demos, steps and episodes."""
    return replace(config, tasks=config.tasks[:1], demos=4, data_demos=[2, 4], seeds=[0],
                   sigmas=[0.0, 0.1], eval_episodes=2, max_steps=30, train_steps=20,
                   train_batch=32, bc_steps=20, extra_methods=config.extra_methods[:1],
                   priority_methods=config.priority_methods[:1],
                   train_overrides=[*config.train_overrides, "run.val_every=10",
                                    "run.log_every=10", "run.checkpoint_every=10"]).validate()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="paper config YAML (experiments/paper/"
                                                  "paper_state.yaml, paper_image.yaml)")
    p.add_argument("--work", default="runs/paper", help="demos, encoders and heads (reused)")
    p.add_argument("--results", default=None,
                   help="JSON lines file (default docs/results/paper-<obs>.jsonl)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (one per core)")
    p.add_argument("--quick", action="store_true",
                   help="one task, a few demos/steps/episodes: checks the pipeline end to end")
    p.add_argument("--report", action="store_true",
                   help="only rebuild the tables (and plots, with --out) from the results file")
    p.add_argument("--out", default=None,
                   help="markdown file to (re)write the tables section in, e.g. "
                        "docs/results/paper.md; the plots go beside it")
    p.add_argument("--device", default=None, choices=TRAIN_DEVICES,
                   help="where the encoders train (default: the config's train_device, cpu); "
                        "BC heads and evaluation stay on the CPU")
    p.add_argument("--quiet", action="store_true")
    return p


def run_study(args: argparse.Namespace) -> None:
    from experiments.paper.report import report, write_report
    from experiments.paper.runner import run

    config = load_paper_config(args.config)
    if args.quick:
        config = quick_config(config)
    if args.device:
        config = replace(config, train_device=args.device).validate()
    results = Path(args.results or f"docs/results/paper-{config.obs}.jsonl")
    if not args.report:
        run(config, Path(args.work), results, jobs=args.jobs, progress=not args.quiet)
    command = COMMAND + (f" --config {args.config}" if args.config else "")
    if args.out:
        write_report(config, results, Path(args.out), command)
        print(f"wrote the {config.obs} tables into {args.out} (plots beside it)")
    else:
        print(report(config, results, command))


def main(argv: list[str] | None = None) -> int:
    return run_main(parser(), run_study, COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
