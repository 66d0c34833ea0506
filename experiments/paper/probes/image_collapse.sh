#!/usr/bin/env bash
# Why does ACT-JEPA collapse on 64x64 images, and what stops it? Offline held-out BC action MSE of
# ACT-JEPA variants on the reach-v3 image demos of `python -m experiments.paper.run --config
# experiments/paper/paper_image.yaml` (same encoder and batch as that run, 1,000 encoder + 1,000 BC steps),
# against raw BC and the mean action. One line per variant goes to docs/results/image-collapse.jsonl
# (resumable: a variant already there is skipped). docs/results/paper.md quotes them.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DATA=${DATA:-runs/paper/demos/reach-v3-100-64px.hdf5}
OUT=${OUT:-runs/image_collapse}
RESULTS=docs/results/image-collapse.jsonl
COMMON=(--data "$DATA" --sigmas 0 --steps 1000 --bc-steps 1000 --obs-keys image --quiet
        --set optim.batch_size=64 --set "model.image_channels=[16,32,64,128]")
VARIANTS=(
  "plain|act-jepa|"
  "normalise|act-jepa|--set loss.normalise=true"
  "shift|act-jepa|--set augment.shift=4"
  "vicreg|act-jepa|--set loss.variance_weight=1 --set loss.covariance_weight=0.04"
  "raw|raw|"
)
# shellcheck source=experiments/paper/probes/compare_variants.sh
source experiments/paper/probes/compare_variants.sh
compare_variants
