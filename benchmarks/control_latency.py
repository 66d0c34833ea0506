"""Control latency against today's targets, all measured side by side in one run.

    .venv/bin/python benchmarks/control_latency.py --out docs/BENCHMARKS.md
    .venv/bin/python benchmarks/control_latency.py --build-only          # the policies alone
    .venv/bin/python benchmarks/control_latency.py --samples 50          # a quick look, printed

Rows, each against its target on p99:
- state BC, observation published -> action received over DDS (benchmarks/dds_latency.py: a real
  policy_node process, Fast DDS on loopback): p99 < 5 ms;
- 64x64 image BC, the same path with an rgb8 Image: p99 < 15 ms;
- latent MPC, CEM 256 samples x horizon 10 x 3 iterations, ``policy.act(obs)`` in process on one
  torch thread (as policy_node's ``torch_threads: 1``), on demo observations: p99 < 25 ms;
  and the same policy over DDS (goal sent first), for the transport's share (no target).

The policies are small but real (`actjepa collect`, `train`, `train-policy` on reach-v3), built
once and kept in --work (default runs/bench/, shared with benchmarks/policy_speed.sh: the same
img.hdf5, img-world/ and img-bc.pt); delete a file there to rebuild it. Training length does not
change the latency (the layer sizes are the config's defaults). With --out the block between
``<!-- bench:control-latency:start -->`` and its end marker is rewritten (train_speed's
``write_section``), with the machine and the load average at the start and end of the measuring.

Python rather than a shell script: the build runs in this one process (`actjepa`'s own main,
no torch start-up per step), and the percentiles, the pass/fail column and the block need code
anyway; the DDS rows run benchmarks/dds_latency.py's own ``run`` (a policy_node process each).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import dds_latency  # benchmarks/, this script's folder
import torch
import yaml

from actjepa_core.bench.policy_speed import demo_observations, timings_ms
from actjepa_core.bench.train_speed import machine_line
from actjepa_core.cli import main as actjepa
from actjepa_core.evaluation.sections import write_section
from actjepa_core.evaluation.tables import markdown_table
from actjepa_core.units import MS_PER_S

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BLOCK = "control-latency"
TASK = "reach-v3"
MPC = {"planner": "cem", "horizon": 10, "cem": {"samples": 256, "iterations": 3}}
MPC_NAME = "CEM 256 samples x horizon 10 x 3 iterations"
TARGETS_MS = {"state-bc-dds": 5.0, "image-bc-dds": 15.0, "mpc-act": 25.0}  # p99 must stay below
ROWS = {  # key -> (what, path)
    "state-bc-dds": ("state BC (39-d Float64MultiArray)", "over DDS, policy_node process"),
    "image-bc-dds": ("64x64 image BC (rgb8 Image)", "over DDS, policy_node process"),
    "mpc-act": (f"state MPC, {MPC_NAME}", "`act()` in process"),
    "mpc-dds": (f"state MPC, {MPC_NAME}", "over DDS, policy_node process"),
}


# ---- the policies, built once ------------------------------------------------------------------
def run_actjepa(argv: list[str]) -> None:
    print("+ actjepa " + shlex.join(argv), flush=True)
    code = actjepa(argv)
    if code:
        raise SystemExit(f"actjepa {argv[0]} failed ({code})")


def stale(out: Path, *inputs: Path) -> bool:
    """Make's rule: ``out`` is missing or older than one of its inputs."""
    return not out.is_file() or any(out.stat().st_mtime < i.stat().st_mtime for i in inputs)


def world(work: Path, name: str, data: Path, steps: int, extra: list[str]) -> Path:
    """A world model in work/name (done once: the `done` marker, as policy_speed.sh)."""
    out = work / name
    if stale(out / "done", data):
        run_actjepa(["train", "--data", str(data), "--out", str(out), "--steps", str(steps),
                     "--quiet", *extra])
        (out / "done").touch()
    return out / "last.pt"


