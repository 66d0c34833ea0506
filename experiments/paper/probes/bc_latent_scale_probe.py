"""Does the BC head's input scale decide the frozen-encoder results? Held-out BC action MSE on
frozen encoders of the image table, with the latents as they are (the protocol so far) and
standardised per dimension (mean/std of the training demos' latents).

    python experiments/paper/probes/bc_latent_scale_probe.py --task reach-v3 \
        --methods act-jepa autoencoder
    python experiments/paper/probes/bc_latent_scale_probe.py --obs state --task push-v3 \
        --methods act-jepa raw

Reads the encoders and demos `python -m experiments.paper.run` left in runs/paper (seed 0, 100
demos);
prints one JSON line per (method, scaling); docs/results/bc-latent-scale.jsonl holds its output.
"""
from __future__ import annotations

import argparse
import json

import torch

from actjepa_core.data.episodes import read_episodes
from actjepa_core.data.transitions import split_episodes
from actjepa_core.policies.bc import BCHead, chunk_targets, fit_head, mse
from actjepa_core.policies.configs import BCConfig
from actjepa_core.policies.world import FrozenWorld


def tensors(world: FrozenWorld, episodes) -> tuple[torch.Tensor, torch.Tensor]:
    latents = world.encode_episodes(episodes)  # (N, D)
    targets = chunk_targets(world.processor.episode_actions(episodes),
                            [ep.num_steps for ep in episodes], 1)  # (N, 1, A)
    return latents, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="reach-v3")
    parser.add_argument("--methods", nargs="+", default=["act-jepa", "autoencoder"])
    parser.add_argument("--work", default="runs/paper")
    parser.add_argument("--obs", choices=("image", "state"), default="image")
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = "-64px" if args.obs == "image" else ""
    data = read_episodes(f"{args.work}/demos/{args.task}-100{size}.hdf5", [args.obs])
    config = BCConfig()
    train_eps, val_eps = split_episodes(data.episodes, config.val_fraction, config.seed)
    for method in args.methods:
        world = FrozenWorld.from_checkpoint(
            f"{args.work}/{args.obs}/{args.task}/{method}/d100/s0/world/best.pt")
        latents, targets = tensors(world, train_eps)
        val_latents, val_targets = tensors(world, val_eps)
        mean, std = latents.mean(0), latents.std(0).clamp_min(1e-8)
        baseline = float((val_targets - targets.mean(dim=(0, 1))).pow(2).mean())
        for scaling, (x, v) in {"as is": (latents, val_latents),
                                "standardised": ((latents - mean) / std,
                                                 (val_latents - mean) / std)}.items():
            torch.manual_seed(config.seed)
            head = BCHead(world.latent_dim, world.action_dim, config)
            fit_head(head, x, targets, config)
            print(json.dumps({"obs": args.obs, "task": args.task, "method": method,
                              "latents": scaling,
                              "val_mse": round(mse(head, v, val_targets), 4),
                              "mean_action_mse": round(baseline, 4),
                              "latent_std": round(float(latents.std(0).mean()), 5)}))


if __name__ == "__main__":
    main()
