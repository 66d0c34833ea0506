#!/usr/bin/env bash
# Why is ACT-JEPA the weakest state representation (docs/results/paper.md)? Offline held-out BC
# action MSE on the push-v3 state demos of `python -m experiments.paper.run --config experiments/paper/paper_state.yaml`
# (same budget as that run: 5,000 encoder steps, 2,000 BC steps), per objective and variant,
# against the mean action. One line per variant goes to docs/results/state-probe.jsonl
# (resumable: a variant already there is skipped).
set -euo pipefail
cd "$(dirname "$0")/../../.."
DATA=${DATA:-runs/paper/demos/push-v3-100.hdf5}
OUT=${OUT:-runs/state_probe}
RESULTS=docs/results/state-probe.jsonl
COMMON=(--data "$DATA" --sigmas 0 --steps 5000 --bc-steps 2000 --quiet)
VARIANTS=(
  "act-jepa|act-jepa|"
  "passive-jepa|passive-jepa|"
  "tau-0.9999|act-jepa|--set ema.tau_start=0.9999 --set ema.tau_end=0.9999"
  "vicreg|act-jepa|--set loss.variance_weight=1 --set loss.covariance_weight=0.04"
  "raw|raw|"
)
# shellcheck source=experiments/paper/probes/compare_variants.sh
source experiments/paper/probes/compare_variants.sh
compare_variants
