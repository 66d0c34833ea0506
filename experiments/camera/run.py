"""Camera + proprioception policies, end to end: the recipe study behind docs/results/camera.md.

Each cell trains one ``bc`` objective run (experiments/camera/camera.yaml: the recipe, then one
override set per row) on expert demos rendered once into an episodes file (camera image and the
arm's joint positions; never the object's or goal's position), wraps it as an ``e2e`` policy,
evaluates it closed loop on held-out start configurations at each noise level, and appends one
JSON line per (cell, noise) to the results file as soon as it is measured. A rerun skips what is
there, and a stopped training run resumes from its last.pt. Start one process per core: each
takes the next unit no other process holds (a lock the OS drops when its holder dies) and re-reads
the config between units, so cells added to the queue are picked up without a restart.
``--report`` rewrites the study's markdown page from the results file alone.

    python -m experiments.camera.run &  python -m experiments.camera.run
    python -m experiments.camera.run --report
"""
from __future__ import annotations

import argparse
import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import torch

from actjepa_core.config import TrainConfig, apply_overrides, load_yaml
from actjepa_core.data.episodes import EpisodeSet, read_episodes, write_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.evaluate import append_jsonl, evaluate, git_commit
from actjepa_core.policies.end_to_end import EndToEndConfig, EndToEndPolicy
from actjepa_core.policies.world import FrozenWorld
from actjepa_core.sim.arm import camera_key
from actjepa_core.sim.collect import collect_episodes
from actjepa_core.training.checkpoint import load_checkpoint
from actjepa_core.training.trainer import train

HERE = Path(__file__).resolve().parent
KEYS = ("image", "joints")  # what a real arm gives: a camera and its joint states


@dataclass
class Cell:
    name: str  # the row: what differs from the recipe
    tasks: list[str] = field(default_factory=lambda: ["reach-v3", "push-v3", "pick-place-v3"])
    overrides: list[str] = field(default_factory=list)  # TrainConfig keys on top of the recipe
    demos: list[int] = field(default_factory=lambda: [100])
    seeds: list[int] = field(default_factory=lambda: [0])
    noise: list[float] = field(default_factory=lambda: [0.0])
    image_size: int = 0  # 0: the study's
    max_steps: int = 0  # the evaluation's cap per episode; 0: the study's
    # cameras besides the default one (sim/arm.py CAMERA_ROTATIONS), each observed as image_<C>
    extra_cameras: list[str] = field(default_factory=list)
    # DART demos: the expert's actions applied with Gaussian noise of this std, its clean action
    # recorded (sim/collect.py); 0: clean demos
    demo_noise: float = 0.0
    # what the expert steers onto the goal: "hand" (Meta-World's) or "tool" (reach; sim/arm.py)
    expert_aim: str = "hand"
    # pretrain + fine-tune: a first run with these overrides on top of the recipe (e.g. the
    # ACT-JEPA objective on the camera alone) initialises the encoder; empty: from scratch
    pretrain: list[str] = field(default_factory=list)


@dataclass
class CameraStudy:
    image_size: int = 64
    demo_seed: int = 0  # evaluation uses eval_seed: never a demo's start configuration
    eval_seed: int = 1
    eval_episodes: int = 50
    max_steps: int = 150
    threads: int = 1  # torch threads per process (one process per core)
    recipe: list[str] = field(default_factory=list)  # TrainConfig overrides every cell starts from
    cells: list[Cell] = field(default_factory=list)
    shipped: str = "recipe"  # the cell config/train_camera.yaml holds; <shipped>-seedN its seeds
    # other cells the headline shows beside the shipped one, each pooled with its -seedN copies
    contenders: list[str] = field(default_factory=list)
    # the cells the MT10 table takes each task from, the first that holds it
    mt10: list[str] = field(default_factory=list)

    def validate(self, where: str = "camera study") -> "CameraStudy":
        if not self.cells:
            raise ActJepaError(f"{where}: cells is empty; expected at least one")
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise ActJepaError(f"{where}: cell names repeat; expected each once: {names}")
        named = [("shipped", self.shipped), *(("contenders", c) for c in self.contenders),
                 *(("mt10", c) for c in self.mt10)]
        for key, name in named:
            if name not in names:
                raise ActJepaError(f"{where}: {key} names {name!r}; expected one of {names}")
        return self

    def cell(self, name: str) -> Cell:
        return next(c for c in self.cells if c.name == name)

    def eval_steps(self, cell: Cell) -> int:
        """The evaluation's cap per episode for ``cell``: its own, else the study's."""
        return cell.max_steps or self.max_steps

    def shipped_overrides(self) -> list[str]:
        """The TrainConfig overrides of the shipped cell (config/train_camera.yaml)."""
        return [*self.recipe, *self.cell(self.shipped).overrides]


