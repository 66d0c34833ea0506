#!/usr/bin/env bash
# Issue 6's full loop on the simulated arm (docs/results/state-policies.md): record expert episodes over ROS 2
# (sim node in expert mode + recorder node, one MCAP bag per episode), convert the bags, train
# ACT-JEPA, train a BC head, and evaluate it in closed loop on held-out start configurations.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
A=".venv/bin/python -m actjepa_core.cli"
TASK=${TASK:-reach-v3}; EPISODES=${EPISODES:-50}; RATE=${RATE:-20}
OUT=${OUT:-runs/ros_recorded}; JSONL=${JSONL:-docs/results/ros_recorded.jsonl}
mkdir -p "$OUT"
[ -f "$OUT/recorded.done" ] || { rm -rf "$OUT/bags"; .venv/bin/python -m actjepa_ros.tools.record_demos --task "$TASK" --episodes "$EPISODES" --rate-hz "$RATE" --out "$OUT/bags" && touch "$OUT/recorded.done"; }
cat > "$OUT/convert.yaml" <<YAML
rate_hz: $RATE
max_age_s: 0.2
observations: {state: [/sim_node/state]}
action: {topic: /sim_node/action}
success_topic: /sim_node/success
YAML
[ -f "$OUT/demos.hdf5" ] || $A convert "$OUT"/bags/ --config "$OUT/convert.yaml" --out "$OUT/demos.hdf5"
[ -f "$OUT/world/done" ] || { rm -rf "$OUT/world"; $A train --data "$OUT/demos.hdf5" --config config/train.yaml --out "$OUT/world" --quiet && touch "$OUT/world/done"; }
[ -f "$OUT/bc.pt" ] || $A train-policy bc --encoder "$OUT/world/best.pt" --data "$OUT/demos.hdf5" --out "$OUT/bc.pt" --chunk 10
[ -f "$OUT/eval.done" ] || { $A eval --policy "$OUT/bc.pt" --task "$TASK" --episodes 50 --seed 1 --out "$JSONL" --quiet && touch "$OUT/eval.done"; }
