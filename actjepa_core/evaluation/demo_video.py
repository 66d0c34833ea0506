"""A watchable record of closed-loop episodes: annotated video (MP4 or GIF) and a PNG summary.

Each video frame is the sim camera's picture at one step, enlarged, with the task, episode,
step, the control latency of the action that led to it and the outcome drawn on; a coloured
border turns green once the episode is solved. A camera policy's own inputs (the scene camera and
any other camera it reads, such as a wrist camera) are drawn pixel for pixel down the right side.
The summary shows the success of every episode (bar height: steps taken) and the latency
histogram. Pure numpy/OpenCV/matplotlib; MP4 is written with PyAV (H.264), GIF with Pillow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from actjepa_core.atomic import atomic_path
from actjepa_core.errors import ActJepaError

SCALE = 2  # sim pixels -> video pixels (at least)
VIDEO_SIDE = 256  # smaller pictures (a camera policy's own input) are enlarged to about this
INSET_MARGIN = 6  # px between the policy-input inset and the picture's corner
INSET_LABEL_PX = 12  # room above each inset for its label
BAR_PX = 44  # status bar under the picture
FPS = 30  # video frames per second (the arm ticks at 80 Hz: the video runs a little slow)
HOLD_S = 0.6  # the last frame of each episode is held this long
GREEN, RED, GREY, WHITE = (46, 204, 64), (220, 53, 69), (90, 90, 90), (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class EpisodeRecord:
    """One episode as the closed loop saw it: camera frames (uint8 HxWx3 RGB, step order),
    success flag per step, latency (ms) of each action, and the frames of the policy's other
    cameras by camera name (what a two-camera policy read beside the scene)."""

    frames: list[np.ndarray]
    success: list[bool]
    latency_ms: list[float] = field(default_factory=list)
    views: dict[str, list[np.ndarray]] = field(default_factory=dict)

    @property
    def solved(self) -> bool:
        return any(self.success)

    @property
    def steps(self) -> int:
        return len(self.success)


def annotate(frame: np.ndarray, task: str, episode: int, episodes: int, step: int,
             solved: bool, latency_ms: float | None, done: bool,
             inset: bool = False,
             views: Sequence[tuple[str, np.ndarray]] = ()) -> np.ndarray:
    """One video frame: the picture enlarged, a border, the status bar; with ``inset`` (the
    frame is what a camera policy read) that frame at its own size in the top-right corner, and
    below it each of ``views`` (camera name, frame): the other cameras the policy read."""
    scale = max(SCALE, VIDEO_SIDE // frame.shape[1])
    picture = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale),
                         interpolation=cv2.INTER_NEAREST)
    height, width = picture.shape[:2]
    out = np.zeros((height + BAR_PX, width, 3), np.uint8)
    out[:height] = picture
    top = INSET_MARGIN + INSET_LABEL_PX
    for label, shown in ([("policy input", frame)] if inset else []) + list(views):
        top = draw_inset(out, shown, top, label) + INSET_MARGIN + INSET_LABEL_PX
    colour = GREEN if solved else (RED if done else GREY)
    cv2.rectangle(out, (0, 0), (width - 1, height - 1), colour, 3)
    cv2.putText(out, f"{task}  ep {episode + 1}/{episodes}", (8, 18), FONT, 0.45, WHITE, 1,
                cv2.LINE_AA)
    status = "SUCCESS" if solved else ("FAILED" if done else "running")
    latency = f"{latency_ms:5.1f} ms" if latency_ms is not None else "   -   "
    cv2.putText(out, f"step {step:3d}   latency {latency}", (8, height + 17), FONT, 0.45,
                WHITE, 1, cv2.LINE_AA)
    cv2.putText(out, status, (8, height + 37), FONT, 0.5, colour, 1, cv2.LINE_AA)
    return out


def draw_inset(out: np.ndarray, frame: np.ndarray, top: int, label: str) -> int:
    """``frame`` pixel for pixel, framed and labelled, at the right edge of ``out`` from row
    ``top``; returns the row below it. An inset that would leave the picture is not drawn."""
    h, w = frame.shape[:2]
    left = out.shape[1] - w - INSET_MARGIN
    if top + h > out.shape[0] - BAR_PX or left < 0:
        return top + h
    out[top:top + h, left:left + w] = frame
    cv2.rectangle(out, (left - 1, top - 1), (left + w, top + h), WHITE, 1)
    cv2.putText(out, label, (left - 18, top - 4), FONT, 0.35, WHITE, 1, cv2.LINE_AA)
    return top + h


def episode_frames(record: EpisodeRecord, episode: int, episodes: int, task: str,
                   inset: bool = False) -> list[np.ndarray]:
    """The annotated frames of one episode: the last ``steps + 1`` frames received (the sim
    re-sends the start picture until the policy answers), frame i showing the arm after i
    actions. Latencies align to the last steps (a latency sample can be lost while the
    subscription is being matched at the start, never at the end)."""
    frames = record.frames[-(record.steps + 1):]
    offset = len(frames) - record.steps  # 1 when the frame right after the reset is there
    missing = record.steps - len(record.latency_ms)
    views = {name: aligned(shown, len(frames)) for name, shown in record.views.items() if shown}
    out = []
    for i, frame in enumerate(frames):
        step = i - offset + 1
        solved = any(record.success[:step])
        latency = record.latency_ms[step - 1 - missing] if step - 1 - missing >= 0 else None
        out.append(annotate(frame, task, episode, episodes, max(step, 0), solved, latency,
                            i == len(frames) - 1, inset,
                            [(name, shown[i]) for name, shown in views.items()]))
    return out


def aligned(frames: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """Another camera's frames matched to the scene's last ``count``: both cameras publish once
    per step, so they align from the end; a frame missing at the start repeats the first."""
    kept = list(frames[-count:])
    return kept[:1] * (count - len(kept)) + kept


def video_frames(records: Sequence[EpisodeRecord], task: str,
                 inset: bool = False) -> list[np.ndarray]:
    """Every episode's annotated frames, the last of each held for HOLD_S."""
    frames = []
    for e, record in enumerate(records):
        shown = episode_frames(record, e, len(records), task, inset)
        frames += shown + shown[-1:] * (int(HOLD_S * FPS) - 1) if shown else []
    if not frames:
        raise ActJepaError("no camera frames were captured; expected the sim node's camera "
                           "(image_size > 0)")
    return frames


