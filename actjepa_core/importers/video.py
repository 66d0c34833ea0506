"""Frames out of mp4 files (PyAV): the frames at given presentation times, nothing else.

LeRobot stores each camera as video: one file per episode (v2.1) or many episodes back to back
in one file (v3.0, each starting at its ``from_timestamp``). A frame is taken for a wanted time
t when its presentation time lies within half a frame period of t; a wanted time no frame meets
is an error naming the file, so a short or damaged video never yields misaligned observations.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from actjepa_core.errors import ActJepaError


def frames_at(path: Path, times_s: Sequence[float], fps: float, where: str) -> np.ndarray:
    """uint8 (len(times_s), H, W, 3) RGB frames of ``path`` at ascending ``times_s``."""
    import av  # the `data` extra; imported here so the rest of actjepa runs without it

    if not path.is_file():
        raise ActJepaError(f"{path}: video file not found; expected {where}")
    wanted = np.asarray(times_s, dtype=np.float64)
    if wanted.size == 0:
        return np.zeros((0, 0, 0, 3), np.uint8)
    tolerance = 0.5 / fps
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ActJepaError(f"{path}: holds no video stream; expected {where}")
            stream = container.streams.video[0]
            if wanted[0] > tolerance:  # v3: the episode starts inside the file
                container.seek(int(max(wanted[0] - tolerance, 0) / stream.time_base),
                               stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                j = len(frames)
                if t > wanted[j] + tolerance:
                    raise ActJepaError(f"{path}: no frame at {wanted[j]:.4f} s (the next is at "
                                       f"{t:.4f} s); expected a frame every 1/{fps:g} s for "
                                       f"{where}")
                if t >= wanted[j] - tolerance:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if len(frames) == len(wanted):
                        break
    except ActJepaError:
        raise
    except Exception as err:  # noqa: BLE001 - PyAV/FFmpeg raise many types for bad files
        raise ActJepaError(f"{path}: could not decode ({type(err).__name__}: {err}); expected "
                           f"an mp4 video for {where}") from None
    if len(frames) < len(wanted):
        raise ActJepaError(f"{path}: video ends after {len(frames)} of {len(wanted)} frames "
                           f"(no frame at {wanted[len(frames)]:.4f} s); expected {where}")
    return np.stack(frames)
