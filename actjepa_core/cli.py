"""The `actjepa` command: collect, train, report, bench.

Each subcommand parses its arguments and calls one function of the core; every ActJepaError is
printed as one line naming what was wrong, with a non-zero exit code and no traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ActJepaError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def cmd_collect(args: argparse.Namespace) -> None:
    from .episodes import write_episodes
    from .sim import collect_episodes

    episodes = collect_episodes(args.task, args.episodes, seed=args.seed,
                                image_size=args.image_size, max_steps=args.max_steps,
                                progress=not args.quiet)
    eps = list(episodes)
    n = write_episodes(args.out, eps, source=f"metaworld:{args.task}:seed={args.seed}")
    successes = sum(bool(ep.success) for ep in eps)
    steps = sum(ep.num_steps for ep in eps)
    print(f"wrote {n} episodes ({steps} steps, expert success {successes}/{n}) to {args.out}")


def cmd_train(args: argparse.Namespace) -> None:
    from .config import apply_overrides, load_train_config
    from .episodes import read_episodes
    from .train import train

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
    data = read_episodes(args.data, config.data.obs_keys or None)
    result = train(data, config, args.out, resume=args.resume, progress=not args.quiet)
    print(f"trained {result.steps} steps: loss {result.loss:.4g}, collapse "
          f"{result.collapse:.3g}, best val rel. loss {result.best_val_score:.4g} -> {result.run_dir}")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import plot_curves, summarise

    summary = summarise(args.run)
    if args.data:
        from .diagnostics import latent_diagnostics

        summary.update(latent_diagnostics(Path(args.run) / args.checkpoint, args.data))
    for key, value in summary.items():
        print(f"{key:>20}: {value:.6g}")
    print(f"{'curves':>20}: {plot_curves(args.run)}")


def cmd_bench_train(args: argparse.Namespace) -> None:
    from .bench_train import run_benchmark

    run_benchmark(data_path=args.data, out=args.out, steps=args.steps, repeats=args.repeats,
                  device=args.device, task=args.task, episodes=args.episodes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actjepa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("collect", help="record scripted-expert demos from Meta-World to HDF5")
    p.add_argument("--task", required=True, help="Meta-World v3 task, e.g. push-v3")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--out", required=True, help="episodes file to write (.hdf5)")
    p.add_argument("--image-size", type=int, default=None, help="also record SxS camera images")
    p.add_argument("--max-steps", type=int, default=None, help="cap per episode (default: task's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_collect)

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

    p = sub.add_parser("report", help="summarise a run directory and plot its curves")
    p.add_argument("run", help="run directory")
    p.add_argument("--data", default=None,
                   help="episodes file: also report latent diagnostics on its held-out demos")
    p.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run directory")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="benchmarks")
    bench = p.add_subparsers(dest="bench", required=True)
    b = bench.add_parser("train", help="training speed vs the seed's reference implementation")
    b.add_argument("--data", default=None, help="episodes file (default: collect push-v3 demos)")
    b.add_argument("--task", default="push-v3")
    b.add_argument("--episodes", type=int, default=50)
    b.add_argument("--steps", type=int, default=300, help="timed steps per repeat")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--device", default="cpu")
    b.add_argument("--out", default=None, help="markdown file to (re)write the results section in")
    b.set_defaults(func=cmd_bench_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ActJepaError as err:
        print(f"actjepa {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"actjepa {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
