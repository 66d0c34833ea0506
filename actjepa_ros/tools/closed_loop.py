"""Closed-loop episodes over ROS 2: the sim node and the policy node as separate processes.

This is the product's main loop as a user meets it, without a ROS install: the simulated arm and
the policy talk only over DDS, in lock-step (one sim step per action), so a run is reproducible and
comparable with the in-process ``actjepa eval`` of the same checkpoint on the same episodes.

The policy commands the arm over one of two interfaces (``interface``): ``array``, the 4-d
Float64MultiArray on ``sim_node/action``, or ``twist``, the way real cells are driven: hand
velocity as TwistStamped on ``sim_node/twist`` (MoveIt Servo's input, frame ``base``) and the
gripper as Float64 on ``sim_node/gripper``. Both give the same episodes, step for step
(test/ros/test_twist_gripper.py); ``twist`` shows the Cartesian path working end to end. A policy
that reads several cameras (observation keys ``image`` and ``image_<C>``, as ``actjepa collect
--obs`` records them) gets each from its own sim_node camera topic.

    python -m actjepa_ros.tools.closed_loop --checkpoint models/reach_policy.pt --episodes 10
    python -m actjepa_ros.tools.closed_loop --checkpoint models/reach_bc.pt --interface twist
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64
from std_srvs.srv import Trigger

from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.demo_video import EpisodeRecord
from actjepa_core.evaluation.evaluate import wilson_interval
from actjepa_core.sim.arm import CAMERA, camera_key, key_cameras
from actjepa_ros.conversions import image_to_rgb
from actjepa_ros.share import config_file, share_dir
from actjepa_ros.sim_cameras import camera_topic
from actjepa_ros.tools.processes import NodeProcess, RosClient, claim_domain

START_TIMEOUT_S = 60.0  # node start-up incl. loading torch and the checkpoint
DRAIN_S = 0.2  # let a last action for an ended episode reach the sim (it drops it) before reset
P99 = 0.99
IMAGE_TOPIC = "camera/image_raw"  # sim_node's (config/sim.yaml) and policy_node's default camera
# how the policy commands the arm: policy_node parameters per interface (sim_node listens on all)
INTERFACES: dict[str, dict[str, str]] = {
    "array": {"output_type": "float64_multi_array", "output_topic": "sim_node/action"},
    "twist": {"output_type": "twist_stamped", "output_topic": "sim_node/twist",
              "gripper_topic": "sim_node/gripper", "output_frame_id": "base"},
}


@dataclass
class ClosedLoopResult:
    task: str
    episodes: int
    seed: int
    successes: int
    success: float
    ci_low: float
    ci_high: float
    mean_length: float
    latency_ms_median: float
    latency_ms_p99: float
    latency_samples: int
    interface: str = "array"  # how the policy commanded the arm (INTERFACES)


def policy_obs_spec(checkpoint: str | Path) -> dict[str, dict]:
    """The observation keys (shape, dtype) a policy file's policy reads."""
    from actjepa_core.policies.base import POLICY
    from actjepa_core.training.checkpoint import load_checkpoint

    return dict(load_checkpoint(checkpoint, kind=POLICY)["world"]["obs_spec"])


def policy_params_files(checkpoint: str | Path) -> list[str]:
    """policy.yaml, and policy_camera.yaml on top for a policy that reads the joint states
    (a camera policy: no task-state vector in the loop)."""
    return ["policy.yaml", *(["policy_camera.yaml"] if "joints" in policy_obs_spec(checkpoint)
                             else [])]


def policy_cameras(checkpoint: str | Path) -> tuple[int, tuple[str, ...]]:
    """(image side, the sim cameras its keys name) for the policy file's policy; (0, ()) if it
    reads no camera. One side for all: sim_node renders every camera at one image_size."""
    spec = policy_obs_spec(checkpoint)
    cameras = key_cameras(spec)
    sizes = {int(spec[camera_key(c)]["shape"][0]) for c in cameras}
    if len(sizes) > 1:
        raise ActJepaError(f"{checkpoint} reads images of sizes {sorted(sizes)}; sim_node renders "
                           "every camera at one image_size (expected one size)")
    return (sizes.pop() if sizes else 0), cameras


