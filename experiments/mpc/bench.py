"""The MPC study (`python -m experiments.mpc.run`): latent MPC per planner and goal scheme on
the simulated arm, resumable.

Per task, one world model is trained on expert demos mixed with play data (``collect
--explore``: actions off the expert's path, so the predictor learns what actions do) with
multi-step rollouts; its k-step latent error on held-out expert demos is measured; then every
configured setting (planner x goal scheme x cost; a value or prior is trained on the world's
training data when the setting asks for one) is evaluated closed loop and written as one JSON line
(success with its Wilson interval, per-action planning time p50/p99, the world's rollout errors).
Reruns skip finished cells; `--report` renders the table from the JSON lines alone.

``obs: image`` runs the same on camera images (``image_size`` pixels, rendered once into the demo
files): the world model encodes the image alone, so the planner sees the scene only through the
camera, and goals are the expert's final camera image (``--goal demo``).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from actjepa_core.atomic import atomic_path
from actjepa_core.config import TrainConfig, apply_overrides, load_yaml
from actjepa_core.data.episodes import EpisodeSet, read_episodes, write_episodes
from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.evaluation.evaluate import evaluate, git_commit, wilson_interval
from actjepa_core.evaluation.tables import markdown_table
from actjepa_core.progress import progress_bar
from experiments.paper.runner import append_row

DEMO_SEED = 0


@dataclass
class Setting:
    name: str
    goal_source: str = "demo"  # how evaluation builds goals: one of goals.GOAL_SOURCES
    overrides: list[str] = field(default_factory=list)  # MPCConfig keys, e.g. planner=icem


OBS_KINDS = ("state", "image")


@dataclass
class MPCBenchConfig:
    obs: str = "state"  # state | image: what the world model (and so the planner) sees
    image_size: int = 64  # obs: image: camera pixels per side
    tasks: list[str] = field(default_factory=lambda: ["reach-v3", "push-v3", "pick-place-v3"])
    demos: int = 100  # expert demos (also the tracking memory)
    play_episodes: int = 100
    explore: float = 0.5  # share of random ticks in play episodes
    play_steps: int = 100  # ticks per play episode
    world_steps: int = 2000
    world_overrides: list[str] = field(default_factory=lambda: ["loss.rollout_steps=5"])
    val_demos: int = 10  # expert demos held out for the rollout error
    horizon: int = 5  # rollout error measured up to this k
    eval_episodes: int = 50
    eval_seed: int = 1
    max_steps: int = 150
    settings: list[Setting] = field(default_factory=list)

    def validate(self, where: str = "mpc bench config") -> "MPCBenchConfig":
        check_choice(where, "obs", self.obs, OBS_KINDS)
        if self.image_size < 8:
            raise ActJepaError(f"{where}: image_size must be >= 8 pixels, got {self.image_size}")
        if not self.settings:
            raise ActJepaError(f"{where}: settings is empty; expected at least one setting")
        if not 0 < self.val_demos < self.demos:
            raise ActJepaError(f"{where}: val_demos must lie in (0, demos)")
        return self


def load_mpc_bench_config(path: str) -> MPCBenchConfig:
    return load_yaml(MPCBenchConfig, path)


def obs_keys(config: MPCBenchConfig) -> list[str]:
    return [config.obs]


def demo_paths(task: str, config: MPCBenchConfig, work: Path) -> dict[str, Path]:
    """The expert and play episode files (image files carry their size: one work folder can
    hold both kinds)."""
    size = f"-{config.image_size}px" if config.obs == "image" else ""
    return {kind: work / f"{task}-{kind}{size}.hdf5" for kind in ("expert", "play")}


def world_dir(task: str, config: MPCBenchConfig, work: Path) -> Path:
    """Where the task's world model is trained: state and image runs may share a work folder."""
    return work / task / ("world" if config.obs == "state" else f"world-{config.image_size}px")


def world_data(task: str, config: MPCBenchConfig, work: Path) -> tuple[EpisodeSet, list]:
    """Expert demos + play episodes for training; held-out expert demos for the rollout error."""
    from actjepa_core.sim.collect import collect_episodes

    paths, keys = demo_paths(task, config, work), obs_keys(config)
    image = config.image_size if config.obs == "image" else None
    if not paths["expert"].exists():
        write_episodes(paths["expert"], collect_episodes(task, config.demos, seed=DEMO_SEED,
                                                         image_size=image, progress=False),
                       f"metaworld:{task}")
    if not paths["play"].exists():
        write_episodes(paths["play"], collect_episodes(
            task, config.play_episodes, seed=DEMO_SEED, max_steps=config.play_steps,
            explore=config.explore, image_size=image, progress=False),
            f"metaworld:{task}:explore")
    expert = read_episodes(paths["expert"], keys)
    play = read_episodes(paths["play"], keys)
    train_eps = expert.episodes[:-config.val_demos] + play.episodes
    return (EpisodeSet(train_eps, keys, expert.action_dim, "expert+play"),
            expert.episodes[-config.val_demos:])


