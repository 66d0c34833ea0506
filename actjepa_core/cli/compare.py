"""Step 6, representation objectives on your own demos: `actjepa compare`."""
from __future__ import annotations

import argparse
from pathlib import Path


def cmd_compare(args: argparse.Namespace) -> None:
    from actjepa_core.data.episodes import read_episodes
    from actjepa_core.evaluation.compare import compare, table, write_jsonl

    data = read_episodes(args.data, args.obs_keys.split(",") if args.obs_keys else None)
    rows = compare(data, Path(args.out), args.objectives.split(","),
                   [float(s) for s in args.sigmas.split(",")], args.steps, args.set, args.seed,
                   args.bc_steps, progress=not args.quiet)
    write_jsonl(rows, Path(args.out) / "compare.jsonl")
    print(table(rows))


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    from actjepa_core.objectives import OBJECTIVES

    p = sub.add_parser("compare", help="every representation objective on your own demos: "
                                       "held-out BC action error, clean and under noise")
    p.add_argument("--data", required=True, help="episodes file (.hdf5): your demonstrations")
    p.add_argument("--out", required=True, help="folder for the encoders and compare.jsonl")
    p.add_argument("--objectives", default=",".join(OBJECTIVES),
                   help="comma-separated objectives (default: all)")
    p.add_argument("--sigmas", default="0,0.05,0.1,0.2,0.3",
                   help="test-time noise levels on the model input")
    p.add_argument("--steps", type=int, default=5000, help="encoder training steps (each)")
    p.add_argument("--bc-steps", type=int, default=2000, help="BC head steps (each)")
    p.add_argument("--obs-keys", default=None, help="comma-separated keys (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="train config override for every objective, e.g. model.latent_dim=64")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_compare)