def camera_params(cameras: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(sim_node args, policy_node args) that render ``cameras`` and wire each camera's topic
    to its observation key; nothing beyond the defaults for the one default camera."""
    if cameras in ((), (CAMERA,)):
        return [], []
    names = ", ".join(cameras)
    keys = ", ".join(camera_key(c) for c in cameras)
    topics = ", ".join(camera_topic(IMAGE_TOPIC, c) for c in cameras)
    return (["-p", f"cameras:=[{names}]"],
            ["-p", f"image_keys:=[{keys}]", "-p", f"image_topics:=[{topics}]"])


def interface_params(interface: str) -> list[str]:
    """policy_node args that make it command the arm over ``interface`` (INTERFACES)."""
    if interface not in INTERFACES:
        raise ActJepaError(f"interface {interface!r}; expected one of {list(INTERFACES)}")
    return [a for name, value in INTERFACES[interface].items() for a in ("-p", f"{name}:={value}")]


def run_closed_loop(checkpoint: str | Path, task: str = "reach-v3", episodes: int = 10,
                    seed: int = 1, max_steps: int = 150, log_dir: str | Path | None = None,
                    verbose: bool = True, image_size: int = 0,
                    capture: list[EpisodeRecord] | None = None,
                    interface: str = "array") -> ClosedLoopResult:
    """Run ``episodes`` lock-step episodes (sim seed ``seed``) and measure success and latency.

    With ``image_size`` > 0 the sim node also renders its camera; each episode's camera frames
    (as received over ROS), success flags and latencies are appended to ``capture``. A policy
    that reads cameras gets each at its own size, rendered as in its training demos (a
    different ``image_size`` is refused). The policy commands the arm over ``interface``
    (module docstring)."""
    interface_args = interface_params(interface)
    wanted, cameras = policy_cameras(checkpoint)
    views = tuple(c for c in cameras if c != CAMERA) if capture is not None else ()
    if capture is not None and cameras and CAMERA not in cameras:
        cameras = (CAMERA, *cameras)  # the video shows the scene camera
    sim_camera_args, policy_camera_args = camera_params(cameras)
    if wanted and image_size not in (0, wanted):
        raise ActJepaError(f"{checkpoint} reads {wanted}x{wanted} camera images; the sim would "
                         f"render {image_size}x{image_size} (expected image_size {wanted} or 0)")
    image_size = wanted or image_size
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="closed-loop-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    domain = claim_domain()
    checkpoint = Path(checkpoint).resolve()
    sim = NodeProcess("actjepa_ros.sim_node", [
        "--params-file", str(config_file("sim.yaml")), "-p", f"task:={task}",
        "-p", f"seed:={seed}", "-p", f"max_steps:={max_steps}", "-p", "end_on_success:=true",
        "-p", f"image_size:={image_size}", *sim_camera_args],
        log_dir / "sim.log", domain, cwd=share_dir())
    ros = RosClient(domain, name="closed_loop")
    policy = None
    lengths, solved = [], []
    try:
        success = ros.collect(Bool, "/sim_node/success", depth=max_steps * 2)
        latency = ros.collect(Float64, "/policy_node/latency", depth=max_steps * 2)
        images = (ros.collect(Image, f"/{IMAGE_TOPIC}", depth=max_steps * 2)
                  if capture is not None and image_size else [])
        view_images = {c: ros.collect(Image, f"/{camera_topic(IMAGE_TOPIC, c)}",
                                      depth=max_steps * 2) for c in views}
        used_latencies = 0
        if not ros.spin_until(lambda: ros.node.count_publishers("/sim_node/success") > 0,
                              START_TIMEOUT_S):
            raise RuntimeError(f"sim node did not start; see {log_dir / 'sim.log'}")
        params = [a for name in policy_params_files(checkpoint)
                  for a in ("--params-file", str(config_file(name)))]
        policy = NodeProcess("actjepa_ros.policy_node", [
            *params, "-p", f"checkpoint:={checkpoint}", "-p", "use_sim_time:=true",
            *policy_camera_args, *interface_args],
            log_dir / "policy.log", domain, cwd=share_dir())
        for episode in range(episodes):
            if episode:  # the policy's per-episode state first, then the arm
                ros.call(Trigger, "/policy_node/reset", Trigger.Request())
                ros.spin_for(DRAIN_S)
                success.clear()
                ros.call(Trigger, "/sim_node/reset", Trigger.Request())
            t0 = time.monotonic()
            done = ros.spin_until(lambda: any(m.data for m in success)
                                  or len(success) >= max_steps, START_TIMEOUT_S)
            if not done:
                raise RuntimeError(f"episode {episode} stalled; see the logs in {log_dir}")
            solved.append(any(m.data for m in success))
            lengths.append(len(success))
            if capture is not None:
                ros.spin_for(DRAIN_S)  # the episode's last frame and latency
                capture.append(EpisodeRecord(
                    [image_to_rgb(m) for m in images], [m.data for m in success],
                    [m.data for m in latency[used_latencies:]],
                    {c: [image_to_rgb(m) for m in received]
                     for c, received in view_images.items()}))
                images.clear()
                for received in view_images.values():
                    received.clear()
                used_latencies = len(latency)
            if verbose:
                print(f"episode {episode}: {'success' if solved[-1] else 'failure'} after "
                      f"{lengths[-1]} steps ({time.monotonic() - t0:.1f} s)", flush=True)
    finally:
        ros.close()
        if policy is not None:
            policy.stop()
        sim.stop()
    low, high = wilson_interval(sum(solved), len(solved))
    ms = sorted(m.data for m in latency)
    return ClosedLoopResult(task, episodes, seed, sum(solved), sum(solved) / len(solved), low, high,
                            statistics.fmean(lengths),
                            statistics.median(ms) if ms else float("nan"),
                            ms[min(len(ms) - 1, int(P99 * len(ms)))] if ms else float("nan"),
                            len(ms), interface)


def describe_interface(interface: str) -> str:
    """How the commands go, for the printed lines: what and on which topics."""
    topics = INTERFACES[interface]
    if interface == "twist":
        return f"twist on {topics['output_topic']} + gripper on {topics['gripper_topic']}"
    return f"4-d action on {topics['output_topic']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="policy file (actjepa train-policy)")
    parser.add_argument("--task", default="reach-v3")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1, help="sim start configurations")
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--logs", default=None, help="folder for the nodes' logs")
    parser.add_argument("--interface", choices=tuple(INTERFACES), default="array",
                        help="how the policy commands the arm: array (4-d Float64MultiArray on "
                             "sim_node/action) or twist (TwistStamped hand velocity on "
                             "sim_node/twist + Float64 gripper on sim_node/gripper)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        print(f"closed_loop: error: {args.checkpoint}: policy file not found", file=sys.stderr)
        return 2
    r = run_closed_loop(args.checkpoint, args.task, args.episodes, args.seed, args.max_steps,
                        args.logs, verbose=not args.json, interface=args.interface)
    if args.json:
        print(json.dumps(asdict(r)))
    else:
        print(f"\nclosed loop over ROS 2 ({r.task}, {r.episodes} episodes, seed {r.seed}, "
              f"{describe_interface(r.interface)}): "
              f"success {r.successes}/{r.episodes} = {100 * r.success:.0f}% "
              f"(95% CI {100 * r.ci_low:.0f}-{100 * r.ci_high:.0f}%), mean length "
              f"{r.mean_length:.1f} steps\nobservation-to-action latency in the policy node: "
              f"median {r.latency_ms_median:.2f} ms, p99 {r.latency_ms_p99:.2f} ms "
              f"({r.latency_samples} actions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
