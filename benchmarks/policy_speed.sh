#!/usr/bin/env bash
# Per-step act() latency of BC / NN / MPC for state and 64x64 image observations, and the NN query
# time against memory size (docs/BENCHMARKS.md). State policies come from experiments/state/results_state.sh;
# the image ones from a small image world model made here (latency only: quality is not the point).
set -euo pipefail
cd "$(dirname "$0")/.."
A=".venv/bin/python -m actjepa_core.cli"
B=".venv/bin/python -m actjepa_core.bench.policy_speed --repeats ${REPEATS:-500} --threads ${THREADS:-1}"
OUT=${OUT:-runs/bench}
mkdir -p "$OUT"
for p in bc nn mpc; do $B --policy runs/results/reach-v3/$p.pt --data runs/results/reach-v3/demos.hdf5; done
[ -f "$OUT/img.hdf5" ] || MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa $A collect --task reach-v3 --episodes 6 --image-size 64 --out "$OUT/img.hdf5" --quiet
[ -f "$OUT/img-world/done" ] || { rm -rf "$OUT/img-world"; $A train --data "$OUT/img.hdf5" --out "$OUT/img-world" --steps 200 --set 'data.obs_keys=[image]' --quiet && touch "$OUT/img-world/done"; }
[ -f "$OUT/img-bc.pt" ] || $A train-policy bc --encoder "$OUT/img-world/last.pt" --data "$OUT/img.hdf5" --out "$OUT/img-bc.pt" --steps 200
[ -f "$OUT/img-nn.pt" ] || $A train-policy nn --encoder "$OUT/img-world/last.pt" --data "$OUT/img.hdf5" --out "$OUT/img-nn.pt"
[ -f "$OUT/img-mpc.pt" ] || $A train-policy mpc --encoder "$OUT/img-world/last.pt" --out "$OUT/img-mpc.pt"
for p in bc nn mpc; do $B --policy "$OUT/img-$p.pt" --data "$OUT/img.hdf5"; done
$B --sizes 10000 100000 1000000 --repeats ${NN_REPEATS:-100}