def units(study: CameraStudy) -> list[tuple[Cell, str, int, int]]:
    """Every (cell, task, demos, seed) in config order: the order the shards run them."""
    return [(c, t, d, s) for c in study.cells for d in c.demos for s in c.seeds for t in c.tasks]


def pending_units(study: CameraStudy, results: Path, only: set[str]) -> list:
    """The units not yet measured at every noise level, in config order."""
    done = done_keys(results)
    return [(c, t, d, s) for c, t, d, s in units(study)
            if (not only or c.name in only)
            and not all(unit_key(c, t, d, s, n) in done for n in c.noise)]


def unit_key(cell: Cell, task: str, demos: int, seed: int, noise: float) -> tuple:
    return (cell.name, task, demos, seed, float(noise))


def done_keys(results: Path) -> set[tuple]:
    if not results.exists():
        return set()
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return {(r["cell"], r["task"], r["demos"], r["seed"], float(r["noise"])) for r in rows}


def cell_keys(cell: Cell) -> tuple[str, ...]:
    """The observation keys a cell's demos hold: KEYS, and one image key per extra camera."""
    return (*KEYS, *(camera_key(c) for c in cell.extra_cameras))


def demo_file(work: Path, task: str, demos: int, size: int, seed: int,
              keys: tuple[str, ...] = KEYS, dart_noise: float = 0.0,
              expert_aim: str = "hand") -> Path:
    """The rendered demos, collected once under a lock shared by the workers."""
    extra = "".join(f"-{k}" for k in keys if k not in KEYS)
    extra += f"-dart{dart_noise:g}" if dart_noise else ""
    extra += f"-aim{expert_aim}" if expert_aim != "hand" else ""
    path = work / "data" / f"{task}-{size}px-{demos}-seed{seed}{extra}.hdf5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            write_episodes(path, collect_episodes(task, demos, seed=seed, image_size=size,
                                                  keys=keys, progress=False,
                                                  dart_noise=dart_noise,
                                                  expert_aim=expert_aim),
                           source=f"metaworld:{task}:seed={seed}"
                           + (f":dart_noise={dart_noise:g}" if dart_noise else "")
                           + (f":expert_aim={expert_aim}" if expert_aim != "hand" else ""))
    return path


def trained(data: EpisodeSet, config: TrainConfig, run_dir: Path) -> float:
    """Train ``run_dir`` to its end (resuming a stopped run); the training seconds."""
    finished = run_dir / "trained"
    if not finished.exists():
        train(data, config, run_dir, resume=(run_dir / "last.pt").exists(), progress=False)
        seconds = load_checkpoint(run_dir / "last.pt")["train_seconds"]  # across resumes
        finished.write_text(f"{seconds:.1f}\n")
    return float(finished.read_text())


def episodes(path: Path, config: TrainConfig, keys: tuple[str, ...] = KEYS) -> EpisodeSet:
    """The demos with the keys the run reads (``data.obs_keys``; default ``keys``)."""
    return read_episodes(path, config.data.obs_keys or list(keys))


def cell_config(study: CameraStudy, cell: Cell, seed: int, data: Path,
                run_dir: Path) -> tuple[TrainConfig, float]:
    """The cell's config and the seconds spent pretraining its encoder (0 without)."""
    overrides = [*study.recipe, *cell.overrides, f"run.seed={seed}"]
    if not cell.pretrain:
        return apply_overrides(TrainConfig(), overrides), 0.0
    pre_dir = run_dir.with_name(run_dir.name + "-pretrain")
    pre = apply_overrides(TrainConfig(), [*study.recipe, *cell.pretrain, f"run.seed={seed}"])
    seconds = trained(episodes(data, pre), pre, pre_dir)
    return apply_overrides(TrainConfig(), [*overrides,
                                           f"run.init_encoder={pre_dir / 'last.pt'}"]), seconds