def demos(path: Path, episodes: int, max_steps: int | None, image_size: int | None) -> Path:
    if not path.is_file():
        run_actjepa(["collect", "--task", TASK, "--episodes", str(episodes), "--out", str(path),
                     "--quiet", *(["--image-size", str(image_size)] if image_size else []),
                     *(["--max-steps", str(max_steps)] if max_steps else [])])
    return path


def bc(encoder: Path, data: Path, out: Path, steps: int) -> Path:
    if stale(out, encoder, data):
        run_actjepa(["train-policy", "bc", "--encoder", str(encoder), "--data", str(data),
                     "--out", str(out), "--steps", str(steps)])
    return out


def mpc(encoder: Path, work: Path) -> Path:
    """The MPC policy file (no training: the world model plus MPC); remade if a cached one plans
    with other settings."""
    from actjepa_core.policies import load_policy

    out, config = work / "state-mpc.pt", work / "state-mpc.yaml"
    if not stale(out, encoder):
        c = load_policy(out).config
        if (c.planner, c.horizon, c.cem.samples, c.cem.iterations) == (
                MPC["planner"], MPC["horizon"], MPC["cem"]["samples"], MPC["cem"]["iterations"]):
            return out
    config.write_text("# benchmarks/control_latency.py: the planner of the MPC latency target\n"
                      + yaml.safe_dump(MPC, sort_keys=False))
    run_actjepa(["train-policy", "mpc", "--encoder", str(encoder), "--out", str(out),
                 "--config", str(config)])
    return out


def build(args: argparse.Namespace) -> dict[str, Path]:
    """State demos -> state world -> state BC and MPC; 64x64 image demos -> image world -> image
    BC (policy_speed.sh's recipe and file names)."""
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    state = demos(work / "state.hdf5", args.episodes, args.max_steps, None)
    state_world = world(work, "state-world", state, args.steps, [])
    image = demos(work / "img.hdf5", args.episodes, args.max_steps, 64)
    image_world = world(work, "img-world", image, args.steps, ["--set", "data.obs_keys=[image]"])
    return {"state-data": state,
            "state-bc": bc(state_world, state, work / "state-bc.pt", args.steps),
            "mpc": mpc(state_world, work),
            "image-bc": bc(image_world, image, work / "img-bc.pt", args.steps)}


# ---- measuring ---------------------------------------------------------------------------------
def over_dds(checkpoint: Path, samples: int, warmup: int) -> dict[str, Any]:
    """``benchmarks/dds_latency.py`` on one policy file: its own policy_node process, a client
    in this one (its own rclpy context and private domain)."""
    argv = ["--checkpoint", str(checkpoint), "--samples", str(samples), "--warmup", str(warmup)]
    print("+ python benchmarks/dds_latency.py " + shlex.join(argv), flush=True)
    return dds_latency.run(dds_latency.build_parser().parse_args(argv))


def in_process(policy_path: Path, data: Path, samples: int, threads: int) -> dict[str, Any]:
    """``policy.act(obs)`` on demo observations in turn, goal = the last one (policy_speed's way),
    on ``threads`` torch threads."""
    from actjepa_core.policies import load_policy

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        policy = load_policy(policy_path)
        observations = demo_observations(data, list(policy.obs_spec), samples)
        policy.reset()
        policy.set_goal(observations[-1])
        ms = timings_ms(lambda i: policy.act(observations[i % len(observations)]), samples,
                        policy.device)
    finally:
        torch.set_num_threads(before)
    return {"checkpoint": str(policy_path), "policy": policy.summary(),
            **dds_latency.summary(ms / MS_PER_S)}


