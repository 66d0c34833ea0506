"""Latent MPC success and planning time per planner and goal scheme on the simulated arm
(experiments/mpc/bench.py says what is measured); resumable, one JSON line per finished cell.

    python -m experiments.mpc.run --config experiments/mpc/bench_mpc.yaml
    python -m experiments.mpc.run --config experiments/mpc/bench_mpc_image.yaml \\
        --results docs/results/mpc-image.jsonl
    python -m experiments.mpc.run --config experiments/mpc/bench_mpc.yaml --report --out FILE.md
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from actjepa_core.errors import ActJepaError
from experiments.entry import run_main
from experiments.mpc.bench import MPCBenchConfig, load_mpc_bench_config

COMMAND = "python -m experiments.mpc.run"
DEFAULT_CONFIG = "experiments/mpc/bench_mpc.yaml"
DEFAULT_WORK = "runs/bench_mpc"  # demos and world models


def only(config: MPCBenchConfig, tasks: list[str] | None, settings: list[str] | None,
         where: str) -> MPCBenchConfig:
    """The bench config restricted to some of its tasks and settings, in the order given (the
    tables still cover the whole config)."""
    for kind, asked, known in (("task", tasks, config.tasks),
                               ("setting", settings, [s.name for s in config.settings])):
        unknown = sorted(set(asked or ()) - set(known))
        if unknown:
            raise ActJepaError(f"{where}: no {kind} {unknown[0]!r}; expected one of {known}")
    by_name = {s.name: s for s in config.settings}
    return replace(config, tasks=list(tasks or config.tasks),
                   settings=[by_name[n] for n in settings] if settings else config.settings)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=DEFAULT_CONFIG, help="settings YAML")
    p.add_argument("--work", default=DEFAULT_WORK,
                   help="demos and world models (reused; one folder per world setting)")
    p.add_argument("--results", default="docs/results/mpc.jsonl", help="JSON lines file")
    p.add_argument("--tasks", nargs="+", default=None,
                   help="run only these of the config's tasks, in this order")
    p.add_argument("--settings", nargs="+", default=None,
                   help="run only these of the config's settings (by name)")
    p.add_argument("--report", action="store_true", help="only print the table from the results")
    p.add_argument("--out", default=None,
                   help="markdown file to (re)write the MPC section in, e.g. docs/results/mpc.md")
    p.add_argument("--quiet", action="store_true")
    return p


def run_study(args: argparse.Namespace) -> None:
    from experiments.mpc.bench import report, run

    config = load_mpc_bench_config(args.config).validate(args.config)
    if not args.report:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        run(only(config, args.tasks, args.settings, args.config), Path(args.work),
            Path(args.results), progress=not args.quiet)
    text = report(config, Path(args.results))
    if args.out:
        from actjepa_core.evaluation.sections import write_section

        work = "" if args.work == DEFAULT_WORK else f" --work {args.work}"
        command = f"{COMMAND} --config {args.config}{work} --results {args.results}"
        section = Path(args.results).stem  # one block per results file: mpc, mpc-image, ...
        write_section(Path(args.out), section, f"Command: `{command}`.\n\n{text}")
        print(f"wrote the MPC table into {args.out}")
    else:
        print(text)


def main(argv: list[str] | None = None) -> int:
    return run_main(parser(), run_study, COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
