"""Observation-to-action latency of policy_node over DDS, as a user of the node sees it.

Starts ``policy_node`` (config/policy.yaml, lock-step) in a child process, publishes an
observation shaped like the checkpoint's inputs (a Float64MultiArray for vector keys, an rgb8
Image for image keys), and times from just before ``publish()`` to the arrival of the action in
this process: serialisation, loopback transport both ways, decoding, encoder, policy, safety
filter. Observations alternate between two random ones, so nothing can be cached. An MPC policy
is given a third random observation as its goal (on private goal topics) before the first sample.

    python benchmarks/dds_latency.py --checkpoint runs/reach/bc.pt
    python benchmarks/dds_latency.py --checkpoint runs/reach64/bc.pt --samples 500 --json
    python benchmarks/dds_latency.py --checkpoint runs/bench/state-mpc.pt

It runs on a private ROS domain (claimed so concurrent tools never share one) with localhost-only
discovery and private topic names, so it cannot command a robot on the network.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, Float64MultiArray

from actjepa_core.policies import policy_class
from actjepa_core.training.checkpoint import load_checkpoint
from actjepa_core.units import MS_PER_S
from actjepa_ros import conversions
from actjepa_ros.share import config_file
from actjepa_ros.tools.processes import NodeProcess, RosClient, claim_domain

TOPIC_PREFIX = "/actjepa_bench"
START_TIMEOUT_S = 120.0  # the node imports torch and loads the checkpoint
REPLY_TIMEOUT_S = 10.0
SETTLE_S = 0.5  # let discovery settle both ways before the first timed sample
PERCENTILES = (50, 90, 99)
EMPTY = "''"  # an empty string in a -p override (`key:=` alone does not parse)
GOAL_TOPICS = {"state": f"{TOPIC_PREFIX}/goal", "image": f"{TOPIC_PREFIX}/goal_image"}  # MPC


def observation_spec(checkpoint: Path) -> tuple[dict[str, dict], bool]:
    """The checkpoint's observation spec (keys, shapes, dtypes), and whether its policy needs a
    goal (MPC)."""
    content = load_checkpoint(checkpoint)
    kind = content.get("policy_type")
    return content["world"]["obs_spec"], bool(kind and policy_class(kind).needs_goal)


def node_arguments(args: argparse.Namespace, spec: dict[str, dict]) -> list[str]:
    """ROS arguments mapping each observation key onto a private bench topic."""
    vectors = [k for k, v in spec.items() if len(v["shape"]) == 1]
    images = [k for k, v in spec.items() if len(v["shape"]) == 3]
    if len(vectors) > 1 or len(images) > 1:
        raise SystemExit(f"dds_latency handles one vector and one image key; the checkpoint "
                         f"has {sorted(spec)}")
    overrides = {
        "checkpoint": str(args.checkpoint.resolve()), "device": args.device,
        "autostart": "true", "mode": "lockstep", "input_qos": args.input_qos,
        "joint_states_key": "",
        "state_key": vectors[0] if vectors else "", "state_topic": f"{TOPIC_PREFIX}/state",
        "image_key": images[0] if images else "", "image_topic": f"{TOPIC_PREFIX}/image",
        "output_topic": f"{TOPIC_PREFIX}/action", "check_header_stamps": "false",
        # subscribed only by a policy that needs a goal
        "goal_topic": GOAL_TOPICS["state"], "goal_image_topic": GOAL_TOPICS["image"],
        "max_delta": "[1000000.0]"}
    ros_args = ["--params-file", str(args.params_file)]
    for key, value in overrides.items():
        ros_args += ["-p", f"{key}:={value or EMPTY}"]
    return ros_args


def random_message(rng: np.random.Generator, shape: Sequence[int], camera: int | None,
                   stamp: Any) -> Any:
    """A random observation part: a Float64MultiArray for a vector, an rgb8 Image (square, of
    side ``camera`` or the model's) for an image."""
    if len(shape) == 1:
        return conversions.to_float64_multi_array(rng.normal(size=shape[0]))
    side = camera or shape[0]
    frame = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    return conversions.rgb_to_image(frame, stamp, "camera")


class Bench:
    """The publishing/receiving side: a RosClient with one publisher per observation key and two
    pre-built observations, alternated; with ``goal``, a goal publisher per key and a third
    observation to send there."""

    def __init__(self, client: RosClient, spec: dict[str, dict], camera: int | None,
                 seed: int = 0, goal: bool = False) -> None:
        self.client = client
        self.actions: list[float] = []  # arrival times (perf_counter)
        client.node.create_subscription(Float64MultiArray, f"{TOPIC_PREFIX}/action",
                                        lambda _: self.actions.append(time.perf_counter()), 10)
        self.node_latency = client.collect(Float64, "/policy_node/latency")
        self.publishers: list[Any] = []
        self.messages: list[list[Any]] = [[], []]
        self.goal_publishers: list[Any] = []
        self.goal: list[Any] = []
        rng = np.random.default_rng(seed)
        stamp = client.node.get_clock().now().to_msg()
        for entry in spec.values():
            shape = entry["shape"]
            kind, msg_type = ("state", Float64MultiArray) if len(shape) == 1 else ("image", Image)
            self.publishers.append(client.publisher(msg_type, f"{TOPIC_PREFIX}/{kind}"))
            for msgs in self.messages:
                msgs.append(random_message(rng, shape, camera, stamp))
            if goal:
                self.goal_publishers.append(client.publisher(msg_type, GOAL_TOPICS[kind]))
                self.goal.append(random_message(rng, shape, camera, stamp))

    def send_goal(self, node: NodeProcess) -> None:
        """Publish the goal (every key) until the node says it has set it or refused it."""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        answered = ("new goal set", "goal refused")
        while time.monotonic() < deadline:
            for pub, msg in zip(self.goal_publishers, self.goal):
                pub.publish(msg)
            if self.client.spin_until(lambda: any(a in node.log() for a in answered), 1.0):
                break
        refused = [line for line in node.log().splitlines() if "goal refused" in line]
        if refused or "new goal set" not in node.log():
            raise SystemExit(f"policy_node did not set the goal within {REPLY_TIMEOUT_S} s"
                             + (f": {refused[0]}" if refused else f"; its log: {node.log_path}"))

    def one(self, index: int) -> float:
        """Publish one observation; seconds until its action arrives."""
        count = len(self.actions)
        started = time.perf_counter()
        for pub, msg in zip(self.publishers, self.messages[index % 2]):
            pub.publish(msg)
        if not self.client.spin_until(lambda: len(self.actions) > count, REPLY_TIMEOUT_S):
            raise SystemExit(f"no action within {REPLY_TIMEOUT_S} s for observation {index}")
        return self.actions[count] - started


def summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * MS_PER_S
    out = {f"p{p}_ms": float(np.percentile(ms, p)) for p in PERCENTILES}
    out.update(mean_ms=float(ms.mean()), max_ms=float(ms.max()), samples=int(ms.size))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec, needs_goal = observation_spec(args.checkpoint)
    domain = args.domain_id if args.domain_id is not None else claim_domain()
    log = Path(tempfile.mkdtemp(prefix="dds_latency_")) / "policy_node.log"
    node = NodeProcess("actjepa_ros.policy_node", node_arguments(args, spec), log, domain)
    client = RosClient(domain, "actjepa_bench")
    try:
        bench = Bench(client, spec, args.camera_size, goal=needs_goal)
        ready = client.spin_until(lambda: not node.alive() or (
            all(p.get_subscription_count() > 0 for p in bench.publishers + bench.goal_publishers)
            and "active:" in node.log()), START_TIMEOUT_S)
        if not ready or not node.alive():
            raise SystemExit(f"policy_node did not become active; its log: {log}")
        client.spin_for(SETTLE_S)
        if needs_goal:
            bench.send_goal(node)
        for i in range(args.warmup):
            bench.one(i)
        times = [bench.one(i) for i in range(args.samples)]
    finally:
        client.close()
        node.stop()
    result = {"checkpoint": str(args.checkpoint),
              "inputs": {k: v["shape"] for k, v in spec.items()}, "goal": needs_goal,
              "camera_size": args.camera_size, "device": args.device,
              "input_qos": args.input_qos, **summary(times)}
    node_ms = [m.data for m in bench.node_latency][args.warmup:]
    if node_ms:
        result["node_p50_ms"] = float(np.percentile(node_ms, 50))
        result["node_p99_ms"] = float(np.percentile(node_ms, 99))
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python benchmarks/dds_latency.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="policy file (.pt)")
    parser.add_argument("--samples", type=int, default=200, help="timed observations")
    parser.add_argument("--warmup", type=int, default=20, help="untimed observations first")
    parser.add_argument("--device", default="cpu", help="the policy's torch device")
    parser.add_argument("--camera-size", type=int, default=None,
                        help="publish square camera frames of this side (the node resizes); "
                             "default: the model's image size")
    parser.add_argument("--input-qos", choices=("reliable", "sensor_data"), default="reliable")
    parser.add_argument("--params-file", type=Path, default=config_file("policy.yaml"))
    parser.add_argument("--domain-id", type=int, default=None,
                        help="ROS domain (default: a free private one)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.checkpoint.is_file():
        print(f"checkpoint {args.checkpoint} does not exist", file=sys.stderr)
        return 2
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['checkpoint']}  inputs {result['inputs']}  ({result['samples']} samples, "
              f"{result['input_qos']} QoS, {result['device']})")
        print("observation published -> action received: "
              + "  ".join(f"p{p} {result[f'p{p}_ms']:.2f} ms" for p in PERCENTILES)
              + f"  max {result['max_ms']:.2f} ms")
        if "node_p50_ms" in result:
            print(f"inside the node (arrival -> publish): p50 {result['node_p50_ms']:.2f} ms  "
                  f"p99 {result['node_p99_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
