"""`actjepa compare`: the paper's comparison on YOUR demonstrations, offline.

Without a simulator of your robot there is no closed-loop success rate, so the comparison is the
one BC itself optimises: on whole demos held out from both the encoder's and the head's training,
the mean squared error of the frozen-encoder BC head's action (normalised to [-1, 1]), clean and
under test-time Gaussian noise on the model's input (standardised states, [0, 1] pixels). Every
objective gets the same encoder, latent size, training steps, split and head; a row differs in the
objective alone. Lower is better; the mean-action baseline (always predicting the training mean)
says what "learned nothing" scores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from actjepa_core.config import TrainConfig, apply_overrides
from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.data.transitions import split_episodes
from actjepa_core.evaluation.tables import markdown_table
from actjepa_core.objectives import OBJECTIVES

NOISE_SEED = 0
ENCODE_BATCH = 1024


@dataclass
class CompareRow:
    objective: str
    sigma: float
    val_mse: float
    mean_action_mse: float
    val_samples: int


@torch.no_grad()
def noisy_mse(policy, episodes: Sequence[Episode], sigma: float) -> float:
    """Held-out action MSE of a BC policy (chunk 1) with N(0, sigma^2) on the model input."""
    processor, model = policy.processor, policy.world.model
    rows = processor.episode_rows(episodes)
    targets = processor.episode_actions(episodes)  # (N, A)
    generator = torch.Generator(device=processor.device).manual_seed(NOISE_SEED)
    total, n = 0.0, len(targets)
    for start in range(0, n, ENCODE_BATCH):
        x = processor.rows_to_model({k: v[start:start + ENCODE_BATCH] for k, v in rows.items()})
        x = {k: v + sigma * torch.randn(v.shape, device=v.device, generator=generator)
             for k, v in x.items()} if sigma > 0 else x
        predicted = policy.head(model.encode(x))[:, 0]  # (b, A): the next action
        total += float((predicted - targets[start:start + ENCODE_BATCH]).pow(2).sum())
    return total / targets.numel()


def compare(data: EpisodeSet, run_dir: Path, objectives: Sequence[str], sigmas: Sequence[float],
            steps: int, overrides: Sequence[str] = (), seed: int = 0,
            bc_steps: int = 2000, progress: bool = True) -> list[CompareRow]:
    from actjepa_core.policies import BCPolicy, FrozenWorld
    from actjepa_core.policies.configs import BCConfig
    from actjepa_core.training.trainer import train

    rows = []
    for name in objectives:
        config = apply_overrides(TrainConfig(), [f"objective={name}", f"optim.steps={steps}",
                                                 f"run.seed={seed}", *overrides])
        folder = run_dir / name
        if not (folder / "best.pt").exists():
            train(data, config, folder, progress=progress)
        bc = BCConfig(steps=bc_steps, seed=seed, val_fraction=config.data.val_fraction)
        policy = BCPolicy.build(FrozenWorld.from_checkpoint(folder / "best.pt"), data, bc)
        _, held_out = split_episodes(data.episodes, bc.val_fraction, seed)  # as both trainers
        for sigma in sigmas:
            rows.append(CompareRow(name, float(sigma), noisy_mse(policy, held_out, sigma),
                                   policy.fit.mean_action_mse, policy.fit.val_samples))
    return rows


def table(rows: Sequence[CompareRow]) -> str:
    sigmas = sorted({r.sigma for r in rows})
    names = list(dict.fromkeys(r.objective for r in rows))
    cell = {(r.objective, r.sigma): r for r in rows}
    body = [[n, *[f"{cell[(n, s)].val_mse:.4f}" if (n, s) in cell else "—" for s in sigmas]]
            for n in names]
    baseline = rows[0].mean_action_mse if rows else float("nan")
    body.append(["(mean-action baseline)", *[f"{baseline:.4f}" for _ in sigmas]])
    return markdown_table(["objective", *[f"held-out action MSE, σ = {s:g}" for s in sigmas]],
                          body)


def write_jsonl(rows: Sequence[CompareRow], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r.__dict__) + "\n")


DEFAULT_OBJECTIVES = tuple(OBJECTIVES)
