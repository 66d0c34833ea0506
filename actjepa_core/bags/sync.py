"""Streams of timestamped messages -> control ticks: which message each tick uses, and which
ticks are dropped. Pure numpy on timestamps (ns); nothing here decodes a message.

A bag is first cut into time windows (one per episode: the whole bag, or split at silences or at
marker messages). In a window, ticks run at the output rate from the moment every stream has
delivered a message until the last moment every stream still has one. At each tick a stream
contributes its latest message at or before the tick. The action is the command that moved the arm
from this tick's observation to the next one: by default (``after_obs``) the first command received
after the tick's newest observation message, the reaction to it, whatever the observation's
latency (a simulator that renders before publishing delivers its state late, just before the next
command); if none comes before the next tick, the command still in effect then. A tick where some
stream's latest message is older than the tolerance is dropped, and the transitions around it are
not formed: episodes are the runs of consecutive kept ticks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from actjepa_core.units import NS_PER_S

FAR_APART = "clocks disagree"  # why drop_far_apart drops a tick


# ---- windows ----------------------------------------------------------------------------------
def gap_windows(times: np.ndarray, gap_ns: int) -> list[tuple[int, int]]:
    """Windows of ``times`` (any streams, merged) separated by silences longer than ``gap_ns``."""
    times = np.sort(np.asarray(times, dtype=np.int64))
    if times.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(times) > gap_ns)
    starts = np.concatenate([[0], cuts + 1])
    ends = np.concatenate([cuts, [times.size - 1]])
    return [(int(times[a]), int(times[b])) for a, b in zip(starts, ends)]


def marker_windows(marker_times: Sequence[int], starts: Sequence[bool | None], begin: int,
                   end: int) -> list[tuple[int, int]]:
    """Windows from marker messages within [begin, end].

    A Bool marker (``True``/``False``) starts/ends an episode; data outside start..stop is not
    an episode, and a start without a stop runs to the end. An Empty marker (``None``) ends one
    episode and starts the next, so the data before the first and after the last is kept.
    """
    windows: list[tuple[int, int]] = []
    opened: int | None = begin if any(s is None for s in starts) else None
    for t, start in zip(marker_times, starts):
        if start is None or start is False:
            if opened is not None and t > opened:
                windows.append((opened, int(t)))
            opened = int(t) if start is None else None
        else:  # a start while recording restarts the episode there
            if opened is not None and t > opened:
                windows.append((opened, int(t)))
            opened = int(t)
    if opened is not None and end > opened:
        windows.append((opened, end))
    return windows


# ---- ticks ------------------------------------------------------------------------------------
@dataclass
class TickRules:
    period_ns: int
    phase: float  # fraction of a period after the first moment every stream has a message
    max_age_ns: int
    action_at: str = "after_obs"  # after_obs | next_tick | tick (see ActionConfig.at)
    delta: bool = False  # the action is the difference of the action stream at t+1 and t

    @property
    def lookahead(self) -> bool:
        """Whether a tick needs the next one (to bound its command, or for a joint delta)."""
        return self.delta or self.action_at != "tick"


@dataclass
class TickPlan:
    """Ticks of one window: the message index (into each stream's sorted times) each tick uses."""

    ticks: np.ndarray  # int64 ns
    index: dict[str, np.ndarray]  # observation stream -> index per tick
    action_index: np.ndarray  # action stream index per tick (delta: at the tick)
    action_next: np.ndarray | None  # delta: action stream index at the next tick
    reasons: list[str] = field(default_factory=list)  # '' = kept, else why dropped

    @property
    def kept(self) -> np.ndarray:
        return np.array([not r for r in self.reasons], dtype=bool)

    def runs(self, min_length: int) -> list[tuple[int, int]]:
        """[start, stop) of each run of consecutive kept ticks at least ``min_length`` long."""
        kept = np.concatenate([[False], self.kept, [False]]).astype(np.int8)
        edges = np.diff(kept)
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        return [(int(a), int(b)) for a, b in zip(starts, stops) if b - a >= min_length]


class NoTicks(Exception):
    """A window that yields no tick; the message says why."""


def plan_ticks(window: tuple[int, int], streams: dict[str, np.ndarray], action: str,
               action_times: np.ndarray, rules: TickRules) -> TickPlan:
    """The ticks of ``window`` for observation ``streams`` and the action stream."""
    lo, hi = window
    everything = {**streams, action: action_times}
    firsts, lasts = [], []
    for name, times in everything.items():
        a, b = np.searchsorted(times, lo, "left"), np.searchsorted(times, hi, "right")
        if a == b:
            raise NoTicks(f"no message on {name}")
        firsts.append(times[a])
        lasts.append(times[b - 1])
    start = int(max(firsts) + round(rules.phase * rules.period_ns))
    last = int(min(lasts))
    steps = 1 if rules.lookahead else 0
    count = (last - start) // rules.period_ns + 1 - steps if last >= start else 0
    if count < 1:
        raise NoTicks(f"too short: every stream has data for only "
                      f"{max(last - int(max(firsts)), 0) / NS_PER_S:.3f} s, in which not one "
                      "tick fits (one transition needs two)")
    ticks = start + np.arange(count, dtype=np.int64) * rules.period_ns
    reasons = [""] * count
    index = {}
    for name, times in streams.items():
        index[name], stale = _latest(times, ticks, rules.max_age_ns)
        _note(reasons, stale, name)
    following = ticks + rules.period_ns
    action_next = None
    if rules.delta:
        action_index, stale = _latest(action_times, ticks, rules.max_age_ns)
        action_next, stale_next = _latest(action_times, following, rules.max_age_ns)
        stale |= stale_next
    elif rules.action_at == "tick":
        action_index, stale = _latest(action_times, ticks, rules.max_age_ns)
    else:
        action_index, stale = _latest(action_times, following, rules.max_age_ns)
        if rules.action_at == "after_obs":
            action_index, stale = _reaction(action_times, index, streams, following,
                                            action_index, stale)
    _note(reasons, stale, action)
    return TickPlan(ticks, index, action_index, action_next, reasons)


def _reaction(action_times: np.ndarray, index: dict[str, np.ndarray],
              streams: dict[str, np.ndarray], following: np.ndarray, in_effect: np.ndarray,
              stale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first command after each tick's newest observation message, where one arrives
    before the next tick (never stale); elsewhere the command in effect at the next tick."""
    newest = np.max([times[np.maximum(index[name], 0)] for name, times in streams.items()],
                    axis=0)
    first = np.searchsorted(action_times, newest, "right")
    arrived = first < len(action_times)
    arrived[arrived] = action_times[first[arrived]] <= following[arrived]
    return np.where(arrived, first, in_effect), stale & ~arrived


def _latest(times: np.ndarray, at: np.ndarray, max_age_ns: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Index of the latest message at or before each time, and whether it is too old."""
    index = np.searchsorted(times, at, "right") - 1
    stale = (index < 0) | (at - times[np.maximum(index, 0)] > max_age_ns)
    return index, stale


def _note(reasons: list[str], stale: np.ndarray, name: str) -> None:
    """Record ``stale {name}`` as the reason of each stale tick that has none yet."""
    for i in np.flatnonzero(stale):
        reasons[i] = reasons[i] or f"stale {name}"


def drop_far_apart(plan: TickPlan, receive: dict[str, np.ndarray], action: str,
                   action_receive: np.ndarray, bound_ns: int) -> None:
    """Drop each kept tick whose messages were received more than ``bound_ns`` apart.

    Ticks are planned on the configured time source; when that is header stamps and one clock
    jumped or runs off, messages of different real moments would pair. Receive times are the
    recorder's single clock, so this catches it whatever the stamps say. Planning on receive
    times never exceeds max age + one period, the bound used, so this drops nothing there."""
    columns = [receive[name][np.maximum(index, 0)] for name, index in plan.index.items()]
    columns.append(action_receive[np.maximum(plan.action_index, 0)])
    if plan.action_next is not None:
        columns.append(action_receive[np.maximum(plan.action_next, 0)])
    stacked = np.stack(columns)
    spread = stacked.max(axis=0) - stacked.min(axis=0)
    for i in np.flatnonzero(spread > bound_ns):
        plan.reasons[i] = plan.reasons[i] or FAR_APART
