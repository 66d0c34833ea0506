"""Steps 2, 3 and 8, pretraining and what came out of it: `actjepa train` (one process or DDP
under torchrun, in memory or streamed) and `actjepa report`."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def cmd_train(args: argparse.Namespace) -> None:
    from actjepa_core.config import apply_overrides, load_train_config
    from actjepa_core.data.streaming import open_training_data
    from actjepa_core.training.trainer import train

    config_path = args.config
    if config_path is None and args.resume and (Path(args.out) / "config.yaml").exists():
        config_path = Path(args.out) / "config.yaml"
    config = load_train_config(config_path)
    overrides = list(args.set)
    for flag, key in (("steps", "optim.steps"), ("seed", "run.seed"), ("device", "run.device"),
                      ("batch_size", "optim.batch_size")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    config = apply_overrides(config, overrides)
    data, plan = open_training_data(args.data, config.data.obs_keys or None, config.data.loader,
                                    config.data.memory_budget_gb)
    if plan.loader == "stream" and os.environ.get("RANK", "0") == "0":
        print(f"{args.data}: {plan.describe()}")
    result = train(data, config, args.out, resume=args.resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    print(f"trained {result.steps} steps: loss {result.loss:.4g}, collapse "
          f"{result.collapse:.3g}, best val rel. loss {result.best_val_score:.4g} -> "
          f"{result.run_dir}")
    if config.objective == "bc":
        print(f"camera policy -> {write_end_to_end_policy(result.run_dir)}")


def write_end_to_end_policy(run_dir: Path) -> Path:
    """An end-to-end run (objective bc) is a policy already: its last weights as a policy file,
    ``run_dir/policy.pt``, which `actjepa eval` and the policy node load."""
    from actjepa_core.policies import EndToEndPolicy, FrozenWorld

    out = Path(run_dir) / "policy.pt"
    EndToEndPolicy.build(FrozenWorld.from_checkpoint(Path(run_dir) / "last.pt"), None).save(out)
    return out


def cmd_report(args: argparse.Namespace) -> None:
    from actjepa_core.evaluation.report import markdown_table, plot_curves, summarise

    summaries = []
    for run in args.runs:
        summary = summarise(run)
        if args.data:
            from actjepa_core.evaluation.diagnostics import latent_diagnostics

            summary.update(latent_diagnostics(Path(run) / args.checkpoint, args.data))
        summaries.append(summary)
    if args.markdown:
        print(markdown_table([str(r) for r in args.runs], summaries))
        return
    for run, summary in zip(args.runs, summaries):
        print(f"{'run':>20}: {run}")
        for key, value in summary.items():
            print(f"{key:>20}: {value:.6g}")
        print(f"{'curves':>20}: {plot_curves(run)}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="pretrain ACT-JEPA on an episodes file (Algorithm 1)")
    p.add_argument("--data", required=True, help="episodes file (.hdf5)")
    p.add_argument("--config", default=None, help="train config YAML (default: built-in)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set ema.enabled=false")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)


    p = sub.add_parser("report", help="summarise run directories and plot their curves")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--markdown", action="store_true", help="one markdown table row per run")
    p.add_argument("--data", default=None,
                   help="episodes file: also report latent diagnostics on its held-out demos")
    p.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run directory")
    p.set_defaults(func=cmd_report)
