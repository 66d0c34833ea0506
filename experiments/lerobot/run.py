"""LeRobot's ACT and Diffusion Policy on our tasks, side by side with our camera policies: the
runner behind docs/results/lerobot.md (issue 30). Runs in .venv-peers (`make peers`).

Each cell (experiments/lerobot/lerobot.yaml) trains one LeRobot policy per task on the very demos
experiments/camera trains on (the same file under runs/camera/data/, collected once under the
camera study's lock: camera image and joint positions, 100 demos, seed 0), for the same
wall-clock budget as our recipe, resuming from its last save when stopped; then evaluates it in
our closed-loop harness (``evaluate``: the same held-out start configurations, episodes, step
limit) through ``actjepa_core.policies.lerobot``, the adapter policy_node serves, and appends one
JSON line per (cell, task) to the results file as soon as it is measured. A rerun skips what is
there. ``--shard i/n`` splits the units between processes (one per core); ``--report`` rewrites
the markdown page from the results file alone.

    HF_HUB_OFFLINE=1 .venv-peers/bin/python -m experiments.lerobot.run --shard 0/2 &
    HF_HUB_OFFLINE=1 .venv-peers/bin/python -m experiments.lerobot.run --shard 1/2
    HF_HUB_OFFLINE=1 .venv-peers/bin/python -m experiments.lerobot.run --report
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from actjepa_core.config import load_yaml
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.evaluate import append_jsonl, evaluate, git_commit
from experiments.entry import run_main
from experiments.lerobot.train import FEATURES, POLICIES, LeRobotTraining, Trained, train_lerobot

HERE = Path(__file__).resolve().parent
TASKS = ["reach-v3", "push-v3", "pick-place-v3"]


@dataclass
class Cell:
    name: str  # the row
    policy: str  # act | diffusion: LeRobot's policy type
    overrides: list[str] = field(default_factory=list)  # its config fields, key=value (YAML)
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    batch_size: int = 8  # lerobot-train's default
    budget_s: float = 0.0  # 0: the study's
    max_steps: int = 0  # also stop after this many steps (0: the budget alone decides)
    schedule_steps: int = 100_000  # the LR schedule's length (lerobot-train's default steps)


@dataclass
class LeRobotStudy:
    image_size: int = 64
    demos: int = 100
    demo_seed: int = 0  # evaluation uses eval_seed: never a demo's start configuration
    eval_seed: int = 1
    eval_episodes: int = 50
    max_steps: int = 150
    threads: int = 1  # torch threads per process (one process per core)
    budget_s: float = 1380.0  # training seconds per cell
    checkpoint_every_s: float = 300.0
    seed: int = 0  # training seed
    cells: list[Cell] = field(default_factory=list)

    def validate(self, where: str = "lerobot study") -> "LeRobotStudy":
        if not self.cells:
            raise ActJepaError(f"{where}: cells is empty; expected at least one")
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise ActJepaError(f"{where}: cell names repeat; expected each once: {names}")
        for cell in self.cells:
            if cell.policy not in POLICIES:
                raise ActJepaError(f"{where}: cell {cell.name}: policy is {cell.policy!r}; "
                                   f"expected one of {list(POLICIES)}")
            overrides(cell, where)
            training(self, cell).validate(f"{where}: cell {cell.name}")
        if self.eval_episodes < 1 or self.max_steps < 1 or self.demos < 1:
            raise ActJepaError(f"{where}: eval_episodes, max_steps and demos must be >= 1")
        return self


def overrides(cell: Cell, where: str = "lerobot study") -> dict[str, Any]:
    """``key=value`` strings -> LeRobot config fields (values parsed as YAML: null, [56, 56])."""
    out = {}
    for item in cell.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ActJepaError(f"{where}: cell {cell.name}: override {item!r}; expected "
                               "key=value (a field of LeRobot's policy config)")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ActJepaError(f"{where}: cell {cell.name}: override {item!r}: the value is not "
                               "valid YAML") from None
    return out


def training(study: LeRobotStudy, cell: Cell) -> LeRobotTraining:
    return LeRobotTraining(policy=cell.policy, overrides=overrides(cell),
                           batch_size=cell.batch_size, budget_s=cell.budget_s or study.budget_s,
                           max_steps=cell.max_steps, schedule_steps=cell.schedule_steps,
                           checkpoint_every_s=study.checkpoint_every_s, seed=study.seed)


def units(study: LeRobotStudy) -> list[tuple[Cell, str]]:
    """Every (cell, task) in config order: the order the shards run them."""
    return [(c, t) for c in study.cells for t in c.tasks]


def unit_key(cell: str, task: str, demos: int) -> tuple:
    return (cell, task, demos)


def done_keys(results: Path) -> set[tuple]:
    from experiments.lerobot.report import read_rows

    return {unit_key(r["cell"], r["task"], r["demos"]) for r in read_rows(results)}


def demos_path(study: LeRobotStudy, task: str, camera_work: Path) -> Path:
    """The camera study's demo file (collected there, or here under its lock if missing)."""
    from experiments.camera.run import demo_file

    return demo_file(camera_work, task, study.demos, study.image_size, study.demo_seed)


