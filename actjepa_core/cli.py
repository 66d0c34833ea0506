"""The `actjepa` command: collect, convert, train, report, train-policy, eval, bench.

Each subcommand parses its arguments and calls one function of the core; every ActJepaError is
printed as one line naming what was wrong, with a non-zero exit code and no traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from actjepa_core.errors import ActJepaError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_SKIPPED = 3  # convert: written, but some bag or episode was skipped (see the summary)
# evaluation.goals.GOAL_SOURCES, default first (importing it here would load MuJoCo for every
# command; test_cli checks the two agree)
GOAL_SOURCES = ("demo", "state", "demo-subgoals", "demo-waypoints")


def cmd_collect(args: argparse.Namespace) -> None:
    """One task to --out, or each task of --tasks to --out/<task>.hdf5."""
    from actjepa_core.evaluation.tasks import check_task, resolve_tasks

    if args.tasks is None:
        collect_one(args, check_task(args.task), Path(args.out))
        return
    tasks = resolve_tasks(args.tasks)
    for i, task in enumerate(tasks):
        if not args.quiet:
            print(f"[{i + 1}/{len(tasks)}] {task}")
        collect_one(args, task, Path(args.out) / f"{task}.hdf5")


def collect_one(args: argparse.Namespace, task: str, out: Path) -> None:
    from actjepa_core.data.episodes import write_episodes
    from actjepa_core.evaluation.sim import collect_episodes

    keys = args.obs.split(",") if args.obs else None
    episodes = collect_episodes(task, args.episodes, seed=args.seed,
                                image_size=args.image_size, max_steps=args.max_steps,
                                progress=not args.quiet, explore=args.explore, keys=keys)
    eps = list(episodes)
    source = f"metaworld:{task}:seed={args.seed}" + (f":explore={args.explore}"
                                                     if args.explore else "")
    n = write_episodes(out, eps, source=source)
    successes = sum(bool(ep.success) for ep in eps)
    steps = sum(ep.num_steps for ep in eps)
    print(f"wrote {n} episodes ({steps} steps, expert success {successes}/{n}) to {out}")


def cmd_convert(args: argparse.Namespace) -> int:
    from actjepa_core.bags import convert_bags, format_summary, load_convert_config, write_result

    result = convert_bags(args.bags, load_convert_config(args.config))
    print(format_summary(result))
    write_result(result, args.out)
    print(f"wrote {args.out}")
    return EXIT_SKIPPED if result.skipped else 0


def cmd_recover(args: argparse.Namespace) -> int:
    from actjepa_core.bags.recover import recover_paths

    lines, recovered, failed = recover_paths(args.bags)
    print("\n".join(lines))
    return 0 if not failed else EXIT_SKIPPED if recovered else EXIT_ERROR


def cmd_import(args: argparse.Namespace) -> None:
    from actjepa_core.importers import ImportOptions, import_dataset

    def names(text: str | None) -> list[str] | None:
        return None if text is None else [n.strip() for n in text.split(",") if n.strip()]

    options = ImportOptions(state_keys=names(args.state_keys), cameras=names(args.cameras),
                            image_size=args.image_size, filter=getattr(args, "filter", None),
                            max_episodes=args.max_episodes)
    result = import_dataset(args.format, args.source, args.out, options)
    print(result.summary(args.source))


def add_import_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="robomimic / LeRobot datasets (local files) to an "
                                      "episodes file")
    formats = p.add_subparsers(dest="format", required=True)
    for fmt, source, helptext in (
            ("robomimic", "FILE", "robomimic HDF5 (data/demo_N/obs/<key>, actions, ...)"),
            ("lerobot", "DIR", "LeRobotDataset folder, v2.1 or v3.0 (meta/info.json, "
                               "parquet, mp4 decoded with PyAV)")):
        b = formats.add_parser(fmt, help=helptext, description=helptext)
        b.add_argument("source", metavar=source)
        b.add_argument("--out", required=True, help="episodes file to write (.hdf5), "
                                                    "atomically")
        b.add_argument("--state-keys", default=None, metavar="K1,K2",
                       help="vector observations concatenated into 'state', in this order "
                            "(default: all)")
        b.add_argument("--cameras", default=None, metavar="C1,C2",
                       help="cameras to keep as 'image' (one) or 'image_<name>' (default: all; "
                            "'' for none)")
        b.add_argument("--image-size", type=int, default=None, metavar="S",
                       help="resize frames to SxS (default: keep the source's size)")
        b.add_argument("--max-episodes", type=int, default=None, metavar="N",
                       help="import the first N episodes only")
        if fmt == "robomimic":
            b.add_argument("--filter", default=None, metavar="NAME",
                           help="only the demos of mask/NAME (e.g. train, valid, 20_percent)")
        b.set_defaults(func=cmd_import)


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


def cmd_train_policy(args: argparse.Namespace) -> None:
    """Every policy type the same way: config (YAML or defaults, then flags), world, demos,
    build, save."""
    from actjepa_core.data.episodes import read_episodes
    from actjepa_core.policies import FrozenWorld, policy_class, policy_config
    from actjepa_core.training import distributed

    cls = policy_class(args.policy)
    config = policy_config(args.policy, args.config)
    for name in args.config_flags:
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.validate("command line")
    # under torchrun (WORLD_SIZE > 1) a BC head trains data-parallel; rank 0 writes the file
    ctx, device = distributed.init_from_env(args.device, distributed.DEFAULT_TIMEOUT_S)
    try:
        world = FrozenWorld.from_checkpoint(args.encoder, device)
        data = getattr(args, "data", None)
        vector = getattr(config, "vector", "")  # bc: a key the head reads, not the encoder
        keys = [*world.processor.keys, *([vector] if vector else [])]
        demos = read_episodes(data, keys) if data else None
        play = getattr(args, "play", None)
        extra = ({"play": read_episodes(play, world.processor.keys).episodes} if play else {})
        policy = cls.build(world, demos, config, **extra)
        if ctx.is_main:
            policy.save(args.out)
            print(f"{policy.summary()} -> {args.out}")
        distributed.shutdown(ctx, clean=True)
    finally:
        distributed.shutdown(ctx)  # after an error (a no-op once left cleanly)


class PolicyCommand(NamedTuple):
    """`actjepa train-policy <type>` for one registered policy type (the parser is built without
    importing torch; test_cli checks this table against ``Policy.registry``)."""

    help: str
    demos: bool  # takes --data: the policy's ``needs_demos``
    flags: tuple[tuple[str, dict[str, Any]], ...] = ()  # override the config key of that name
    play: bool = False  # takes --play: episodes off the expert's path for build(play=...)


POLICY_COMMANDS = {
    "bc": PolicyCommand("MLP head by behavioural cloning (Algorithm 2)", True, (
        ("steps", {"type": int, "help": "head updates"}),
        ("chunk", {"type": int, "help": "actions per prediction, temporally ensembled"}),
        ("seed", {"type": int, "help": "head initialisation, batches and validation split"}),
        ("vector", {"help": "an observation key the head reads beside the latent, e.g. proprio "
                            "(the encoder sees the camera alone)"}))),
    "nn": PolicyCommand("latent nearest-neighbour memory (Algorithm 3)", True, (
        ("k", {"type": int, "help": "neighbours averaged per action (default 1)"}),
        ("weighting", {"choices": ("inverse_distance", "uniform"),
                       "help": "how k > 1 neighbours are averaged (default inverse_distance)"}))),
    "e2e": PolicyCommand("the camera policy trained end to end (`actjepa train --set "
                         "objective=bc`), wrapped as a policy file", False, (
        ("ensemble_decay", {"type": float, "help": "temporal ensembling weight decay m"}),)),
    "mpc": PolicyCommand("latent MPC: CEM/MPPI/iCEM toward latent goals (Protocol 3; --data "
                         "for goal: tracking, cost: value or a prior)", False, (
        ("planner", {"choices": ("cem", "mppi", "icem"), "help": "sampling planner"}),
        ("goal", {"choices": ("final", "subgoals", "tracking"),
                  "help": "goal scheme: one goal, subgoals in order, or tracking demo latents"}),
        ("horizon", {"type": int, "help": "planned steps"})), play=True),
}


def add_train_policy_parser(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """`actjepa train-policy <type>`; returns the type subparsers (one per registered policy)."""
    p = sub.add_parser("train-policy", help="build a policy file on a frozen encoder")
    tp = p.add_subparsers(dest="policy", required=True)
    for kind, command in POLICY_COMMANDS.items():
        b = tp.add_parser(kind, help=command.help)
        b.add_argument("--encoder", required=True,
                       help="world-model checkpoint from `actjepa train`, e.g. runs/X/best.pt")
        b.add_argument("--data", required=command.demos, default=None,
                       help="demonstrations (episodes .hdf5)" + ("" if command.demos else
                                                                 ": for goal: tracking, cost: "
                                                                 "value or a prior"))
        if command.play:
            b.add_argument("--play", default=None,
                           help="episodes off the expert's path (.hdf5, `actjepa collect "
                                "--explore`): extra data for cost: value")
        b.add_argument("--out", required=True,
                       help="policy file to write (.pt), written atomically")
        b.add_argument("--device", default="cpu", help="cpu | cuda | auto")
        b.add_argument("--config", default=None,
                       help=f"{kind} config YAML (default: the built-in values; see "
                            "config/policy_*.yaml)")
        for name, options in command.flags:
            b.add_argument(f"--{name}", default=None,
                           **{**options, "help": options["help"] + " (overrides --config)"})
        b.set_defaults(func=cmd_train_policy,
                       config_flags=tuple(name for name, _ in command.flags))
    return tp


def cmd_results(args: argparse.Namespace) -> None:
    from actjepa_core.evaluation.results import noise_table, read_rows, success_table

    rows = read_rows(args.jsonl)
    print(noise_table(rows, args.by_noise) if args.by_noise else success_table(rows, args.noise))


EXAMPLES: dict[str, str] = {
    "collect": "actjepa collect --task push-v3 --episodes 100 --out data/push.hdf5\n"
               "actjepa collect --task pick-place-v3 --episodes 50 --image-size 64 --out "
               "data/pp64.hdf5\n"
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

    p = sub.add_parser("collect", help="record scripted-expert demos from Meta-World to HDF5")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", help="any Meta-World v3 task (all 50 have a scripted expert), "
                                      "e.g. push-v3, door-open-v3")
    which.add_argument("--tasks", metavar="SET", help="mt10 | mt50 | a comma-separated list: "
                                                      "one file per task, --out/<task>.hdf5")
    p.add_argument("--episodes", type=int, default=100, help="per task")
    p.add_argument("--out", required=True, help="episodes file to write (.hdf5); with --tasks, "
                                                "the folder to write them into")
    p.add_argument("--image-size", type=int, default=None, help="also record SxS camera images")
    p.add_argument("--obs", default=None, metavar="KEYS",
                   help="observation keys to record, comma-separated, from state, proprio "
                        "(hand xyz, gripper), joints (as sim_node's joint_states), image; "
                        "image,joints is what a real arm gives (default: state, and image with "
                        "--image-size)")
    p.add_argument("--max-steps", type=int, default=None, help="cap per episode (default: task's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--explore", type=float, default=0.0,
                   help="probability per tick of a uniform random action (play data for MPC); "
                        "such episodes run the full --max-steps")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("convert", help="rosbag2 demonstrations (sqlite3/mcap) to an episodes "
                                       "file; exit 3 if some bag or episode was skipped")
    p.add_argument("bags", nargs="+", metavar="BAG_OR_DIR",
                   help="bag folders, .mcap/.db3 files, or folders holding bags")
    p.add_argument("--config", default=None,
                   help="convert config: config/recorder.yaml or a plain YAML (default: built-in, "
                        "the simulated arm)")
    p.add_argument("--out", required=True, help="episodes file to write (.hdf5), atomically")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("recover", help="make unfinished bags (a recorder killed before closing "
                       "them) complete, in place; the original is kept beside, hidden")
    p.add_argument("bags", nargs="+", help="bag folders, .mcap/.db3 files, or folders of bags")
    p.set_defaults(func=cmd_recover)

    add_import_parser(sub)

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

    add_train_policy_parser(sub)
    add_compare_parser(sub)

    p = sub.add_parser("results", help="markdown success table from `actjepa eval` JSON lines")
    p.add_argument("jsonl", help="results file written by `actjepa eval --out`")
    p.add_argument("--noise", type=float, default=0.0, help="which test-time noise level")
    p.add_argument("--by-noise", default=None, metavar="KIND",
                   help="instead: one policy kind (e.g. bc) across noise levels")
    p.set_defaults(func=cmd_results)

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


if __name__ == "__main__":
    sys.exit(main())
