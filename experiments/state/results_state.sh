#!/usr/bin/env bash
# Issue 4's results table (state observations): for each task, 100 scripted-expert demos (seed 0),
# ACT-JEPA pretraining with config/train.yaml (BC, NN) and on 100 play episodes with 5-step
# rollouts (MPC), BC / NN / MPC policies, and 50 closed-loop episodes
# each on held-out start configurations (seed 1). Resumable: every finished artefact is skipped.
#   usage: experiments/state/results_state.sh [STAGE]   STAGE = world (collect + pretrain) | all (default)
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
A=".venv/bin/python -m actjepa_core.cli"
STAGE=${1:-all}
TASKS=${TASKS:-"reach-v3 push-v3 pick-place-v3"}
EPISODES=${EPISODES:-100}
EVAL_EPISODES=${EVAL_EPISODES:-50}
OUT=${OUT:-runs/results}
JSONL=${JSONL:-docs/results/state.jsonl}
mkdir -p "$OUT" "$(dirname "$JSONL")"

for task in $TASKS; do
  dir=$OUT/$task
  mkdir -p "$dir"
  [ -f "$dir/demos.hdf5" ] || $A collect --task "$task" --episodes "$EPISODES" --seed 0 --out "$dir/demos.hdf5" --quiet
  [ -f "$dir/world/done" ] || { rm -rf "$dir/world"; $A train --data "$dir/demos.hdf5" --config config/train.yaml --out "$dir/world" --quiet && touch "$dir/world/done"; }
  # MPC plans with the predictor, so its world model needs actions off the expert's path (play data)
  # and multi-step rollouts; BC and NN only need the encoder and use the expert-demo model above.
  [ -f "$dir/play.hdf5" ] || $A collect --task "$task" --episodes "$EPISODES" --seed 0 --explore 0.5 --max-steps 100 --out "$dir/play.hdf5" --quiet
  [ -f "$dir/world-play/done" ] || { rm -rf "$dir/world-play"; $A train --data "$dir/play.hdf5" --config config/train.yaml --out "$dir/world-play" --steps 2000 --set loss.rollout_steps=5 --quiet && touch "$dir/world-play/done"; }
done
[ "$STAGE" = world ] && exit 0

for task in $TASKS; do
  dir=$OUT/$task
  [ -f "$dir/bc.pt" ] || $A train-policy bc --encoder "$dir/world/best.pt" --data "$dir/demos.hdf5" --out "$dir/bc.pt"
  [ -f "$dir/nn.pt" ] || $A train-policy nn --encoder "$dir/world/best.pt" --data "$dir/demos.hdf5" --out "$dir/nn.pt"
  [ -f "$dir/mpc.pt" ] || $A train-policy mpc --encoder "$dir/world-play/best.pt" --out "$dir/mpc.pt"
done
for task in $TASKS; do
  dir=$OUT/$task
  [ -f "$dir/eval-expert.done" ] || { $A eval --expert --task "$task" --episodes "$EVAL_EPISODES" --seed 1 --out "$JSONL" && touch "$dir/eval-expert.done"; }
  for policy in bc nn mpc; do
    [ -f "$dir/eval-$policy.done" ] || { $A eval --policy "$dir/$policy.pt" --task "$task" --episodes "$EVAL_EPISODES" --seed 1 --out "$JSONL" && touch "$dir/eval-$policy.done"; }
  done
done

# Test-time observation noise (the paper's §9 robustness table): BC under Gaussian noise of std sigma
# on the normalised observation.
for task in $TASKS; do
  dir=$OUT/$task
  for sigma in 0.05 0.1 0.2 0.3; do
    [ -f "$dir/eval-bc-noise$sigma.done" ] || { $A eval --policy "$dir/bc.pt" --task "$task" --episodes "$EVAL_EPISODES" --seed 1 --noise "$sigma" --out "$JSONL" --quiet && touch "$dir/eval-bc-noise$sigma.done"; }
  done
done

# Baseline: the same BC head on the raw normalised state (no ACT-JEPA encoder).
for task in $TASKS; do
  dir=$OUT/$task
  [ -f "$dir/eval-raw-bc.done" ] || { .venv/bin/python experiments/state/baseline_raw_bc.py --data "$dir/demos.hdf5" --task "$task" --episodes "$EVAL_EPISODES" --seed 1 --out "$JSONL" && touch "$dir/eval-raw-bc.done"; }
done
