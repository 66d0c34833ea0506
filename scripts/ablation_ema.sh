#!/usr/bin/env bash
# EMA ablation: 3 seeds x {EMA, no EMA} on 100 push-v3 expert demos, default config otherwise.
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
for seed in 0 1 2; do for ema in true false; do
  out=runs/ablation/ema-$ema-s$seed
  [ -f $out/report.txt ] && continue
  rm -rf $out
  .venv/bin/python -m actjepa_core.cli train --data data/push100.hdf5 --config config/train.yaml --out $out --seed $seed --set ema.enabled=$ema --quiet
  .venv/bin/python -m actjepa_core.cli report $out --data data/push100.hdf5 > $out/report.tmp && mv $out/report.tmp $out/report.txt
done; done
# no EMA and no stop-gradient: the target is the online encoder, gradients flow through both sides
for seed in 0 1 2; do
  out=runs/ablation/nosg-s$seed
  [ -f $out/report.txt ] && continue
  rm -rf $out
  .venv/bin/python -m actjepa_core.cli train --data data/push100.hdf5 --config config/train.yaml --out $out --seed $seed --set ema.enabled=false --set loss.stop_gradient=false --quiet
  .venv/bin/python -m actjepa_core.cli report $out --data data/push100.hdf5 > $out/report.tmp && mv $out/report.tmp $out/report.txt
done
