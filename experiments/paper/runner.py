"""Train and evaluate the planned units, resumably: every finished cell is appended at once as a
JSON line to the results file, and a rerun skips every cell already there (and reuses any
encoder, BC head or demonstration file a stopped run left in the work directory).

Units run in ``jobs`` worker processes with one torch thread each (the encoders are small, and
two processes on two cores beat one process with two threads); workers append their own lines
under an exclusive file lock.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import json
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from actjepa_core.config import TrainConfig, apply_overrides
from actjepa_core.data.episodes import EpisodeSet, read_episodes, write_episodes
from actjepa_core.evaluation.evaluate import evaluate, git_commit
from actjepa_core.progress import progress_bar
from experiments.paper.plan import METHODS, PaperConfig, Unit, cell_id, plan_units

DEMO_SEED = 0  # demonstrations come from seed 0; evaluation (eval_seed) never shares a start
DONE = "done"
DEVICE = "device"  # beside DONE: what the encoder trained on


def done_cells(results: Path) -> set[tuple]:
    """Cell ids already in the results file."""
    if not results.is_file():
        return set()
    cells = set()
    for line in results.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            cells.add(cell_id(r["obs"], r["task"], r["method"], r["demos"], r["seed"], r["sigma"]))
    return cells


def append_row(results: Path, row: dict) -> None:
    """One JSON line, written whole under an exclusive lock (workers share the file)."""
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(json.dumps(row) + "\n")
            f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def demos_path(work: Path, config: PaperConfig, task: str) -> Path:
    size = f"-{config.image_size}px" if config.obs == "image" else ""
    return work / "demos" / f"{task}-{config.demos}{size}.hdf5"


def ensure_demos(work: Path, config: PaperConfig, task: str) -> Path:
    """Scripted-expert demonstrations, images pre-rendered once into the file (written
    atomically, so a stopped collection is redone, never half-read)."""
    from actjepa_core.sim.collect import collect_episodes

    path = demos_path(work, config, task)
    if not path.exists():
        image = config.image_size if config.obs == "image" else None
        episodes = collect_episodes(task, config.demos, seed=DEMO_SEED, image_size=image,
                                    progress=False)
        write_episodes(path, episodes, source=f"metaworld:{task}:seed={DEMO_SEED}")
    return path


def obs_keys(unit: Unit) -> list[str]:
    if unit.obs == "state":
        return ["state"]
    return ["image", unit.method.vector] if unit.method.vector else ["image"]


def unit_data(work: Path, config: PaperConfig, unit: Unit) -> EpisodeSet:
    """The unit's demonstrations: the encoder's observation keys (``obs_keys``), and in the
    episodes also the BC head's vector; "proprio" is cut from the recorded state
    (sim.proprio_of), the same cut the simulated arm makes when a policy reads it."""
    from actjepa_core.sim.arm import proprio_of

    keys = obs_keys(unit)
    wanted = [*keys, *([unit.method.bc_vector] if unit.method.bc_vector else [])]
    stored = sorted({"state" if k == "proprio" else k for k in wanted})
    data = read_episodes(demos_path(work, config, unit.task), stored)
    episodes = data.episodes[:unit.demos]
    if "proprio" in wanted:
        episodes = [replace(e, obs={**{k: e.obs[k] for k in wanted if k != "proprio"},
                                    "proprio": proprio_of(e.obs["state"])})
                    for e in episodes]
    return EpisodeSet(episodes, keys, data.action_dim, data.source, data.path)


def train_config(unit: Unit, config: PaperConfig, init: Path | None = None) -> TrainConfig:
    steps = config.train_steps * unit.method.steps_factor
    overrides = [f"optim.steps={steps}", f"optim.batch_size={config.train_batch}",
                 f"run.seed={unit.seed}", f"run.device={config.train_device}",
                 f"data.obs_keys={obs_keys(unit)}",
                 *config.train_overrides, *unit.method.train_overrides()]
    if init is not None:
        overrides.append(f"run.init_encoder={init}")
    return apply_overrides(TrainConfig(), overrides, where=f"unit {unit.key}")


def source_unit(unit: Unit) -> Unit | None:
    """The unit whose encoder a fine-tuning unit starts from (same task, demos and seed)."""
    name = unit.method.init_from
    return (None if not name else
            Unit(unit.obs, unit.task, METHODS[name], unit.demos, unit.seed, ()))


def ensure_world(unit: Unit, config: PaperConfig, work: Path, data: EpisodeSet) -> Path:
    """The unit's trained encoder (trained now if missing, resumed if stopped, after the encoder
    it fine-tunes from); returns its folder."""
    from actjepa_core.training.trainer import train

    if unit.method.encoder_of:  # a BC-side variant reads another row's encoder as it is
        shared = Unit(unit.obs, unit.task, METHODS[unit.method.encoder_of], unit.demos,
                      unit.seed, ())
        return ensure_world(shared, config, work, data)
    world = work / unit.key / "world"
    if (world / DONE).exists():
        return world
    source = source_unit(unit)
    init = ensure_world(source, config, work, data) / "best.pt" if source is not None else None
    world.parent.mkdir(parents=True, exist_ok=True)
    # a worker fine-tuning from this encoder may ask for it while another trains it: one trains,
    # the other waits and then finds it done
    with (world.parent / "world.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (world / DONE).exists():
            t0 = time.perf_counter()
            train(data, train_config(unit, config, init), world,
                  resume=(world / "last.pt").exists(), progress=False)
            (world / DEVICE).write_text(device_name(config.train_device) + "\n")
            (world / DONE).write_text(f"{time.perf_counter() - t0:.1f}\n")
    return world


def device_name(device: str) -> str:
    """What trained an encoder, as the results record it: 'cpu' or 'cuda (NVIDIA H200)'."""
    from actjepa_core.device import resolve_device

    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return resolved.type
    return f"cuda ({torch.cuda.get_device_name(resolved)})"


def trained_on(world: Path) -> str:
    """The device an encoder was trained on (encoders trained before this was recorded: cpu)."""
    path = world / DEVICE
    return path.read_text().strip() if path.exists() else "cpu"


def run_unit(unit: Unit, config: PaperConfig, work: Path, results: Path) -> list[dict]:
    """Train what is missing, evaluate the cells not yet in ``results``; returns the new rows."""
    from actjepa_core.policies import BCPolicy, FrozenWorld, load_policy
    from actjepa_core.policies.configs import BCConfig

    torch.set_num_threads(1)
    todo = [s for s, c in zip(unit.sigmas, unit.cells()) if c not in done_cells(results)]
    if not todo:
        return []
    folder = work / unit.key
    data = unit_data(work, config, unit)
    bc_path = folder / "bc.pt"
    world = ensure_world(unit, config, work, data)
    times = {"train_wall_s": float((world / DONE).read_text()), "bc_wall_s": 0.0,
             "train_device": trained_on(world)}
    if not bc_path.exists():
        t0 = time.perf_counter()
        bc = BCConfig(steps=config.bc_steps, chunk=unit.method.bc_chunk, seed=unit.seed,
                      standardise=unit.method.bc_standardise, vector=unit.method.bc_vector)
        BCPolicy.build(FrozenWorld.from_checkpoint(world / "best.pt"), data, bc).save(bc_path)
        (folder / "bc.time").write_text(f"{time.perf_counter() - t0:.1f}\n")
    times["bc_wall_s"] = float((folder / "bc.time").read_text())
    policy = load_policy(bc_path)
    rows = []
    for sigma in todo:
        t0 = time.perf_counter()
        result = evaluate(policy, unit.task, config.eval_episodes, noise=sigma,
                          seed=config.eval_seed, max_steps=config.max_steps or None,
                          progress=False)
        row = cell_row(unit, config, sigma, result, times, time.perf_counter() - t0)
        append_row(results, row)
        rows.append(row)
    return rows


def cell_row(unit: Unit, config: PaperConfig, sigma: float, result, times: dict,
             eval_wall_s: float) -> dict:
    m = unit.method
    return {"obs": unit.obs, "task": unit.task, "method": m.name, "objective": m.objective,
            "overrides": [*config.train_overrides, *m.overrides], "bc_chunk": m.bc_chunk,
            "init_from": m.init_from, "bc_standardise": m.bc_standardise,
            "encoder_of": m.encoder_of, "bc_vector": m.bc_vector,
            "obs_keys": obs_keys(unit), "image_size": config.image_size if unit.obs == "image"
            else None, "demos": unit.demos, "seed": unit.seed, "sigma": float(sigma),
            "successes": result.successes, "episodes": result.episodes,
            "success": result.success, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "mean_length": result.mean_length, "eval_seed": config.eval_seed,
            "max_steps": result.max_steps, "train_steps": config.train_steps * m.steps_factor,
            "train_batch": config.train_batch, "bc_steps": config.bc_steps, **times,
            "eval_wall_s": round(eval_wall_s, 1), "renderer": os.environ.get("MUJOCO_GL", ""),
            "git_commit": git_commit(),
            "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _unit_job(args: tuple) -> tuple[str, list[dict] | str]:
    """A unit's new rows, or the one-line reason it failed: one broken unit (say, a collapsed
    encoder that yields NaN) must not stop the others; a rerun retries it."""
    unit, config, work, results = args
    try:
        return unit.key, run_unit(unit, config, work, results)
    except Exception as err:  # reported per unit, the run goes on
        return unit.key, f"failed: {type(err).__name__}: {err}".splitlines()[0]


def _demo_job(args: tuple) -> str:
    work, config, task = args
    torch.set_num_threads(1)
    return str(ensure_demos(work, config, task))


def run(config: PaperConfig, work: Path, results: Path, jobs: int = 1,
        progress: bool = True) -> list[dict]:
    """Every missing cell of the planned tables; returns the rows written by this call."""
    device_name(config.train_device)  # no CUDA where it is asked for: one line now, not per unit
    done = done_cells(results)
    units = [u for u in plan_units(config) if any(c not in done for c in u.cells())]
    tasks = sorted({u.task for u in units})
    written: list[dict] = []
    with progress_bar(total=len(units), desc=f"paper {config.obs}", unit="unit",
              disable=not progress) as bar:
        bar.write(f"{len(units)} units to run ({sum(len(u.cells()) for u in units)} cells); "
                  f"results -> {results}")
        demo_args = [(work, config, t) for t in tasks]
        unit_args = [(u, config, work, results) for u in units]
        if jobs <= 1:
            for a in demo_args:
                _demo_job(a)
            outputs = map(_unit_job, unit_args)
            written = _drain(outputs, bar)
        else:
            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                list(pool.imap_unordered(_demo_job, demo_args))
                written = _drain(pool.imap_unordered(_unit_job, unit_args), bar)
    return written


def _drain(outputs, bar) -> list[dict]:
    written = []
    for key, rows in outputs:
        if isinstance(rows, str):
            bar.write(f"{key}: {rows}")
        else:
            written += rows
            bar.write(f"{key}: " + ", ".join(f"sigma {r['sigma']:g}: "
                                             f"{r['successes']}/{r['episodes']}" for r in rows))
        bar.update(1)
    return written


