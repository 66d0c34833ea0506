#!/usr/bin/env python3
# ruff: noqa: E402, E501, E702, E741, I001
# (kept as the development probe that produced the figures it prints, not restyled)
"""Does the TD-learned goal value (planning/value.py) order held-out push demos by time to go, and
does it prefer the expert's 5 actions over random ones in the world model's predictions?

Trains V on the contact world's target latents (expert + play, `experiments/mpc/bench_mpc_contact.yaml`'s
work folder) with the given ValueConfig overrides and prints: the Spearman correlation of
V(s_t, g_final) with t on 10 held-out expert demos, V along one demo, the agreement of V on the
predicted and the true latent 5 ticks ahead, and the share of 128 random 5-step sequences the
expert's sequence beats on V of its prediction. docs/results/mpc.md quotes its printout:

    OMP_NUM_THREADS=1 python experiments/mpc/value_probe.py value.steps=5000    # Spearman 0.89
    OMP_NUM_THREADS=1 python experiments/mpc/value_probe.py                     # 20,000: 0.998
"""
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from actjepa_core.config import apply_overrides
from actjepa_core.planning.value import ValueConfig, fit_value
from actjepa_core.policies import FrozenWorld
from actjepa_core.data.episodes import read_episodes
torch.set_num_threads(1)
work = ROOT / 'runs/bench_mpc_contact'; task = 'push-v3'
ex = read_episodes(work / f'{task}-expert.hdf5', ['state']).episodes
expert, held = ex[:-10], ex[-10:]
play = read_episodes(work / f'{task}-play.hdf5', ['state']).episodes
world = FrozenWorld.from_checkpoint(work / task / 'world' / 'best.pt')
cfg = apply_overrides(ValueConfig(), sys.argv[1:])
eps = expert + play
z = world.encode_episodes(eps, target=True)
t = time.time()
v, losses = fit_value(z, [e.num_steps for e in eps], cfg)
print('fit', round(time.time()-t), 's losses', [round(l, 3) for l in losses])
from scipy.stats import spearmanr
rs = []; pred = []
for e in held:
    zt = world.encode_episodes([e], target=True); zo = world.encode_episodes([e])
    g = zt[-1]
    vals = v(zt, g)
    rs.append(spearmanr(vals.numpy(), range(len(vals)))[0])
    # predicted 5-step latents from expert actions
    a = world.processor.episode_actions([e])
    H = 5
    for s0 in range(0, len(zt) - H, 10):
        p = world.model.rollout(zo[s0:s0+1], a[None, s0:s0+H])[0, -1]
        pred.append((float(v(p, g)), float(v(zt[s0+H], g)), float(v(zt[s0], g))))
import numpy as np
pred = np.array(pred)
print('spearman V vs t on held-out expert demos', np.round(rs, 2), 'mean', np.mean(rs).round(3))
print('V first/last of demo0', [round(float(x), 1) for x in v(world.encode_episodes([held[0]], target=True), world.encode_episodes([held[0]], target=True)[-1])[::10]])
print('V(pred_H) vs V(true_H) corr', np.corrcoef(pred[:, 0], pred[:, 1])[0, 1].round(3), 'mean abs diff', np.abs(pred[:,0]-pred[:,1]).mean().round(2), 'mean gain true', (pred[:,1]-pred[:,2]).mean().round(2))
# random actions from the same starts: is V higher for expert than for random?
g = torch.Generator().manual_seed(0)
wins = []
for e in held:
    zt = world.encode_episodes([e], target=True); zo = world.encode_episodes([e]); a = world.processor.episode_actions([e])
    for s0 in range(0, len(zt) - 5, 10):
        rand = torch.rand((128, 5, a.shape[1]), generator=g) * 2 - 1
        acts = torch.cat([a[None, s0:s0+5], rand])
        p = world.model.rollout(zo[s0:s0+1].expand(len(acts), -1), acts)[:, -1]
        vals = v(p, zt[-1])
        wins.append(float((vals[1:] < vals[0]).float().mean()))
print('share of 128 random sequences the expert sequence beats on V(pred)', np.mean(wins).round(3))
