#!/usr/bin/env bash
# ACT-JEPA + BC with action chunks of 10 and temporal ensembling (as the published ACT-JEPA predicts
# action chunks), on the same world models and held-out episodes as experiments/state/results_state.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
A=".venv/bin/python -m actjepa_core.cli"
OUT=${OUT:-runs/results}; JSONL=${JSONL:-docs/results/state.jsonl}; CHUNK=${CHUNK:-10}
for task in ${TASKS:-reach-v3 push-v3 pick-place-v3}; do
  dir=$OUT/$task
  [ -f "$dir/bc-chunk$CHUNK.pt" ] || $A train-policy bc --encoder "$dir/world/best.pt" --data "$dir/demos.hdf5" --out "$dir/bc-chunk$CHUNK.pt" --chunk "$CHUNK"
  [ -f "$dir/eval-bc-chunk$CHUNK.done" ] || { $A eval --policy "$dir/bc-chunk$CHUNK.pt" --task "$task" --episodes ${EVAL_EPISODES:-50} --seed 1 --out "$JSONL" --quiet && touch "$dir/eval-bc-chunk$CHUNK.done"; }
done