def world_settings(config: MPCBenchConfig) -> dict:
    """What a task's world model is trained from: a world folder trained from other settings
    (another config sharing the ``--work`` folder) is never reused for this one."""
    return {"obs": config.obs, "image_size": config.image_size if config.obs == "image" else None,
            "demos": config.demos, "play_episodes": config.play_episodes,
            "explore": config.explore, "play_steps": config.play_steps,
            "world_steps": config.world_steps, "world_overrides": list(config.world_overrides),
            "val_demos": config.val_demos}


def check_world_settings(run: Path, config: MPCBenchConfig) -> None:
    """One clear line when the finished world in ``run`` was trained from other settings."""
    text = (run / "done").read_text()
    if not text.strip():
        raise ActJepaError(f"{run / 'done'} records no world settings (an older actjepa wrote "
                           "it); expected them, to reuse the world: retrain it in another --work "
                           "folder")
    saved, wanted = json.loads(text), world_settings(config)
    differ = sorted(k for k in wanted if saved.get(k) != wanted[k])
    if differ:
        had = ", ".join(f"{k}={saved.get(k)!r}" for k in differ)
        asked = ", ".join(f"{k}={wanted[k]!r}" for k in differ)
        raise ActJepaError(f"{run}: this world model was trained with {had}; the config asks "
                           f"for {asked}: expected another --work folder for these settings")


def ensure_world(task: str, config: MPCBenchConfig, work: Path) -> tuple[Path, list[float]]:
    from actjepa_core.evaluation.diagnostics import rollout_errors
    from actjepa_core.policies import FrozenWorld
    from actjepa_core.training.trainer import train

    run = world_dir(task, config, work)
    if (run / "done").exists():
        check_world_settings(run, config)
    data, held_out = world_data(task, config, work)
    if not (run / "done").exists():
        train_config = apply_overrides(TrainConfig(), [f"optim.steps={config.world_steps}",
                                                       "run.device=cpu",
                                                       f"data.obs_keys={obs_keys(config)}",
                                                       *config.world_overrides])
        train(data, train_config, run, resume=(run / "last.pt").exists(), progress=False)
        with atomic_path(run / "done") as scratch:
            scratch.write_text(json.dumps(world_settings(config), sort_keys=True))
    errors = rollout_errors(FrozenWorld.from_checkpoint(run / "best.pt"), held_out,
                            config.horizon)
    return run / "best.pt", errors


class LearnedParts:
    """The value and prior weights of each task, trained once per distinct setting of theirs
    and shared by every cell that asks for the same (settings differ mostly in the search).
    They are kept in ``folder`` too (one file per task, kind and settings, written whole), so a
    stopped run does not train them again."""

    def __init__(self, folder: Path | None = None):
        self.cache: dict[tuple[str, str, str], dict] = {}
        self.folder = folder

    def parts(self, task: str, mpc, world, demos, config: MPCBenchConfig,
              work: Path) -> dict[str, dict]:
        from actjepa_core.policies.mpc import learn_prior, learn_value

        out = {}
        if mpc.cost == "value":
            def value():
                play = read_episodes(demo_paths(task, config, work)["play"],
                                     obs_keys(config)).episodes
                return learn_value(world, demos, play, mpc.value, horizon=mpc.horizon)
            trained = replace(mpc.value, pessimism=0.0)  # pessimism only changes the scoring
            key = repr(trained) + (f" horizon {mpc.horizon}" if trained.conservative else "")
            out["value_state"] = self.get((task, "value", key), value)
        if mpc.prior.mode != "none":
            # neither the mode nor the guard changes training
            settings = replace(mpc.prior, mode="proposal", guard=False, margin=0.0)
            out["prior_state"] = self.get((task, "prior", repr(settings)),
                                          lambda: learn_prior(world, demos, mpc.prior))
        return out

    def get(self, key: tuple[str, str, str], make) -> dict:
        if key not in self.cache:
            path = self.path(key)
            if path is not None and path.is_file():
                saved = torch.load(path, weights_only=True)
                if saved["key"] == list(key):  # a digest collision would be read as a miss
                    self.cache[key] = saved["state"]
            if key not in self.cache:
                self.cache[key] = make()
                if path is not None:
                    with atomic_path(path) as scratch:
                        torch.save({"key": list(key), "state": self.cache[key]}, scratch)
        return self.cache[key]

    def path(self, key: tuple[str, str, str]) -> Path | None:
        if self.folder is None:
            return None
        task, kind, settings = key
        digest = hashlib.sha256(settings.encode()).hexdigest()[:16]
        return self.folder / task / "learned" / f"{kind}-{digest}.pt"


