"""The `actjepa` command: collect, convert, recover, import, export, train, report, train-policy,
eval, results, compare, bench.

One module per step of the README: demos.py (1), train.py (2, 3, 8), policies.py (4), evaluate.py
(5), compare.py (6), bench.py (9). Each subcommand parses its arguments and calls one function of
the core; every ActJepaError is printed as one line naming what was wrong, with a non-zero exit
code and no traceback.
"""
from __future__ import annotations

import argparse
import sys

from actjepa_core.cli import bench, compare, demos, evaluate, policies, train
from actjepa_core.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_SKIPPED
from actjepa_core.cli.evaluate import GOAL_SOURCES
from actjepa_core.cli.policies import POLICY_COMMANDS
from actjepa_core.errors import ActJepaError

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_SKIPPED", "GOAL_SOURCES", "POLICY_COMMANDS",
           "build_parser", "main"]

EXAMPLES: dict[str, str] = {
    "collect": "actjepa collect --task push-v3 --episodes 100 --out data/push.hdf5\n"
               "actjepa collect --task pick-place-v3 --episodes 50 --image-size 64 --out "
               "data/pp64.hdf5\n"
               "actjepa collect --task reach-v3 --episodes 50 --image-size 64 --obs "
               "image,image_behindGripper,joints --out data/reach2cam.hdf5\n"
               "actjepa collect --tasks mt10 --episodes 100 --out data/mt10",
    "convert": "actjepa convert bags/ --config config/recorder.yaml --out data/robot.hdf5",
    "recover": "actjepa recover bags/\nactjepa recover bags/episode_3",
    "import": "actjepa import robomimic lift/ph/low_dim_v15.hdf5 --out data/lift.hdf5\n"
              "actjepa import lerobot ~/datasets/pusht --out data/pusht.hdf5 --image-size 64",
    "import robomimic": "actjepa import robomimic lift/ph/low_dim_v15.hdf5 --out "
                        "data/lift.hdf5 --filter train\n"
                        "actjepa import robomimic lift/ph/image_v15.hdf5 --out data/lift64.hdf5 "
                        "--cameras agentview_image --image-size 64",
    "import lerobot": "actjepa import lerobot ~/datasets/pusht --out data/pusht.hdf5 "
                      "--image-size 64\n"
                      "actjepa import lerobot ~/datasets/aloha --out data/aloha.hdf5 "
                      "--cameras '' --max-episodes 20",
    "export": "actjepa export lerobot data/robot.hdf5 --out datasets/robot --fps 80",
    "export lerobot": "actjepa export lerobot data/robot.hdf5 --out datasets/robot --fps 80\n"
                      "actjepa export lerobot data/cam.hdf5 --out datasets/cam --no-video "
                      "--task push",
    "train": "actjepa train --data data/push.hdf5 --out runs/push\n"
             "actjepa train --data data/push.hdf5 --out runs/push --resume\n"
             "actjepa train --data data/push.hdf5 --out runs/no-ema --set ema.enabled=false",
    "report": "actjepa report runs/push --data data/push.hdf5\n"
              "actjepa report runs/a runs/b --markdown",
    "eval": "actjepa eval --policy policies/bc.pt --task push-v3 --episodes 50 --seed 1\n"
            "actjepa eval --expert --task push-v3 --episodes 50",
    "train-policy": "actjepa train-policy bc --encoder runs/push/best.pt --data data/push.hdf5 "
                    "--out policies/bc.pt --chunk 10",
    "train-policy bc": "actjepa train-policy bc --encoder runs/push/best.pt --data "
                       "data/push.hdf5 --out policies/bc.pt --chunk 10",
    "train-policy nn": "actjepa train-policy nn --encoder runs/push/best.pt --data "
                       "data/push.hdf5 --out policies/nn.pt --k 1",
    "train-policy mpc": "actjepa train-policy mpc --encoder runs/play/best.pt --out "
                        "policies/mpc.pt --config config/policy_mpc.yaml",
    "train-policy e2e": "actjepa train-policy e2e --encoder runs/cam/best.pt --data "
                        "data/cam.hdf5 --out policies/e2e.pt",
    "compare": "actjepa compare --data data/my_robot.hdf5 --out runs/compare\n"
               "actjepa compare --data data/my_robot.hdf5 --out runs/compare --objectives "
               "act-jepa,raw --steps 2000",
    "results": "actjepa results runs/eval.jsonl\nactjepa results runs/eval.jsonl --by-noise bc",
    "bench": "actjepa bench train --out docs/BENCHMARKS.md",
    "bench train": "actjepa bench train --out docs/BENCHMARKS.md\n"
                   "actjepa bench train --steps 100 --repeats 2\n"
                   "actjepa bench train --obs image --budget-mb 64 --out docs/BENCHMARKS.md",
}
"""Shown under "examples:" in each subcommand's --help (a parser's own epilog wins)."""


def add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give every subcommand parser below ``parser`` its EXAMPLES epilog."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            key = f"{path} {name}".strip()
            if child.epilog is None and key in EXAMPLES:
                child.epilog = "examples:\n" + "\n".join(
                    f"  {line}" for line in EXAMPLES[key].splitlines())
                child.formatter_class = argparse.RawDescriptionHelpFormatter
            add_examples(child, key)


def build_parser() -> argparse.ArgumentParser:
    from actjepa_core import __version__

    parser = argparse.ArgumentParser(prog="actjepa", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demos.add_parsers(sub)  # collect, convert, recover, import, export
    train.add_parsers(sub)  # train, report
    evaluate.add_eval_parser(sub)
    policies.add_train_policy_parser(sub)
    compare.add_compare_parser(sub)
    evaluate.add_results_parser(sub)
    bench.add_parsers(sub)
    add_examples(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except ActJepaError as err:
        print(f"actjepa {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"actjepa {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code or 0

