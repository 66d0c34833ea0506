"""Baseline for docs/results/state-policies.md: the same BC head as ACT-JEPA + BC, trained on the
raw normalised state instead of the frozen ACT-JEPA latent (the analogue of the paper's "Raw
pixel BC" row).

    .venv/bin/python experiments/state/baseline_raw_bc.py --data runs/results/reach-v3/demos.hdf5 \
        --task reach-v3 --episodes 50 --seed 1 --out docs/results/state.jsonl
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from actjepa_core.data.episodes import read_episodes
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.processor import ObservationProcessor
from actjepa_core.data.transitions import split_episodes
from actjepa_core.evaluation.evaluate import append_jsonl, evaluate, format_table, result_row
from actjepa_core.models.encoders import mlp
from actjepa_core.policies.configs import BCConfig


class RawStateBC:
    """BC head on the normalised state vector; same head, optimiser and steps as BCConfig."""

    policy_type = "raw-bc"

    def __init__(self, data_path: str, config: BCConfig):
        torch.manual_seed(config.seed)
        train_eps, _ = split_episodes(read_episodes(data_path, ["state"]).episodes,
                                      config.val_fraction, config.seed)
        self.processor = ObservationProcessor.from_episodes(
            train_eps, ["state"], Normaliser.fit(train_eps, ["state"]))
        x = self.processor.rows_to_model(self.processor.episode_rows(train_eps))["state"]  # (N, 39)
        y = self.processor.episode_actions(train_eps)  # (N, A)
        self.head = mlp(x.shape[1], config.hidden, y.shape[1], config.activation)
        opt = torch.optim.AdamW(self.head.parameters(), config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
        for _ in range(config.steps):
            i = torch.randint(0, len(x), (config.batch_size,))
            loss = (self.head(x[i]) - y[i]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        self.obs_noise = 0.0

    def reset(self) -> None:
        """Stateless."""

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        x = self.processor.to_model(obs)["state"]  # (1, 39)
        if self.obs_noise > 0:
            x = x + self.obs_noise * torch.randn_like(x)
        return self.processor.to_robot(self.head(x)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    policy = RawStateBC(args.data, BCConfig())
    result = evaluate(policy, args.task, args.episodes, noise=args.noise, seed=args.seed,
                      progress=False)
    row = result_row(result, f"raw-state BC on {args.data}", policy.policy_type)
    append_jsonl(args.out, row)
    print(format_table([row]))


if __name__ == "__main__":
    main()
