"""Where one training step's time goes (docs/BENCHMARKS.md), and eager vs torch.compile side by
side.

    .venv/bin/python benchmarks/profile_train_step.py --data data/push100.hdf5
Same trainer, sizes and batch as `actjepa bench train`'s "ours, fp32" row.
"""
from __future__ import annotations

import argparse
import statistics

import torch
from torch.profiler import ProfilerActivity, profile

from actjepa_core.bench.train_speed import OursRunner
from actjepa_core.data.episodes import read_episodes

PROFILED_STEPS, TIMED_STEPS, REPEATS = 50, 200, 4


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    args = p.parse_args()
    data = read_episodes(args.data, ["state"])
    eager = OursRunner(data, torch.device("cpu"))
    eager.run(30)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        eager.run(PROFILED_STEPS)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / PROFILED_STEPS / 1e3
    matmul = sum(e.self_cpu_time_total for e in events
                 if e.key in ("aten::mm", "aten::addmm")) / PROFILED_STEPS / 1e3
    print(f"profiled step: {total:.2f} ms, of which matmuls {matmul:.2f} ms "
          f"({100 * matmul / total:.0f}%)")
    compiled = OursRunner(data, torch.device("cpu"))
    compiled.trainer.loss_fn = torch.compile(compiled.trainer.model.loss)
    compiled.run(30)
    rates = {"eager": [], "compiled": []}
    for _ in range(REPEATS):  # alternate so machine noise hits both alike
        rates["eager"].append(TIMED_STEPS / eager.run(TIMED_STEPS))
        rates["compiled"].append(TIMED_STEPS / compiled.run(TIMED_STEPS))
    for name, values in rates.items():
        print(f"{name}: median {statistics.median(values):.0f} steps/s "
              f"(range {min(values):.0f}-{max(values):.0f})")


if __name__ == "__main__":
    main()
