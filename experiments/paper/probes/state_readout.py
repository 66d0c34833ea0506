#!/usr/bin/env python3
"""What does each frozen state encoder of experiments/paper/probes/state_probe.sh keep? A ridge
readout from the latent back to each part of Meta-World's state (hand, gripper, puck, previous
frame, goal, hand velocity), R^2 on 20 held-out push-v3 demos, plus the latents' effective rank
(participation ratio of the singular values) and scale. One JSON line per encoder in
docs/results/state-readout.jsonl (rewritten whole: it only reads finished encoders).

    OMP_NUM_THREADS=1 python experiments/paper/probes/state_readout.py   # after state_probe.sh
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from actjepa_core.atomic import atomic_path  # noqa: E402
from actjepa_core.data.episodes import read_episodes  # noqa: E402
from actjepa_core.policies import FrozenWorld  # noqa: E402

DATA = ROOT / "runs" / "paper" / "demos" / "push-v3-100.hdf5"
PROBES = ROOT / "runs" / "state_probe"
RESULTS = ROOT / "docs" / "results" / "state-readout.jsonl"
VARIANTS = ("act-jepa", "passive-jepa", "tau-0.9999", "vicreg", "raw")
HELD_OUT = 20
RIDGE = 1e-3
PARTS = {"hand": slice(0, 3), "gripper": slice(3, 4), "puck": slice(4, 7),
         "puck_quat": slice(7, 11), "prev_hand": slice(18, 21), "prev_puck": slice(22, 25),
         "goal": slice(36, 39)}


def r2(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(1 - ((predicted - truth) ** 2).sum() / ((truth - truth.mean(0)) ** 2).sum())


def readout(world: FrozenWorld, train: list, held_out: list) -> dict:
    z, zv = world.encode_episodes(train).numpy(), world.encode_episodes(held_out).numpy()
    s = np.concatenate([e.obs["state"] for e in train])
    sv = np.concatenate([e.obs["state"] for e in held_out])
    zb = np.c_[z, np.ones(len(z))]
    weights = np.linalg.solve(zb.T @ zb + RIDGE * np.eye(zb.shape[1]), zb.T @ s)
    p = np.c_[zv, np.ones(len(zv))] @ weights
    row = {f"r2_{name}": round(r2(p[:, part], sv[:, part]), 4) for name, part in PARTS.items()}
    hand, prev = PARTS["hand"], PARTS["prev_hand"]
    row["r2_hand_velocity"] = round(r2(p[:, hand] - p[:, prev], sv[:, hand] - sv[:, prev]), 4)
    singular = np.linalg.svd(z - z.mean(0), compute_uv=False)
    row["effective_rank"] = round(float((singular ** 2).sum() ** 2 / (singular ** 4).sum()), 2)
    row["latent_std"] = round(float(z.std(0).mean()), 4)
    return row


def main() -> None:
    torch.set_num_threads(1)
    episodes = read_episodes(DATA, ["state"]).episodes
    train, held_out = episodes[:-HELD_OUT], episodes[-HELD_OUT:]
    rows = []
    for name in VARIANTS:
        found = sorted((PROBES / name).glob("*/best.pt"))
        if not found:
            print(f"{name}: no encoder under {PROBES / name}; run "
                  "experiments/paper/probes/state_probe.sh first")
            continue
        row = {"variant": name, **readout(FrozenWorld.from_checkpoint(found[0]), train,
                                          held_out)}
        rows.append(row)
        print(json.dumps(row))
    with atomic_path(RESULTS) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
