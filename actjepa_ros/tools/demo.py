"""`make demo`: a shipped policy drives the simulated arm over ROS 2, and you can watch it.

The same two-process loop as ``closed_loop`` (sim_node and policy_node talking only over DDS, in
lock-step) with the sim camera on: every frame it publishes is received over ROS and written to
a video with the step, the outcome and the control latency drawn on, beside a PNG summary
(success per episode, latency histogram) and one still frame. It prints where they are.

    python -m actjepa_ros.tools.demo --task pick-place-v3 --episodes 10
    python -m actjepa_ros.tools.demo --task push-v3 --checkpoint models/push_bc.pt --video x.gif
    python -m actjepa_ros.tools.demo --task push-v3 --interface twist   # MoveIt Servo-style

``--interface twist`` has the policy command the arm as a real cell would be commanded:
TwistStamped hand velocity on ``sim_node/twist`` plus a Float64 gripper command on
``sim_node/gripper``, instead of the 4-d array (closed_loop.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.demo_video import (
    EpisodeRecord,
    still,
    video_frames,
    write_frame,
    write_summary,
    write_video,
)
from actjepa_ros.share import share_dir

IMAGE_SIZE = 128  # sim camera side (px) for the video of a policy that reads no camera
MAX_STEPS = 200  # per episode: the shipped policies solve within ~150 steps when they do
# --policy-kind -> models/<task>_<suffix>.pt
KINDS = {"camera": "camera", "wrist": "wrist", "state": "bc"}
INTERFACES = ("array", "twist")  # closed_loop.INTERFACES (not imported here: it loads MuJoCo)


def shipped_policy(task: str, kind: str = "camera") -> Path:
    """models/<task without -v3>_camera.pt (camera + joint states; _wrist.pt adds the wrist
    camera; _bc.pt reads the simulator's task state), in the source tree or the installed share
    folder."""
    name = f"{task.removesuffix('-v3')}_{KINDS[kind]}.pt"
    for root in (Path.cwd(), share_dir()):
        if (root / "models" / name).is_file():
            return root / "models" / name
    raise ActJepaError(f"no shipped policy models/{name} for {task}; expected one of "
                       "reach, push, pick-place (or pass --checkpoint)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick-place-v3")
    parser.add_argument("--checkpoint", default=None,
                        help="policy file (default: the shipped models/<task>_camera.pt)")
    parser.add_argument("--policy-kind", choices=tuple(KINDS), default="camera",
                        help="which shipped policy without --checkpoint: camera (camera + joint "
                             "states, what a real arm has), wrist (a scene and a wrist camera + "
                             "joint states) or state (the simulator's task state)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1,
                        help="sim start configurations (the policies were trained on seed 0)")
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS)
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE,
                        help="sim camera side for the video of a policy that reads no camera "
                             "(a camera policy gets its own size)")
    parser.add_argument("--out", default="runs/demo-video", help="folder for the outputs")
    parser.add_argument("--video", default=None,
                        help="video file, .mp4 or .gif (default: OUT/<task>.mp4)")
    parser.add_argument("--interface", choices=INTERFACES, default="array",
                        help="how the policy commands the arm: array (4-d Float64MultiArray on "
                             "sim_node/action) or twist (TwistStamped hand velocity on "
                             "sim_node/twist + Float64 gripper on sim_node/gripper, as MoveIt "
                             "Servo and a gripper driver take them)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        checkpoint = (Path(args.checkpoint) if args.checkpoint
                      else shipped_policy(args.task, args.policy_kind))
        if not checkpoint.is_file():
            raise ActJepaError(f"{checkpoint}: policy file not found")
        # loads MuJoCo, torch, rclpy
        from actjepa_core.sim.arm import CAMERA
        from actjepa_ros.tools.closed_loop import (
            describe_interface,
            policy_cameras,
            run_closed_loop,
        )

        side, cameras = policy_cameras(checkpoint)
        reads_scene = CAMERA in cameras  # the video's picture is the policy's own input

        out = Path(args.out)
        records: list[EpisodeRecord] = []
        print(f"{args.task}: {checkpoint} drives sim_node over ROS 2 ({args.episodes} episodes, "
              f"seed {args.seed}, lock-step, {describe_interface(args.interface)})", flush=True)
        r = run_closed_loop(checkpoint, args.task, args.episodes, args.seed, args.max_steps,
                            out / "logs", image_size=side or args.image_size,
                            capture=records, interface=args.interface)
        frames = video_frames(records, args.task, inset=reads_scene)
        video = write_video(args.video or out / f"{args.task}.mp4", frames)
        summary = write_summary(out / f"{args.task}-summary.png", records, args.task,
                                f" (95% CI {100 * r.ci_low:.0f}-{100 * r.ci_high:.0f}%)")
        frame = write_frame(out / f"{args.task}-frame.png",
                            still(records, args.task, inset=reads_scene))
    except ActJepaError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 2
    print(f"\nclosed loop over ROS 2 ({r.task}, {r.episodes} episodes, seed {r.seed}): success "
          f"{r.successes}/{r.episodes} = {100 * r.success:.0f}% (95% CI {100 * r.ci_low:.0f}-"
          f"{100 * r.ci_high:.0f}%), mean length {r.mean_length:.1f} steps\n"
          f"observation-to-action latency in the policy node: median {r.latency_ms_median:.2f} "
          f"ms, p99 {r.latency_ms_p99:.2f} ms ({r.latency_samples} actions)\n"
          f"video:   {video}\nsummary: {summary}\nframe:   {frame}\n"
          f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
