"""What every importer shares: options, the observation key plan, frame resizing, writing."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from actjepa_core.data.episodes import MIN_STEPS, Episode, write_episodes
from actjepa_core.errors import ActJepaError

STATE_KEY = "state"
IMAGE_KEY = "image"
RGB = 3


@dataclass
class ImportOptions:
    """Choices shared by the importers (the CLI's flags).

    ``state_keys``: source vector observations to concatenate into ``state``, in this order
    (None: all of them, in the source's order). ``cameras``: source cameras to keep (None: all;
    [] : none). ``image_size``: resize frames to SxS (None: keep the source's size).
    ``filter``: robomimic mask/<filter> demo subset. ``max_episodes``: the first N only.
    """

    state_keys: list[str] | None = None
    cameras: list[str] | None = None
    image_size: int | None = None
    filter: str | None = None
    max_episodes: int | None = None

    def __post_init__(self) -> None:
        if self.image_size is not None and self.image_size < 1:
            raise ActJepaError(f"--image-size is {self.image_size}; expected a side >= 1 px")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ActJepaError(f"--max-episodes is {self.max_episodes}; expected >= 1")


@dataclass
class KeyPlan:
    """Which source observations become which episodes-file keys."""

    state: list[tuple[str, int]] = field(default_factory=list)  # (source key, width), in order
    cameras: dict[str, str] = field(default_factory=dict)  # source camera -> our key

    def describe(self) -> str:
        parts = []
        if self.state:
            parts.append(f"{STATE_KEY}=" + "+".join(f"{k}({w})" for k, w in self.state))
        parts += [f"{ours}={theirs}" for theirs, ours in self.cameras.items()]
        return " ".join(parts)


def plan_keys(where: str, vectors: dict[str, int], cameras: Sequence[str],
              options: ImportOptions, camera_names: dict[str, str] | None = None) -> KeyPlan:
    """Choose the observations to import. ``vectors``: source vector key -> width, in the
    source's order; ``camera_names``: source camera -> short name for ``image_<name>``."""
    if options.state_keys is None:
        state = list(vectors)
    else:
        unknown = [k for k in options.state_keys if k not in vectors]
        if unknown:
            raise ActJepaError(f"{where}: --state-keys {unknown} not among its vector "
                               f"observations {list(vectors)}")
        state = list(options.state_keys)
    names = camera_names or {c: c for c in cameras}
    if options.cameras is None:
        chosen = list(cameras)
    else:  # full source names or their short names
        short = {names[c]: c for c in cameras}
        unknown = [c for c in options.cameras if c not in cameras and c not in short]
        if unknown:
            raise ActJepaError(f"{where}: --cameras {unknown} not among its cameras "
                               f"{list(cameras)}")
        chosen = [c if c in cameras else short[c] for c in options.cameras]
    if not state and not chosen:
        raise ActJepaError(f"{where}: no observation to import (vector observations "
                           f"{list(vectors)}, cameras {list(cameras)}); expected at least one")
    keys = ({chosen[0]: IMAGE_KEY} if len(chosen) == 1
            else {c: f"{IMAGE_KEY}_{names[c]}" for c in chosen})
    return KeyPlan([(k, vectors[k]) for k in state], keys)


def fit_frames(frames: np.ndarray, size: int | None, where: str) -> np.ndarray:
    """(T, H, W, 3) uint8, resized to (T, size, size, 3) when ``size`` is given."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != RGB:
        raise ActJepaError(f"{where}: frames have shape {frames.shape}; expected (T, H, W, 3) "
                           "colour images")
    if frames.dtype != np.uint8:
        raise ActJepaError(f"{where}: frames are {frames.dtype}; expected uint8 pixels")
    if size is None or frames.shape[1:3] == (size, size):
        return np.ascontiguousarray(frames)
    interp = cv2.INTER_AREA if min(frames.shape[1:3]) >= size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def vector_rows(values: np.ndarray, where: str, steps: int, width: int | None = None
                ) -> np.ndarray:
    """(T,) or (T, K) numbers -> finite float32 (T, K)."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != steps or (width is not None and arr.shape[1] != width):
        expected = f"({steps}, {width if width is not None else 'K'})"
        raise ActJepaError(f"{where} has shape {arr.shape}; expected {expected}")
    if arr.dtype.kind not in "fiub":
        raise ActJepaError(f"{where} holds {arr.dtype} values; expected numbers")
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise ActJepaError(f"{where} contains NaN or Inf (or values beyond float32); expected "
                           "finite numbers")
    return out


def check_length(steps: int, where: str) -> None:
    if steps < MIN_STEPS:
        raise ActJepaError(f"{where} has {steps} step(s); expected at least {MIN_STEPS} (one "
                           "transition)")


@dataclass
class ImportRead:
    """What an importer read: episodes ready to write, and where they came from."""

    episodes: list[Episode]
    source: str  # the episodes file's /data source attribute
    origin: str  # the path the user gave
    plan: KeyPlan
    skipped: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    episodes: int
    steps: int
    obs: dict[str, tuple[int, ...]]
    action_dim: int
    out: str
    plan: str

    def summary(self, origin: str) -> str:
        obs = ", ".join(f"{k} {v}" for k, v in self.obs.items())
        return (f"imported {self.episodes} episodes ({self.steps} steps; obs {obs}; action "
                f"{self.action_dim}) from {origin} [{self.plan}] to {self.out}")


def write_result(read: ImportRead, out: str | Path) -> ImportResult:
    if not read.episodes:
        raise ActJepaError(f"{read.origin}: no episodes to import")
    n = write_episodes(out, read.episodes, source=read.source)
    first = read.episodes[0]
    return ImportResult(n, sum(ep.num_steps for ep in read.episodes),
                        {k: tuple(v.shape[1:]) for k, v in sorted(first.obs.items())},
                        int(first.actions.shape[1]), str(out), read.plan.describe())