def guard_share(policy) -> dict[str, float]:
    """With ``prior.guard``: the share of ticks that executed the search's plan, and what the
    search gained over the prior's plan under the planning cost (median, p90): the scale a
    margin is chosen on."""
    gains = np.asarray(policy.guard_gains)
    if not gains.size:
        return {}
    p50, p90 = np.percentile(gains, [50, 90])
    executed = float((gains >= policy.config.prior.margin).mean())
    return {"plan_share": round(executed, 4), "guard_gain_p50": round(p50, 3),
            "guard_gain_p90": round(p90, 3)}


def run(config: MPCBenchConfig, work: Path, results: Path, progress: bool = True) -> None:
    from actjepa_core.policies import FrozenWorld, MPCConfig, MPCPolicy

    torch.set_num_threads(1)
    done = set()
    if results.is_file():
        done = {(r["task"], r["setting"]) for r in map(json.loads, results.read_text()
                                                       .splitlines()) if r}
    cells = [(t, s) for t in config.tasks for s in config.settings if (t, s.name) not in done]
    bar = progress_bar(total=len(cells), desc="mpc", unit="cell", disable=not progress)
    worlds: dict[str, tuple[Path, list[float]]] = {}
    learned = LearnedParts(work)
    for task, setting in cells:
        if task not in worlds:
            worlds[task] = ensure_world(task, config, work)
        checkpoint, errors = worlds[task]
        mpc = apply_overrides(MPCConfig(), setting.overrides, where=f"setting {setting.name}")
        world = FrozenWorld.from_checkpoint(checkpoint)
        demos = None
        if mpc.goal == "tracking" or mpc.learns:
            demos = read_episodes(demo_paths(task, config, work)["expert"],
                                  obs_keys(config)).episodes[:-config.val_demos]
        policy = MPCPolicy.build(world, demos, mpc,
                                 learned=learned.parts(task, mpc, world, demos, config, work))
        t0 = time.perf_counter()
        result = evaluate(policy, task, config.eval_episodes, seed=config.eval_seed,
                          max_steps=config.max_steps or None, progress=False,
                          goal_source=setting.goal_source)
        row = {"task": task, "obs": config.obs, "setting": setting.name,
               "goal_source": setting.goal_source,
               "overrides": setting.overrides, "summary": policy.summary(),
               **result.summary(), **guard_share(policy), "rollout_rel_error": errors,
               "eval_wall_s": round(time.perf_counter() - t0, 1),
               "world": {"steps": config.world_steps, "overrides": config.world_overrides,
                         "demos": config.demos - config.val_demos,
                         "play": config.play_episodes, "explore": config.explore},
               "git_commit": git_commit(),
               "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        append_row(results, row)
        bar.write(f"{task} {setting.name}: {result.successes}/{result.episodes}, "
                  f"p50 {result.ms_p50:.1f} ms, p99 {result.ms_p99:.1f} ms per action")
        bar.update(1)
    bar.close()


def report(config: MPCBenchConfig, results: Path) -> str:
    rows = {}
    if results.is_file():
        for line in results.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows[(r["task"], r["setting"])] = r
    header = ["setting", *config.tasks, "ms/action p50 / p99 (max over tasks)"]
    table = []
    for s in config.settings:
        cells, times = [], []
        for t in config.tasks:
            r = rows.get((t, s.name))
            if r is None:
                cells.append("—")
                continue
            low, high = wilson_interval(r["successes"], r["episodes"])
            cells.append(f"**{100 * r['success']:.0f}%** ({r['successes']}/{r['episodes']}, "
                         f"{100 * low:.0f}-{100 * high:.0f}%)")
            times.append((r["ms_p50"], r["ms_p99"]))
        timing = (f"{max(t[0] for t in times):.1f} / {max(t[1] for t in times):.1f}"
                  if times else "—")
        table.append([f"`{s.name}` ({', '.join(s.overrides) or 'defaults'}; goals "
                      f"{s.goal_source})", *cells, timing])
    errors = ["| task | " + " | ".join(f"k={k + 1}" for k in range(config.horizon)) + " |",
              "|---" * (config.horizon + 1) + "|"]
    for t in config.tasks:
        r = next((r for (task, _), r in rows.items() if task == t), None)
        if r and r["rollout_rel_error"]:
            errors.append(f"| {t} | " + " | ".join(f"{e:.3f}" for e in r["rollout_rel_error"])
                          + " |")
    return "\n".join([markdown_table(header, table), "",
                      "World models' k-step latent prediction error on held-out expert demos "
                      "(mean squared distance / total variance of the target latents):", "",
                      *errors])
