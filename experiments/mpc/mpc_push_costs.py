#!/usr/bin/env python3
"""Why latent MPC fails on push-v3: other planning costs on the same world model, and whether the
predictor foresees the puck at all (issue 11). Resumable: one JSON line per finished variant in
docs/results/mpc-push-costs.jsonl.

Needs the world model and episodes of
`python -m experiments.mpc.run --config experiments/mpc/bench_mpc.yaml`
(runs/bench_mpc/push-v3/...). Costs, all CEM with the default MPCConfig and demo goals:

- ``l2``: squared latent distance to the goal (what experiments.mpc.run measures);
- ``temporal-mlp``: a learned time-to-go d(s, g), an MLP on (s, g) regressed on pairs of one
  episode's latents (expert + play) with the number of ticks between them as the label;
- ``temporal-proj``: the same label, but d = ||P(s) - P(g)|| with an MLP P, a metric by build;
- ``whiten-<r>``: squared Mahalanobis distance under the latents' covariance, shrunk by r
  (whitening weights the rarely varying directions, such as where the puck is, as much as the
  hand's).

``--probe`` fits a linear readout latent -> hand and puck position and reports, over held-out
expert windows where the puck moves, how far the readout of the predictor's 5-step latent lies
from the truth, against "the puck stays put".

    OMP_NUM_THREADS=1 python experiments/mpc/mpc_push_costs.py   # every cost, 20 episodes each
    OMP_NUM_THREADS=1 python experiments/mpc/mpc_push_costs.py --probe   # the object readout
    OMP_NUM_THREADS=1 python experiments/mpc/mpc_push_costs.py --probe --work runs/bench_mpc_contact
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actjepa_core.data.episodes import read_episodes  # noqa: E402
from actjepa_core.evaluation.evaluate import evaluate, git_commit  # noqa: E402
from actjepa_core.policies import FrozenWorld, MPCConfig, MPCPolicy  # noqa: E402
from experiments.paper.runner import append_row  # noqa: E402

TASK = "push-v3"
WORK = ROOT / "runs" / "bench_mpc"
RESULTS = ROOT / "docs" / "results" / "mpc-push-costs.jsonl"
COSTS = ("l2", "temporal-mlp", "temporal-proj", "whiten-0.001", "whiten-0.1", "whiten-1")
VAL_DEMOS = 10  # held out, as in experiments/mpc/bench_mpc.yaml
MAX_TICKS = 150.0  # time-to-go labels are divided by this
FIT_STEPS, FIT_BATCH, HIDDEN, PROJ_DIM = 3000, 512, 256, 64
EPISODES, MAX_STEPS, EVAL_SEED = 20, 150, 1
PROBE_K = 5  # the planning horizon
HAND, PUCK = slice(0, 3), slice(4, 7)


def episodes(work: Path) -> tuple[list, list]:
    expert = read_episodes(work / f"{TASK}-expert.hdf5", ["state"]).episodes
    play = read_episodes(work / f"{TASK}-play.hdf5", ["state"]).episodes
    return expert[:-VAL_DEMOS] + play, expert[-VAL_DEMOS:]


def mlp(inputs: int, out: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(inputs, HIDDEN), torch.nn.ReLU(),
                               torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
                               torch.nn.Linear(HIDDEN, out))


class PairDistance(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.f = mlp(2 * dim, 1)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:  # (..., D) -> (...)
        return self.f(torch.cat([s, g.expand_as(s)], -1)).squeeze(-1)


class ProjectedDistance(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.project = mlp(dim, PROJ_DIM)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (self.project(s) - self.project(g)).norm(dim=-1)


class Whitened(torch.nn.Module):
    def __init__(self, latents: torch.Tensor, shrink: float):
        super().__init__()
        cov = torch.cov(latents.T)
        cov = cov + shrink * cov.diagonal().mean() * torch.eye(len(cov))
        values, vectors = torch.linalg.eigh(cov)
        self.matrix = vectors @ torch.diag(values.rsqrt()) @ vectors.T  # (D, D)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return ((s - g) @ self.matrix).pow(2).sum(-1)


def fit_time_to_go(distance: torch.nn.Module, latents: list[torch.Tensor]) -> None:
    """Pairs (s_t, s_u), u >= t, of one episode; half of the u are the episode's last tick (the
    evaluation's goals are), the label is (u - t) / MAX_TICKS."""
    lengths = torch.tensor([len(z) for z in latents])
    flat, starts = torch.cat(latents), torch.cumsum(lengths, 0) - lengths
    optimiser = torch.optim.AdamW(distance.parameters(), 1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(FIT_STEPS):
        ep = torch.randint(0, len(latents), (FIT_BATCH,), generator=generator)
        t = (torch.rand(FIT_BATCH, generator=generator) * lengths[ep]).long()
        later = t + (torch.rand(FIT_BATCH, generator=generator) * (lengths[ep] - t)).long()
        u = torch.where(torch.rand(FIT_BATCH, generator=generator) < 0.5, lengths[ep] - 1, later)
        predicted = distance(flat[starts[ep] + t], flat[starts[ep] + u])
        loss = (predicted - (u - t).float() / MAX_TICKS).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    distance.requires_grad_(False)


def distance_for(cost: str, latents: list[torch.Tensor]) -> torch.nn.Module | None:
    dim = latents[0].shape[1]
    if cost == "l2":
        return None
    if cost.startswith("whiten-"):
        return Whitened(torch.cat(latents), float(cost.split("-", 1)[1]))
    distance = PairDistance(dim) if cost == "temporal-mlp" else ProjectedDistance(dim)
    fit_time_to_go(distance, latents)
    return distance


def run_cost(cost: str, world: FrozenWorld, train: list) -> dict:
    latents = [world.encode_episodes([e], target=True) for e in train]  # target space: goals'
    distance = distance_for(cost, latents)
    policy = MPCPolicy.build(world, None, MPCConfig())
    if distance is not None:
        def cost_fn(latent, targets):
            def score(actions: torch.Tensor) -> torch.Tensor:  # (N, H, A) -> (N,)
                predicted = policy.model.rollout(latent.expand(len(actions), -1), actions)
                return (distance(predicted, targets.latents[None]) * targets.weights).sum(1)
            return score
        policy.cost_fn = cost_fn
    t0 = time.perf_counter()
    result = evaluate(policy, TASK, EPISODES, seed=EVAL_SEED, max_steps=MAX_STEPS,
                      progress=False, goal_source="demo")
    return {"task": TASK, "cost": cost, **result.summary(),
            "eval_wall_s": round(time.perf_counter() - t0, 1), "git_commit": git_commit()}


def object_probe(world: FrozenWorld, train: list, held_out: list) -> dict:
    """Ridge readout latent -> (hand, puck); errors in cm over windows where the puck moves."""
    z = world.encode_episodes(train, target=True).numpy()
    states = np.concatenate([e.obs["state"] for e in train])[:, :7]
    zb = np.c_[z, np.ones(len(z))]
    weights = np.linalg.solve(zb.T @ zb + 1e-3 * np.eye(zb.shape[1]), zb.T @ states)

    def readout(latent: torch.Tensor) -> np.ndarray:
        return np.c_[latent.numpy(), np.ones(len(latent))] @ weights

    online = world.encode_episodes(held_out)
    target = world.encode_episodes(held_out, target=True)
    actions = world.processor.episode_actions(held_out)
    rows, offset = [], 0
    for ep in held_out:
        truth = ep.obs["state"][:, :7]
        for t in range(ep.num_steps - PROBE_K):
            window = slice(offset + t, offset + t + PROBE_K)
            predicted = world.model.rollout(online[offset + t][None], actions[window][None])
            guess = readout(predicted[0, -1:])[0]
            actual = readout(target[offset + t + PROBE_K][None])[0]
            later = truth[t + PROBE_K]
            rows.append((np.linalg.norm(later[PUCK] - truth[t][PUCK]),
                         np.linalg.norm(guess[PUCK] - later[PUCK]),
                         np.linalg.norm(actual[PUCK] - later[PUCK])))
        offset += ep.num_steps
    r = np.array(rows)
    moving = r[:, 0] > 0.01
    cm = lambda x: round(100 * float(x.mean()), 2)  # noqa: E731
    return {"task": TASK, "probe": "puck", "k": PROBE_K, "windows": int(moving.sum()),
            "predicted_cm": cm(r[moving, 1]), "stay_put_cm": cm(r[moving, 0]),
            "readout_floor_cm": cm(r[moving, 2]), "git_commit": git_commit()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true", help="only the object readout")
    parser.add_argument("--work", type=Path, default=WORK,
                        help="--probe: the MPC study's work folder to read")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    world = FrozenWorld.from_checkpoint(args.work / TASK / "world" / "best.pt")
    train, held_out = episodes(args.work)
    if args.work != WORK and not args.probe:
        parser.error("--work is for --probe; the costs run on runs/bench_mpc")
    if args.probe:
        row = {**object_probe(world, train, held_out), "work": str(args.work.relative_to(ROOT)
                                                                   if args.work.is_absolute()
                                                                   else args.work)}
        append_row(RESULTS, row)
        print(json.dumps(row))
        return
    done = set()
    if RESULTS.is_file():
        done = {json.loads(x).get("cost") for x in RESULTS.read_text().splitlines() if x}
    for cost in COSTS:
        if cost in done:
            continue
        row = run_cost(cost, world, train)
        append_row(RESULTS, row)
        print(f"{cost}: {row['successes']}/{row['episodes']}", flush=True)


if __name__ == "__main__":
    main()
