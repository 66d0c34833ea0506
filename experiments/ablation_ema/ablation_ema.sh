#!/usr/bin/env bash
# EMA ablation (docs/BENCHMARKS.md): 3 seeds x {EMA, no EMA, no EMA + no stop-gradient} on 100
# push-v3 expert demos, default config otherwise. Resumable: finished runs are skipped.
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
[ -f data/push100.hdf5 ] || .venv/bin/python -m actjepa_core.cli collect --task push-v3 --episodes 100 --seed 0 --out data/push100.hdf5 --quiet
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