def still(records: Sequence[EpisodeRecord], task: str, inset: bool = False) -> np.ndarray:
    """A telling frame: the end of the first solved episode (else the middle of the first)."""
    e = next((i for i, r in enumerate(records) if r.solved and r.frames), 0)
    shown = episode_frames(records[e], e, len(records), task, inset)
    if not shown:
        raise ActJepaError("no camera frames were captured")
    return shown[-1] if records[e].solved else shown[len(shown) // 2]


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: int = FPS) -> Path:
    """MP4 (H.264 via PyAV) or GIF (Pillow), by the file's suffix; written atomically."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            from PIL import Image

            images = [Image.fromarray(f[::2, ::2]) for f in frames[::2]]  # half size, 15 fps
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=int(2000 / fps), loop=0, optimize=True)
        elif path.suffix.lower() == ".mp4":
            import av

            with av.open(str(tmp), "w", format="mp4") as container:
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height = width - width % 2, height - height % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "23", "preset": "veryfast"}
                for frame in frames:
                    even = np.ascontiguousarray(frame[:stream.height, :stream.width])
                    for packet in stream.encode(av.VideoFrame.from_ndarray(even, format="rgb24")):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        else:
            raise ActJepaError(f"{path}: unknown video type {path.suffix!r}; expected .mp4 or "
                               ".gif")
    return path


def write_summary(path: str | Path, records: Sequence[EpisodeRecord], task: str,
                  title_extra: str = "") -> Path:
    """PNG: success and length per episode, latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    solved = [r.solved for r in records]
    latency = np.concatenate([np.asarray(r.latency_ms, float) for r in records]) \
        if records else np.zeros(0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    colours = [np.array(GREEN) / 255 if s else np.array(RED) / 255 for s in solved]
    left.bar(np.arange(1, len(records) + 1), [r.steps for r in records], color=colours)
    left.set_xlabel("episode")
    left.set_ylabel("steps (green: solved)")
    left.set_xticks(np.arange(1, len(records) + 1))
    left.set_title(f"{task}: success {sum(solved)}/{len(solved)}"
                   f" = {100 * sum(solved) / max(len(solved), 1):.0f}%{title_extra}")
    if latency.size:
        right.hist(latency, bins=40, color="#4477aa")
        for q, style in ((50, "-"), (99, "--")):
            value = np.percentile(latency, q)
            right.axvline(value, color="k", linestyle=style, label=f"p{q} {value:.2f} ms")
        right.legend()
    right.set_xlabel("observation -> action latency in policy_node (ms)")
    right.set_ylabel("actions")
    right.set_title(f"control latency ({latency.size} actions)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_frame(path: str | Path, frame: np.ndarray) -> Path:
    """One video frame as PNG (e.g. for the README)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png", frame[:, :, ::-1])
        if not ok:
            raise ActJepaError(f"{path}: could not encode the frame as PNG")
        Path(tmp).write_bytes(data.tobytes())
    return path
