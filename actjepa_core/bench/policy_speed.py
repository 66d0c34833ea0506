"""Policy speed: NN query time against memory size, and per-step ``act()`` latency of a policy file.

    python -m actjepa_core.bench.policy_speed --sizes 10000 100000 1000000
    python -m actjepa_core.bench.policy_speed --policy policies/bc.pt --data demos.hdf5

The memory sweep uses random latents (the search cost depends on M and D, not on what the latents
mean); ``act()`` latency is measured on real demo observations, so it includes the observation
checks, normalisation and the encoder forward pass, exactly what a control loop pays per tick.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from actjepa_core.device import resolve_device
from actjepa_core.policies.configs import NNConfig
from actjepa_core.policies.nearest import nearest, squared_norms
from actjepa_core.units import MS_PER_S

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
LATENT_DIM = 128  # the default D
WARMUP = 10  # untimed calls first: allocator and thread-pool start-up are not per-step costs


def timings_ms(call: Callable[[int], object], repeats: int, device: torch.device) -> np.ndarray:
    """Wall time of ``call(i)`` for i in range(repeats), in ms, after WARMUP untimed calls."""
    for i in range(WARMUP):
        call(i)
    times = []
    for i in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        call(i)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) * MS_PER_S)
    return np.asarray(times)


def summary(times_ms: np.ndarray) -> dict[str, float]:
    return {"median_ms": float(np.median(times_ms)), "p99_ms": float(np.percentile(times_ms, 99)),
            "repeats": int(len(times_ms))}


@torch.no_grad()
def nn_query_benchmark(sizes: tuple[int, ...] = DEFAULT_SIZES, dim: int = LATENT_DIM, k: int = 1,
                       repeats: int = 100, device: str = "cpu",
                       block: int = NNConfig().search_chunk, seed: int = 0) -> dict[int, dict]:
    """Single-query search time (median, p99) for random (M, dim) float32 memories of each size."""
    dev = resolve_device(device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    results = {}
    for size in sizes:
        memory = torch.randn(dim, size, generator=generator).to(dev)  # (D, M): column-wise
        memory_sq = squared_norms(memory)  # (M,), once per memory as the policy does
        queries = torch.randn(repeats + WARMUP, 1, dim, generator=generator).to(dev)  # (R, 1, D)
        times = timings_ms(lambda i, m=memory, q=queries, sq=memory_sq:
                           nearest(m, q[i % len(q)], k, block, sq), repeats, dev)
        results[size] = {**summary(times), "memory_mib": memory.numel() * 4 / 2**20}
        del memory, memory_sq
    return results


def act_latency(policy, observations: list[dict[str, np.ndarray]],
                repeats: int = 500) -> dict[str, float]:
    """Per-step ``policy.act(obs)`` latency (median, p99) over ``observations`` in turn."""
    policy.reset()
    return summary(timings_ms(lambda i: policy.act(observations[i % len(observations)]),
                              repeats, policy.device))


def demo_observations(path: str | Path, keys: list[str], limit: int) -> list[dict[str, np.ndarray]]:
    """Up to ``limit`` observations from an episodes file, in demo order."""
    from actjepa_core.data.episodes import read_episodes

    observations = []
    for ep in read_episodes(path, keys).episodes:
        for t in range(ep.num_steps):
            observations.append({key: ep.obs[key][t] for key in keys})
            if len(observations) >= limit:
                return observations
    return observations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=None,
                        help=f"memory sizes to sweep (default {list(DEFAULT_SIZES)} unless "
                             "--policy is given)")
    parser.add_argument("--policy", default=None, help="policy file: measure its act() latency")
    parser.add_argument("--data", default=None, help="episodes file whose observations to act on")
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}")
    if args.policy:
        from actjepa_core.policies import load_policy

        policy = load_policy(args.policy, device=args.device)
        observations = demo_observations(args.data, list(policy.obs_spec), args.repeats)
        if policy.needs_goal:  # MPC plans toward a goal: a demo's final observation
            policy.set_goal(observations[-1])
        row = act_latency(policy, observations, args.repeats)
        print(f"{args.policy} ({policy.policy_type}, obs {sorted(policy.obs_spec)}): act() "
              f"median {row['median_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms")
    sizes = args.sizes if args.sizes is not None else ([] if args.policy else DEFAULT_SIZES)
    for size, row in nn_query_benchmark(tuple(sizes), repeats=args.repeats,
                                        device=args.device).items():
        print(f"nn query, M={size:>9,d} x D={LATENT_DIM}: median {row['median_ms']:.3f} ms, "
              f"p99 {row['p99_ms']:.3f} ms ({row['memory_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
