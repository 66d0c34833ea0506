"""The last gate before an action leaves the node: limits, rate of change, finiteness, freshness.

Pure numpy and plain Python (no ROS), so every rule here is unit-tested on its own. The policy
node runs each action through ``ActionFilter`` and each input through ``Freshness``; whatever they
refuse is never published.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from actjepa_core.errors import ActJepaError
from actjepa_core.training.checkpoint import verify_archive


class SafetyError(ActJepaError):
    """An action or observation the node must not act on (the message says why)."""


def as_limit_vector(name: str, values: Sequence[float] | float, dim: int) -> np.ndarray:
    """A per-dimension limit given as one value (applied to every dimension) or ``dim`` values."""
    vector = np.atleast_1d(np.asarray(values, dtype=np.float64)).reshape(-1)
    if vector.size == 1:
        vector = np.full(dim, vector[0])
    if vector.size != dim:
        raise SafetyError(f"{name} has {vector.size} values; expected 1 or {dim} (one per "
                          "action dimension)")
    if np.isnan(vector).any():
        raise SafetyError(f"{name} {vector.tolist()} contains NaN; expected numbers")
    return vector


@dataclass(frozen=True)
class ActionLimits:
    """Per-dimension bounds on the published action and on its change per control tick."""

    low: np.ndarray  # (A,)
    high: np.ndarray  # (A,)
    max_delta: np.ndarray  # (A,), +inf where unbounded

    @classmethod
    def build(cls, dim: int, low: Sequence[float] | float, high: Sequence[float] | float,
              max_delta: Sequence[float] | float = np.inf) -> "ActionLimits":
        """Validated limits: finite bounds with low <= high, max_delta > 0 (inf = no bound)."""
        low_v = as_limit_vector("action_min", low, dim)
        high_v = as_limit_vector("action_max", high, dim)
        delta_v = as_limit_vector("max_delta", max_delta, dim)
        if not (np.isfinite(low_v).all() and np.isfinite(high_v).all()):
            raise SafetyError(f"action limits [{low_v.tolist()}, {high_v.tolist()}] must be "
                              "finite")
        if (low_v > high_v).any():
            raise SafetyError(f"action_min {low_v.tolist()} exceeds action_max {high_v.tolist()} "
                              "in some dimension; expected action_min <= action_max")
        if (delta_v <= 0).any():
            raise SafetyError(f"max_delta {delta_v.tolist()} must be > 0 in every dimension "
                              "(use a large value, or inf, for no bound)")
        return cls(low_v, high_v, delta_v)

    @property
    def dim(self) -> int:
        return int(self.low.size)


LIMIT_NAMES = ("action_min", "action_max", "max_delta")


def widening(old: ActionLimits, new: ActionLimits) -> str | None:
    """What in ``new`` is looser than ``old`` (one line), or None when ``new`` is as tight or
    tighter in every dimension. While the arm moves only tightening is safe to apply at once: a
    wider box or a larger step is a decision for whoever restarts commanding."""
    looser = {"action_min": new.low < old.low, "action_max": new.high > old.high,
              "max_delta": new.max_delta > old.max_delta}
    olds = {"action_min": old.low, "action_max": old.high, "max_delta": old.max_delta}
    news = {"action_min": new.low, "action_max": new.high, "max_delta": new.max_delta}
    for name in LIMIT_NAMES:
        dims = np.flatnonzero(looser[name])
        if dims.size:
            d = int(dims[0])
            return (f"{name} would widen dimension {d} from {olds[name][d]:g} to "
                    f"{news[name][d]:g}")
    return None


def checkpoint_problem(checkpoint: str, folders: Sequence[Path], accepted: Path | None = None
                       ) -> str | None:
    """Why ``checkpoint`` may not be loaded (one line), or None: after resolving symlinks it
    must be ``accepted`` (the file the operator started the node with) or lie inside one of
    ``folders`` (already resolved). A peer that can set parameters must not point the node at
    any file on the robot's disk, and a symlink inside an allowed folder pointing out of it is
    refused like the file it points to."""
    if not checkpoint:
        return None  # nothing to load: configure says so
    resolved = Path(checkpoint).expanduser().resolve()
    if resolved == accepted or any(resolved.is_relative_to(f) for f in folders):
        return None
    shown = f"{checkpoint!r}" + (f" (resolves to {str(resolved)!r})"
                                 if str(resolved) != checkpoint else "")
    return (f"checkpoint {shown} is outside checkpoint_dirs "
            f"[{', '.join(str(f) for f in folders)}]; put it in one of them, or start the node "
            "with it (or with checkpoint_dirs naming its folder)")


def resolve_folders(folders: Sequence[str], always: Sequence[Path] = ()) -> list[Path]:
    """``folders`` (relative ones from the working directory) and ``always``, symlinks
    resolved, duplicates dropped, in order."""
    out: list[Path] = []
    for folder in [*(Path(f).expanduser() for f in folders if f), *always]:
        resolved = folder.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


class ActionFilter:
    """Clip an action into its limits and bound its change from the previously published one.

    Clipping (rather than refusing) matches what a controller's own limits would do, and keeps the
    arm moving towards the policy's intent at the largest allowed step. The first action after
    ``reset`` is bounded relative to ``start`` (zeros suit velocity/delta commands: the arm ramps
    up from rest) or, when ``start`` is None, only by the limits (absolute position commands,
    where zero is not "at rest").
    """

    def __init__(self, limits: ActionLimits, start: np.ndarray | None = None) -> None:
        self.limits = limits
        self.start = None if start is None else np.asarray(start, dtype=np.float64).copy()
        self.previous: np.ndarray | None = self.start

    def reset(self, start: np.ndarray | None = None) -> None:
        """Forget the previous action (new episode, re-enabled, re-activated); the next one is
        bounded relative to ``start`` if given (e.g. the arm's current joint positions), else
        relative to the constructor's ``start``."""
        if start is not None:
            start = np.asarray(start, dtype=np.float64).reshape(-1)
            if start.size != self.limits.dim or not np.isfinite(start).all():
                raise SafetyError(f"ramp start {start.tolist()}: expected {self.limits.dim} "
                                  "finite values")
            self.previous = start.copy()
        else:
            self.previous = None if self.start is None else self.start.copy()

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """The action to publish, float64 (A,); raises ``SafetyError`` for a non-finite or
        wrongly sized action (nothing may be published then). Call only for actions that are
        then published: the rate bound is relative to the last returned value."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.size != self.limits.dim:
            raise SafetyError(f"policy action has {action.size} values; expected "
                              f"{self.limits.dim}")
        if not np.isfinite(action).all():
            raise SafetyError(f"policy action {action.tolist()} is not finite")
        safe = np.clip(action, self.limits.low, self.limits.high)
        if self.previous is not None:
            safe = np.clip(safe, self.previous - self.limits.max_delta,
                           self.previous + self.limits.max_delta)
            # a limit change may leave the previous action outside the new box: limits win
            safe = np.clip(safe, self.limits.low, self.limits.high)
        if not np.isfinite(safe).all():  # defensive: the published action is always finite
            raise SafetyError(f"filtered action {safe.tolist()} is not finite")
        self.previous = safe.copy()
        return safe


def check_finite(obs: Mapping[str, np.ndarray]) -> None:
    """Raise ``SafetyError`` naming the first observation key with NaN or Inf."""
    for key, value in obs.items():
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise SafetyError(f"observation '{key}' contains NaN or Inf")


class Freshness:
    """When each input last arrived (receipt time, and its header stamp where it has one).

    An input is stale when it has not arrived for ``timeout_s`` (the stream stopped), or when its
    header stamp is older than ``timeout_s``: at arrival (a delayed or replayed message) and at
    every later use, so a picture that arrived already 0.2 s old is not used past 0.3 s of age
    with a 0.3 s timeout, however fresh the joint states beside it are. Stamps of zero mean "not
    stamped" and are judged by arrival only. Times are seconds on whichever clocks the caller
    uses: receipt on a monotonic clock, stamps on the ROS clock the publishers stamp with.
    """

    def __init__(self, names: Sequence[str], timeout_s: float) -> None:
        if not timeout_s > 0:
            raise SafetyError(f"stale_timeout_s is {timeout_s}; expected > 0")
        self.timeout_s = float(timeout_s)
        self.received: dict[str, float | None] = {n: None for n in names}
        self.stamps: dict[str, float | None] = {n: None for n in names}

    def stamp_problem(self, name: str, stamp_s: float, now_s: float) -> str | None:
        """Why a message stamped ``stamp_s`` (ROS time) is too old at ``now_s`` (or so far in
        the future that the clocks cannot agree), or None."""
        if stamp_s <= 0.0:
            return None
        age = now_s - stamp_s
        if age > self.timeout_s:
            return (f"{name}: message stamped {age:.3f} s ago; expected newer than "
                    f"stale_timeout_s={self.timeout_s:g}")
        if -age > self.timeout_s:  # its true age is unknown: the clocks disagree
            return (f"{name}: message stamped {-age:.3f} s in the future; expected at most "
                    f"stale_timeout_s={self.timeout_s:g} ahead")
        return None

    def mark(self, name: str, received_s: float, stamp_s: float | None = None) -> None:
        """``name``'s newest valid message arrived at ``received_s``, stamped ``stamp_s`` (ROS
        time; None or 0 = not stamped, or stamps not checked)."""
        self.received[name] = received_s
        self.stamps[name] = stamp_s if stamp_s is not None and stamp_s > 0.0 else None

    def forget(self, name: str) -> None:
        self.received[name] = None
        self.stamps[name] = None

    def problems(self, now_s: float, stamp_now_s: float | None = None) -> list[str]:
        """One line per input that never arrived, has gone quiet for longer than the timeout,
        or (given ``stamp_now_s``, ROS time now) whose newest message's stamp is now older than
        the timeout."""
        found = []
        for name, when in self.received.items():
            stamp = self.stamps.get(name)
            if when is None:
                found.append(f"{name}: no valid message yet")
            elif now_s - when > self.timeout_s:
                found.append(f"{name}: last valid message {now_s - when:.3f} s ago; expected one "
                             f"within stale_timeout_s={self.timeout_s:g}")
            elif stamp_now_s is not None and stamp is not None \
                    and stamp_now_s - stamp > self.timeout_s:
                found.append(f"{name}: newest valid message stamped {stamp_now_s - stamp:.3f} s "
                             f"ago; expected newer than stale_timeout_s={self.timeout_s:g} (it "
                             "would be paired with fresher inputs)")
        return found


def check_archive(path: str | Path) -> None:
    """Raise ``SafetyError`` if ``path`` is a checkpoint archive with a member that fails its
    CRC-32 (the core's check, before anything is unpickled)."""
    try:
        verify_archive(path)
    except ActJepaError as err:
        raise SafetyError(str(err)) from None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT/JPG/DAC)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG file's header declares, read without decoding anything;
    None if ``data`` is neither or the header is cut short. A 200 KB PNG can declare 8000x8000
    pixels (192 MB decoded): check this before handing the bytes to a decoder."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if marker in JPEG_SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + length
    return None