def measure(paths: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = {"state-bc-dds": over_dds(paths["state-bc"], args.samples, args.warmup),
            "image-bc-dds": over_dds(paths["image-bc"], args.samples, args.warmup),
            "mpc-act": in_process(paths["mpc"], paths["state-data"], args.samples, args.threads)}
    if not args.no_mpc_dds:
        rows["mpc-dds"] = over_dds(paths["mpc"], args.samples, args.warmup)
    return {"rows": rows, "load_start": load_start, "load_end": os.getloadavg(),
            "seconds": time.perf_counter() - t0, "built": args.built}


# ---- the block ---------------------------------------------------------------------------------
def verdict(key: str, row: dict[str, Any]) -> tuple[str, str]:
    target = TARGETS_MS.get(key)
    if target is None:
        return "-", "- (transport's share)"
    return f"p99 < {target:g} ms", "pass" if row["p99_ms"] < target else "**FAIL**"


def render(result: dict[str, Any], command: str, threads: int) -> str:
    table = []
    for key, row in result["rows"].items():
        what, path = ROWS[key]
        target, ok = verdict(key, row)
        node = (f"{row['node_p50_ms']:.2f} / {row['node_p99_ms']:.2f} ms"
                if "node_p50_ms" in row else "-")
        table.append([what, path, f"{row['samples']:,d}",
                      *(f"{row[k]:.2f} ms" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                      node, target, ok])
    load = ", ".join("/".join(f"{x:.2f}" for x in result[k]) for k in ("load_start", "load_end"))
    cores = os.cpu_count() or 1
    # the measuring itself keeps about one process running: more than that at the end, or more
    # than half the cores busy before it began, is other work sharing the machine
    busy = result["load_start"][0] > cores / 2 or result["load_end"][0] > cores
    return "\n".join([
        f"### Control latency against the targets: {machine_line(torch.device('cpu'), threads)}",
        "",
        f"`{command}`: the three targets side by side in one run of "
        f"{result['seconds']:.0f} s. Over DDS: observation published -> action received "
        "(`benchmarks/dds_latency.py`, reliable QoS, policy_node with `config/policy.yaml`, "
        "1 torch thread), random observations, untimed warm-up first; 'inside the node' is its "
        "own arrival -> publish. In process: `policy.act(obs)` on reach-v3 demo observations, "
        f"{threads} torch thread{'s' if threads > 1 else ''}. Load average (1/5/15 min) at the "
        f"start and end of the measuring: {load}."
        + (" Policies built in this run just before (the start figure includes that)."
           if result["built"] else ""),
        "",
        markdown_table(["policy", "path", "samples", "p50", "p90", "p99", "max",
                        "inside the node p50 / p99", "target", "met"], table),
        *(["", f"**Not representative:** other work shared the machine (1-min load average "
               f"above {cores / 2:g} at the start or above {cores} at the end, on {cores} "
               "cores)."] if busy else []),
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python benchmarks/control_latency.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file whose control-latency block to rewrite, e.g. "
                             "docs/BENCHMARKS.md (default: print only)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench",
                        help="where the policies are built once and kept")
    parser.add_argument("--samples", type=int, default=500, help="timed actions per row")
    parser.add_argument("--warmup", type=int, default=20, help="untimed actions first (DDS rows)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, in-process row")
    parser.add_argument("--no-mpc-dds", action="store_true", help="leave out MPC over DDS")
    parser.add_argument("--build-only", action="store_true", help="build the policies, stop")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a row misses its target")
    build = parser.add_argument_group("building (once, into --work)")
    build.add_argument("--episodes", type=int, default=6, help="reach-v3 demos, state and image")
    build.add_argument("--max-steps", type=int, default=None, help="cap per demo")
    build.add_argument("--steps", type=int, default=200, help="world-model and BC steps")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    # headless MuJoCo for the image demos (the Makefile's defaults), before anything imports it
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    started, wall = time.perf_counter(), time.time()
    paths = build(args)
    args.built = any(p.stat().st_mtime >= wall for p in paths.values())
    if args.build_only:
        print(f"built in {time.perf_counter() - started:.0f} s: "
              + ", ".join(str(p) for p in paths.values()))
        return 0
    result = measure(paths, args)
    command = " ".join(["python benchmarks/control_latency.py", shlex.join(argv)]).strip()
    text = render(result, command, args.threads)
    print(text)
    if args.out:
        write_section(args.out, BLOCK, text)
        print(f"wrote the {BLOCK} block into {args.out}")
    print(f"{time.perf_counter() - started:.0f} s in all")
    missed = [k for k, r in result["rows"].items() if verdict(k, r)[1] == "**FAIL**"]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
