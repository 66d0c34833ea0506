"""Record expert demonstrations over ROS 2: the sim node in expert mode drives the arm, the
recorder node writes one rosbag2 (MCAP) per episode; the same path a user takes with a real arm
and ``ros2 bag record``, ending in bags for ``actjepa convert``.

    python -m actjepa_ros.tools.record_demos --task reach-v3 --episodes 50 --out runs/ros_bags
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from std_srvs.srv import Trigger

from actjepa_ros.recorder_node import SIM_TOPICS
from actjepa_ros.share import config_file, share_dir
from actjepa_ros.tools.processes import NodeProcess, RosClient, claim_domain

TOPICS = "[" + ",".join(SIM_TOPICS) + "]"  # as a -p override: the recorder's default topics
TYPES = ("[sensor_msgs/msg/JointState,std_msgs/msg/Float64MultiArray,"
         "std_msgs/msg/Float64MultiArray,std_msgs/msg/Bool]")
START_TIMEOUT_S = 60.0
EPISODE_TIMEOUT_S = 120.0
SETTLE_S = 0.5  # messages in flight land in the bag before a stop


def record(task: str, episodes: int, out: Path, rate_hz: float, max_steps: int,
           seed: int = 0) -> list[str]:
    """Record ``episodes`` expert episodes; returns the bag paths, one per episode."""
    out.mkdir(parents=True, exist_ok=True)
    domain = claim_domain()
    recorder = NodeProcess("actjepa_ros.recorder_node", [
        "--params-file", str(config_file("recorder.yaml")), "-p", f"topics:={TOPICS}",
        "-p", f"types:={TYPES}", "-p", f"output_dir:={out.resolve()}", "-p", "autostart:=true"],
        out / "recorder.log", domain, cwd=share_dir())
    ros = RosClient(domain, name="record_demos")
    sim = None
    bags: list[str] = []
    try:
        _wait_for_log(ros, recorder, "episode 0: recording", START_TIMEOUT_S)
        sim = NodeProcess("actjepa_ros.sim_node", [
            "--params-file", str(config_file("sim.yaml")), "-p", "expert:=true",
            "-p", f"task:={task}", "-p", f"seed:={seed}", "-p", f"max_steps:={max_steps}",
            "-p", f"rate_hz:={rate_hz}", "-p", "end_on_success:=true",
            "-p", "steps_after_success:=10"], out / "sim.log", domain, cwd=share_dir())
        for episode in range(episodes):
            if episode:
                ros.call(Trigger, "/recorder_node/start", Trigger.Request())
                ros.call(Trigger, "/sim_node/reset", Trigger.Request())
            _wait_for_log(ros, sim, f"episode {episode} ended", EPISODE_TIMEOUT_S)
            ros.spin_for(SETTLE_S)
            bags.append(ros.call(Trigger, "/recorder_node/stop", Trigger.Request()).message)
            print(f"episode {episode}: {bags[-1]}", flush=True)
    finally:
        ros.close()
        if sim is not None:
            sim.stop()
        recorder.stop()
    return bags


def _wait_for_log(ros: RosClient, node: NodeProcess, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in node.log():
        if time.monotonic() > deadline or not node.alive():
            raise RuntimeError(f"waited for '{text}' in {node.log_path}: {node.log()[-1500:]}")
        ros.spin_for(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reach-v3")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--out", required=True, help="folder for the bags (one per episode)")
    parser.add_argument("--rate-hz", type=float, default=20.0, help="sim control rate")
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bags = record(args.task, args.episodes, Path(args.out), args.rate_hz, args.max_steps,
                  args.seed)
    print(f"recorded {len(bags)} episodes into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
