"""Closed-loop evaluation on the simulated arm: success rate (with a Wilson interval), episode
length and policy latency, for any policy file or Meta-World's scripted expert.

Episode i of an evaluation with seed s starts from the same configuration as episode i of
``actjepa collect --seed s`` (sim.py), and different seeds never share one: evaluating with
``seed=1`` (the default) never replays a start configuration of the default demos (``seed=0``).
An episode ends at its first success (Meta-World's criterion) or after ``max_steps`` ticks.

Test-time noise: ``policy.obs_noise = sigma`` adds N(0, sigma^2) to the normalised observation the
policy sees (standardised state; images on the [0, 1] pixel scale), never to the simulator. The
noise stream is re-seeded per episode, so any episode can be replayed alone.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.goals import DEFAULT_GOAL_SOURCE, GoalMaker
from actjepa_core.evaluation.tables import text_table
from actjepa_core.policies.base import Policy
from actjepa_core.progress import progress_bar
from actjepa_core.sim.arm import CAMERA, IMAGE_KEY, OBS_KEYS, SimArm, camera_key, key_cameras
from actjepa_core.sim.experts import expert_action, make_expert
from actjepa_core.units import MS_PER_S

DEFAULT_SEED = 1  # `actjepa collect` defaults to seed 0: evaluation must not replay demo starts
Z_95 = 1.959963984540054  # standard normal quantile for a two-sided 95% interval
PERCENTILES = (50.0, 99.0)
SIM_KEYS = OBS_KEYS  # what SimArm observes (besides image_<camera>)
NOISE_SEED_SHIFT = 32  # episode noise seed = (seed << 32) + episode: distinct for every pair


class Controller(Protocol):
    """What evaluate() drives: a Policy, or the scripted expert."""

    obs_noise: float

    def reset(self) -> None: ...

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray: ...


class ExpertPolicy:
    """Meta-World's scripted expert for ``task``, acting on the observation's state vector."""

    policy_type = "expert"

    def __init__(self, task: str) -> None:
        self._expert = make_expert(task)
        self.obs_noise = 0.0

    def reset(self) -> None:
        """The expert is stateless."""

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return expert_action(self._expert, obs["state"])


@dataclass
class EpisodeRecord:
    episode: int
    success: bool
    length: int  # ticks until first success, or max_steps
    ms_per_step: float  # mean policy time per tick in this episode
    # Meta-World's obj_to_target at the end (reach: tool centre to target; push, pick-place:
    # object to goal), metres: a continuous outcome, which a few episodes measure far more
    # steadily than a success count
    final_distance: float = float("nan")


@dataclass
class EvalResult:
    task: str
    episodes: int
    noise: float
    seed: int
    max_steps: int
    successes: int
    success: float  # rate in [0, 1]
    ci_low: float  # 95% Wilson score interval of the rate
    ci_high: float
    mean_length: float
    mean_final_distance: float  # metres; see EpisodeRecord.final_distance
    ms_mean: float  # policy time per step (act() only, not the simulator)
    ms_p50: float
    ms_p99: float
    records: list[EpisodeRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Every field but the per-episode records."""
        return {k: v for k, v in asdict(self).items() if k != "records"}


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial rate: sensible at 0/n and n/n, unlike the normal
    approximation, which matters for 50-episode success rates near 0% or 100%."""
    if n < 1 or not 0 <= successes <= n:
        raise ActJepaError(f"wilson_interval got {successes} successes of {n}; expected "
                           "n >= 1 and 0 <= successes <= n")
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate(policy: Controller, task: str, episodes: int, noise: float = 0.0,
             seed: int = DEFAULT_SEED, max_steps: int | None = None, progress: bool = True,
             goal_source: str = DEFAULT_GOAL_SOURCE) -> EvalResult:
    """Run ``episodes`` closed-loop episodes of ``task`` and measure success and latency.

    A policy that plans toward a goal (latent MPC) gets one each episode from goals.py, built the
    ``goal_source`` way (one of ``goals.GOAL_SOURCES``).
    """
    if episodes < 1:
        raise ActJepaError(f"episodes is {episodes}; expected an integer >= 1")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ActJepaError(f"noise is {noise}; expected a finite value >= 0")
    if noise > 0 and not isinstance(policy, Policy):
        raise ActJepaError(f"observation noise needs a learned policy (it is added to the "
                           f"normalised observation); got {type(policy).__name__}")
    image_size, cameras = sim_cameras(policy)
    arm = SimArm(task, seed=seed, image_size=image_size, max_steps=max_steps,
                 proprio=isinstance(policy, Policy) and "proprio" in policy.obs_spec,
                 joints=isinstance(policy, Policy) and "joints" in policy.obs_spec,
                 cameras=cameras or (CAMERA,))
    goals: GoalMaker | None = None
    old_noise, policy.obs_noise = policy.obs_noise, noise
    records: list[EpisodeRecord] = []
    times: list[float] = []
    bar = progress_bar(total=episodes, desc=f"eval {task}", unit="ep", disable=not progress)
    try:
        if getattr(policy, "needs_goal", False):
            goals = GoalMaker(task, seed, goal_source, arm.image_size)
        for i in range(episodes):
            records.append(run_episode(policy, arm, i, seed, goals, times))
            bar.update(1)
            bar.set_postfix(success=f"{sum(r.success for r in records)}/{i + 1}")
    finally:
        bar.close()
        policy.obs_noise = old_noise
        arm.close()
        if goals is not None:
            goals.close()
    return summarise(records, times, task, noise, seed, arm.max_steps)


def run_episode(policy: Controller, arm: SimArm, episode: int, seed: int,
                goals: GoalMaker | None, times: list[float]) -> EpisodeRecord:
    """One episode until first success or the step limit; appends act() times (s) to ``times``."""
    obs = arm.reset(episode)
    policy.reset()
    if isinstance(policy, Policy):
        policy.noise_generator.manual_seed((seed << NOISE_SEED_SHIFT) + episode)
    if goals is not None:
        targets = goals.goals(episode, obs)
        if len(targets) > 1 and hasattr(policy, "set_subgoals"):
            policy.set_subgoals(targets)
        else:
            policy.set_goal(targets[-1])
    success, start = False, len(times)
    while arm.steps < arm.max_steps and not success:
        t0 = time.perf_counter()
        action = policy.act(obs)
        times.append(time.perf_counter() - t0)
        obs, success = arm.step(action)
    ms = MS_PER_S * float(np.mean(times[start:])) if len(times) > start else 0.0
    distance = arm.task_metrics().get("obj_to_target", float("nan"))
    return EpisodeRecord(episode, success, arm.steps, ms, distance)


def summarise(records: list[EpisodeRecord], times: list[float], task: str, noise: float,
              seed: int, max_steps: int) -> EvalResult:
    n, wins = len(records), sum(r.success for r in records)
    low, high = wilson_interval(wins, n)
    ms = MS_PER_S * np.asarray(times) if times else np.zeros(1)
    p50, p99 = np.percentile(ms, PERCENTILES)
    return EvalResult(task, n, noise, seed, max_steps, wins, wins / n, low, high,
                      float(np.mean([r.length for r in records])),
                      float(np.mean([r.final_distance for r in records])), float(ms.mean()),
                      float(p50),
                      float(p99), records)


def sim_cameras(policy: Controller) -> tuple[int | None, tuple[str, ...]]:
    """The image size and cameras a policy's observation spec asks the simulator for: ``image``
    is the default camera, ``image_<C>`` camera C (sim/arm.py); (None, ()) for state only."""
    if not isinstance(policy, Policy):
        return None, ()
    unknown = sorted(k for k in policy.obs_spec
                     if k not in SIM_KEYS and not k.startswith(IMAGE_KEY + "_"))
    if unknown:
        raise ActJepaError(f"the policy expects observation key(s) {unknown}; the simulated arm "
                           f"provides {list(SIM_KEYS)} and image_<camera>")
    cameras = key_cameras(policy.obs_spec)
    sizes = set()
    for camera in cameras:
        shape = tuple(policy.obs_spec[camera_key(camera)]["shape"])
        if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3:
            raise ActJepaError(f"the policy expects {camera_key(camera)} images of shape "
                               f"{shape}; the simulated arm renders square RGB images (S, S, 3)")
        sizes.add(int(shape[0]))
    if len(sizes) > 1:
        raise ActJepaError(f"the policy expects images of sizes {sorted(sizes)}; the simulated "
                           "arm renders every camera at one size")
    return (sizes.pop() if sizes else None), cameras


# ---- results file --------------------------------------------------------------------------
def result_row(result: EvalResult, policy: str, policy_type: str,
               goal_source: str | None = None, variant: str = "") -> dict[str, Any]:
    """One JSON line for the results file: what ran, what came out, when, from which commit."""
    row = {"policy": policy, "type": policy_type, **result.summary()}
    if variant:
        row["variant"] = variant
    if goal_source is not None:
        row["goal_source"] = goal_source
    row["timestamp"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    row["git_commit"] = git_commit()
    return row


def append_jsonl(path: str | Path, row: Mapping[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def git_commit() -> str | None:
    """HEAD of the checkout this package runs from, or None outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() if out.returncode == 0 else ""
    return commit or None


TABLE_COLUMNS = (("type", "{}"), ("task", "{}"), ("episodes", "{}"), ("noise", "{:g}"),
                 ("success", "{:.0%}"), ("ci_low", "{:.0%}"), ("ci_high", "{:.0%}"),
                 ("mean_length", "{:.1f}"), ("ms_p50", "{:.2f}"), ("ms_p99", "{:.2f}"))


def format_table(rows: list[Mapping[str, Any]]) -> str:
    """Rows of result_row() as an aligned text table."""
    return text_table([name for name, _ in TABLE_COLUMNS],
                      ([fmt.format(row[name]) for name, fmt in TABLE_COLUMNS] for row in rows))