def unit_row(study: LeRobotStudy, cell: Cell, task: str, summary: dict, trained: Trained,
             spec: LeRobotTraining) -> dict:
    """One result line: the unit, what came out, and how it was made."""
    import lerobot
    import torch

    measured = {k: v for k, v in summary.items() if k != "seed"}
    return {"study": "lerobot", **measured, "eval_seed": summary["seed"], "cell": cell.name,
            "policy": cell.policy, "task": task, "demos": study.demos, "seed": study.seed,
            "image_size": study.image_size, "train_s": trained.train_s, "steps": trained.steps,
            "params": trained.params, "budget_s": spec.budget_s, "batch_size": spec.batch_size,
            "overrides": cell.overrides, "lerobot": lerobot.__version__,
            "threads": torch.get_num_threads(), "git_commit": git_commit()}


def run_unit(study: LeRobotStudy, cell: Cell, task: str, work: Path, camera_work: Path,
             results: Path) -> None:
    from actjepa_core.policies.lerobot import load_lerobot_policy

    spec = training(study, cell)
    run_dir = work / "runs" / f"{cell.name}-{task}-{study.demos}demos"
    trained = train_lerobot(demos_path(study, task, camera_work), run_dir, spec,
                            log=lambda line: print(line, flush=True))
    policy = load_lerobot_policy(trained.folder, FEATURES)
    result = evaluate(policy, task, study.eval_episodes, seed=study.eval_seed,
                      max_steps=study.max_steps, progress=False)
    append_jsonl(results, unit_row(study, cell, task, result.summary(), trained, spec))
    print(f"{cell.name} {task}: {result.successes}/{result.episodes} after {trained.steps} "
          f"steps ({trained.train_s / 60:.0f} min)", flush=True)


def study_main(args: argparse.Namespace) -> None:
    study = load_yaml(LeRobotStudy, args.config)
    results = Path(args.results)
    if args.report:
        from experiments.lerobot.report import write_report

        write_report(study, results, Path(args.out or results.with_suffix(".md")))
        return
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never the hub
    torch.set_num_threads(study.threads)
    try:
        index, count = (int(x) for x in args.shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise ActJepaError(f"--shard is {args.shard!r}; expected i/n with 0 <= i < n") from None
    only = set(filter(None, args.only.split(",")))
    unknown = only - {c.name for c in study.cells}
    if unknown:
        raise ActJepaError(f"--only names {sorted(unknown)}; expected cells of {args.config}: "
                           f"{[c.name for c in study.cells]}")
    for i, (cell, task) in enumerate(units(study)):
        if i % count != index or (only and cell.name not in only):
            continue
        if unit_key(cell.name, task, study.demos) in done_keys(results):
            continue
        run_unit(study, cell, task, Path(args.work), Path(args.camera_work), results)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.lerobot.run",
                                description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(HERE / "lerobot.yaml"))
    p.add_argument("--results", default="docs/results/lerobot.jsonl")
    p.add_argument("--work", default="runs/lerobot", help="training runs and exported datasets")
    p.add_argument("--camera-work", default="runs/camera",
                   help="the camera study's folder: its data/ holds the shared demos")
    p.add_argument("--shard", default="0/1", help="i/n: run every n-th unit from the i-th")
    p.add_argument("--only", default="", help="comma-separated cell names to run")
    p.add_argument("--report", action="store_true", help="rewrite the markdown page")
    p.add_argument("--out", default="", help="--report: the page (default: results .md)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(parser(), study_main, "experiments.lerobot.run", argv)


if __name__ == "__main__":
    raise SystemExit(main())
