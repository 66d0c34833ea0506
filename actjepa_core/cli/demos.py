"""Step 1, demonstrations: `actjepa collect` (the simulated arm's scripted experts),
`convert` and `recover` (rosbag2), `import` (robomimic, LeRobot): all write an episodes file;
`export` (LeRobot) writes one out for other tools."""
from __future__ import annotations

import argparse
from pathlib import Path

from actjepa_core.cli.common import EXIT_ERROR, EXIT_SKIPPED
from actjepa_core.sim.tasks import EXPERT_AIMS


def cmd_collect(args: argparse.Namespace) -> None:
    """One task to --out, or each task of --tasks to --out/<task>.hdf5."""
    from actjepa_core.sim.tasks import check_task, resolve_tasks

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
    from actjepa_core.sim.collect import collect_episodes

    keys = args.obs.split(",") if args.obs else None
    episodes = collect_episodes(task, args.episodes, seed=args.seed,
                                image_size=args.image_size, max_steps=args.max_steps,
                                progress=not args.quiet, explore=args.explore, keys=keys,
                                dart_noise=args.dart_noise, expert_aim=args.expert_aim)
    eps = list(episodes)
    source = (f"metaworld:{task}:seed={args.seed}"
              + (f":explore={args.explore}" if args.explore else "")
              + (f":dart_noise={args.dart_noise}" if args.dart_noise else "")
              + (f":expert_aim={args.expert_aim}" if args.expert_aim != "hand" else ""))
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


def cmd_export(args: argparse.Namespace) -> None:
    from actjepa_core.exporters import ExportOptions, export_lerobot

    options = ExportOptions(fps=args.fps, video=not args.no_video, task=args.task)
    print(export_lerobot(args.episodes, args.out, options).summary(args.episodes))


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="an episodes file to a dataset other tools read "
                                      "(LeRobot v3.0)")
    formats = p.add_subparsers(dest="format", required=True)
    helptext = ("LeRobotDataset v3.0 folder (meta/, parquet frames, cameras as lossless H.264 "
                "mp4 written with PyAV, or PNG images)")
    b = formats.add_parser("lerobot", help=helptext, description=helptext)
    b.add_argument("episodes", metavar="EPISODES.hdf5")
    b.add_argument("--out", required=True, help="dataset folder to create (must not exist), "
                                                "atomically")
    b.add_argument("--fps", type=float, default=80.0, metavar="F",
                   help="the episodes' control rate, frames per second (default: 80, the "
                        "simulator's and `actjepa convert`'s rate)")
    b.add_argument("--no-video", action="store_true",
                   help="cameras as PNG images in the parquet instead of mp4 videos")
    b.add_argument("--task", default=None, metavar="TEXT",
                   help="the task's text (default: the episodes file's source line)")
    b.set_defaults(func=cmd_export)


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
                        "(hand xyz, gripper), joints (as sim_node's joint_states), image (the "
                        "scene camera, corner4) and image_<C> for another camera C: corner, "
                        "corner2, corner3, topview, behindGripper (on the wrist); every camera "
                        "renders at --image-size. image,joints is what a real arm gives; "
                        "image,image_behindGripper,joints adds a wrist camera (default: state, "
                        "and image with --image-size)")
    p.add_argument("--max-steps", type=int, default=None, help="cap per episode (default: task's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--explore", type=float, default=0.0,
                   help="probability per tick of a uniform random action (play data for MPC); "
                        "such episodes run the full --max-steps")
    p.add_argument("--dart-noise", type=float, default=0.0, metavar="STD",
                   help="DART demos for behavioural cloning: the arm applies the expert's action "
                        "plus Gaussian noise of this std (action units) and the expert's own "
                        "action is recorded, so the demos show recoveries (default 0: clean)")
    p.add_argument("--expert-aim", choices=EXPERT_AIMS, default="hand",
                   help="what the scripted expert steers onto the goal: the observed hand "
                        "(Meta-World's experts) or, on reach-v3, the tool centre where success "
                        "is measured, so the demos end with the whole success radius as margin")
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
    add_export_parser(sub)
