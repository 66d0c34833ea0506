"""Step 4, controllers on a frozen encoder: `actjepa train-policy bc | nn | mpc | e2e`."""
from __future__ import annotations

import argparse
from typing import Any, NamedTuple


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
