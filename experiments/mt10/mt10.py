#!/usr/bin/env python3
"""The MT10 table: ACT-JEPA + BC (action chunks of 10) on state, every MT10 task, resumable.

Per task, with the `actjepa` command only: 100 scripted-expert demos (seed 0), ACT-JEPA
pretraining (config/train.yaml), a BC head with chunks of 10 on the frozen encoder, and 50
closed-loop episodes on held-out start configurations (seed 1) for the policy and for the
scripted expert. Every finished step is kept (runs/mt10/<task>/...) and every evaluated cell
is one JSON line in docs/results/mt10.jsonl, so a stopped run resumes where it stopped.

    OMP_NUM_THREADS=1 python experiments/mt10/mt10.py    # run (or resume) everything
    python experiments/mt10/mt10.py --report             # the markdown table from the JSONL
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actjepa_core.sim.tasks import MT10  # noqa: E402

COMMAND = "OMP_NUM_THREADS=1 python experiments/mt10/mt10.py"
CHUNK = 10
DEMOS = 100
EVAL_EPISODES = 50


def actjepa(*args: str) -> None:
    cmd = [sys.executable, "-m", "actjepa_core.cli", *args]
    print("+ actjepa " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def rows(results: Path) -> list[dict]:
    if not results.is_file():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def done(results: Path, task: str, policy: str) -> bool:
    return any(r["task"] == task and r["policy"] == policy for r in rows(results))


def run_task(task: str, work: Path, results: Path) -> None:
    d = work / task
    demos, world, bc = d / "demos.hdf5", d / "world", d / f"bc-chunk{CHUNK}.pt"
    if not demos.is_file():
        actjepa("collect", "--task", task, "--episodes", str(DEMOS), "--seed", "0",
                "--out", str(demos), "--quiet")
    if not (world / "done").is_file():
        actjepa("train", "--data", str(demos), "--config", "config/train.yaml", "--out",
                str(world), "--quiet", *(["--resume"] if (world / "last.pt").is_file() else []))
        (world / "done").touch()
    if not bc.is_file():
        actjepa("train-policy", "bc", "--encoder", str(world / "best.pt"), "--data", str(demos),
                "--out", str(bc), "--chunk", str(CHUNK))
    for policy in ("expert", str(bc)):
        if not done(results, task, policy):
            who = ["--expert"] if policy == "expert" else ["--policy", policy]
            actjepa("eval", *who, "--task", task, "--episodes", str(EVAL_EPISODES), "--seed",
                    "1", "--out", str(results), "--quiet")


def pct(row: dict | None) -> str:
    if row is None:
        return "—"
    return (f"**{100 * row['success']:.0f}%** ({row['successes']}/{row['episodes']}, "
            f"{100 * row['ci_low']:.0f}-{100 * row['ci_high']:.0f}%)")


def report(results: Path) -> str:
    table = {(r["task"], "expert" if r["policy"] == "expert" else "bc"): r
             for r in rows(results)}
    lines = ["| task | ACT-JEPA + BC, chunk 10 | scripted expert |", "|---|---|---|"]
    ours = []
    for task in MT10:
        bc = table.get((task, "bc"))
        if bc:
            ours.append(bc["success"])
        lines.append(f"| {task} | {pct(bc)} | {pct(table.get((task, 'expert')))} |")
    if ours:
        lines.append(f"| **mean over {len(ours)} of {len(MT10)} tasks** | "
                     f"**{100 * sum(ours) / len(ours):.0f}%** | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/mt10", help="demos, encoders, policies")
    parser.add_argument("--results", default="docs/results/mt10.jsonl")
    parser.add_argument("--tasks", default=",".join(MT10), help="subset, comma-separated")
    parser.add_argument("--report", action="store_true", help="only print the table")
    args = parser.parse_args()
    results, work = ROOT / args.results, ROOT / args.work
    if not args.report:
        for task in args.tasks.split(","):
            started = time.monotonic()
            run_task(task, work, results)
            print(f"== {task} done ({time.monotonic() - started:.0f} s)", flush=True)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