def unit_row(study: CameraStudy, cell: Cell, task: str, demos: int, seed: int, size: int,
             summary: dict, train_s: float, config: TrainConfig) -> dict:
    """One result line: the unit (its ``seed`` is the training seed; the evaluation's own seed
    is ``eval_seed``), what came out, and how it was made."""
    measured = {k: v for k, v in summary.items() if k != "seed"}
    return {"study": "camera", **measured, "eval_seed": summary["seed"], "cell": cell.name,
            "task": task, "demos": demos, "seed": seed, "image_size": size,
            "cameras": sorted(k for k in cell_keys(cell) if k.startswith("image")),
            "demo_noise": cell.demo_noise, "train_s": train_s,
            "steps": config.optim.steps, "precision": config.run.precision,
            "threads": torch.get_num_threads(), "overrides": [*study.recipe, *cell.overrides],
            "pretrain": cell.pretrain, "git_commit": git_commit()}


def run_unit(study: CameraStudy, cell: Cell, task: str, demos: int, seed: int, work: Path,
             results: Path, done: set[tuple]) -> None:
    size = cell.image_size or study.image_size
    data = demo_file(work, task, demos, size, study.demo_seed, cell_keys(cell), cell.demo_noise,
                     cell.expert_aim)
    run_dir = work / "runs" / f"{cell.name}-{task}-{demos}-seed{seed}"
    config, pretrain_s = cell_config(study, cell, seed, data, run_dir)
    train_s = pretrain_s + trained(episodes(data, config, cell_keys(cell)), config, run_dir)
    policy = EndToEndPolicy(FrozenWorld.from_checkpoint(run_dir / "last.pt"), EndToEndConfig())
    for noise in cell.noise:
        if unit_key(cell, task, demos, seed, noise) in done:
            continue
        result = evaluate(policy, task, study.eval_episodes, noise=noise, seed=study.eval_seed,
                          max_steps=study.eval_steps(cell), progress=False)
        append_jsonl(results, unit_row(study, cell, task, demos, seed, size, result.summary(),
                                       train_s, config))
        print(f"{cell.name} {task} demos={demos} seed={seed} noise={noise}: "
              f"{result.successes}/{result.episodes}", flush=True)


def claim(work: Path, cell: Cell, task: str, demos: int, seed: int) -> IO | None:
    """An open file holding this unit's lock, or None where another process holds it.

    flock is released by the OS when its holder exits, so a killed worker leaves no stale claim.
    """
    path = work / "claims" / f"{cell.name}-{task}-{demos}-seed{seed}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def next_unit(config: Path, results: Path, work: Path, only: set[str]) -> tuple | None:
    """(study, unit, lock) for the first unit still to measure that no other worker holds."""
    study = load_yaml(CameraStudy, config)  # re-read: the queue may have grown
    for unit in pending_units(study, results, only):
        lock = claim(work, *unit)
        if lock is None:
            continue
        cell, task, demos, seed = unit
        done = done_keys(results)  # again: it may have finished while this worker read the list
        if all(unit_key(cell, task, demos, seed, n) in done for n in cell.noise):
            lock.close()
            continue
        return study, unit, lock
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(HERE / "camera.yaml"))
    p.add_argument("--results", default="docs/results/camera.jsonl")
    p.add_argument("--work", default="runs/camera")
    p.add_argument("--only", default="", help="comma-separated cell names to run")
    p.add_argument("--report", action="store_true", help="rewrite docs/results/camera.md")
    args = p.parse_args(argv)
    config, results, work = Path(args.config), Path(args.results), Path(args.work)
    if args.report:
        from experiments.camera.report import write_report

        write_report(load_yaml(CameraStudy, config), results, results.with_suffix(".md"))
        return 0
    only = set(filter(None, args.only.split(",")))
    while (claimed := next_unit(config, results, work, only)) is not None:
        study, (cell, task, demos, seed), lock = claimed
        torch.set_num_threads(study.threads)
        with lock:
            run_unit(study, cell, task, demos, seed, work, results, done_keys(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
