"""Header stamps against receive times, for ``time_source: header``.

A recording has two kinds of clock: the recorder's (each message's receive time in the bag, one
clock for every topic) and the publishers' (``header.stamp``, set on the robot's computer, a
camera driver, ...). Ticks planned on header stamps pair messages by stamp, so a publisher clock
that jumps (an NTP step, a driver restarting its clock) or runs off from the others pairs
messages of different real moments, silently. Two checks:

- a jump: a stream whose stamp moves by more than ``clock_jump_s`` more (or less) than its
  receive time did between two consecutive messages. The recording is split there (receive
  time): each side is planned on its own, so no tick mixes messages from both sides of a jump.
- a disagreement: within a span between jumps, streams whose stamps sit at offsets from their
  receive times that differ by more than ``max_age_s`` (or one stream's offset that drifts that
  much). It is reported; the ticks it would spoil are dropped by ``sync.drop_far_apart``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actjepa_core.bags.reader import StreamTimes
from actjepa_core.bags.sync import FAR_APART
from actjepa_core.units import NS_PER_S

Segment = dict[str, StreamTimes]  # a span of the recording between clock jumps: its streams


@dataclass
class ClockJump:
    topic: str
    receive_ns: int  # receive time of the first message after the jump
    step_ns: int  # how much further the stamp moved than the receive time (< 0: back)

    def line(self, origin_ns: int) -> str:
        """One line naming topic, time and size (times from ``origin_ns``, receive clock)."""
        at = (self.receive_ns - origin_ns) / NS_PER_S
        size = abs(self.step_ns) / NS_PER_S
        how = ("went back" if self.step_ns < 0 else "jumped ahead")
        return (f"clock jump on {self.topic} at {at:.3f} s (receive time): its header stamps "
                f"{how} {size:.3f} s against its receive times; the recording is split there "
                "(each side converted on its own)")


def clock_jumps(stream: StreamTimes, jump_ns: int) -> list[ClockJump]:
    """Where ``stream``'s stamp steps differ from its receive steps by more than ``jump_ns``."""
    if len(stream.times) < 2:
        return []
    order = np.argsort(stream.receive, kind="stable")  # as recorded
    offset = stream.times[order] - stream.receive[order]
    steps = np.diff(offset)
    return [ClockJump(stream.topic, int(stream.receive[order][i + 1]), int(steps[i]))
            for i in np.flatnonzero(np.abs(steps) > jump_ns)]


def split_at(streams: Segment, cuts: list[int]) -> list[Segment]:
    """The streams cut at receive times ``cuts`` (a message at a cut starts the next span)."""
    edges = [None, *sorted(set(cuts)), None]
    segments = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        segment = {}
        for topic, stream in streams.items():
            mask = np.ones(len(stream.times), dtype=bool)
            if lo is not None:
                mask &= stream.receive >= lo
            if hi is not None:
                mask &= stream.receive < hi
            segment[topic] = stream.select(mask)
        segments.append(segment)
    return segments


def clock_segments(streams: Segment, data_topics: list[str], jump_s: float, max_age_s: float,
                   origin_ns: int) -> tuple[list[Segment], list[str]]:
    """The spans between clock jumps of ``data_topics``, and one line per jump and per
    disagreement found."""
    jumps = [j for t in data_topics for j in clock_jumps(streams[t], round(jump_s * NS_PER_S))]
    jumps.sort(key=lambda j: j.receive_ns)
    lines = [j.line(origin_ns) for j in jumps]
    segments = split_at(streams, [j.receive_ns for j in jumps]) if jumps else [streams]
    for segment in segments:
        lines += disagreements(segment, data_topics, round(max_age_s * NS_PER_S), origin_ns)
    return segments, lines


def disagreements(segment: Segment, topics: list[str], max_age_ns: int,
                  origin_ns: int) -> list[str]:
    """Lines for streams whose stamp-minus-receive offsets differ by more than ``max_age_ns``
    (one line for the span), or drift that much within one stream."""
    present = [t for t in topics if len(segment[t].times)]
    if not present:
        return []
    lo = min(int(segment[t].receive.min()) for t in present)
    hi = max(int(segment[t].receive.max()) for t in present)
    span = f"{(lo - origin_ns) / NS_PER_S:.3f}-{(hi - origin_ns) / NS_PER_S:.3f} s"
    offsets = {t: segment[t].times - segment[t].receive for t in present}
    typical = {t: float(np.median(o)) for t, o in offsets.items()}
    lines = []
    ahead, behind = max(typical, key=typical.get), min(typical, key=typical.get)
    if typical[ahead] - typical[behind] > max_age_ns:
        lines.append(
            f"header and receive times disagree in {span}: {behind} is stamped "
            f"{_signed(typical[behind])} from its receive times, {ahead} {_signed(typical[ahead])}"
            f" ({(typical[ahead] - typical[behind]) / NS_PER_S:.3f} s apart, more than max_age_s"
            f" {max_age_ns / NS_PER_S:g}); ticks whose messages were received too far apart are "
            f"dropped ('{FAR_APART}'); time_source: receive pairs them by arrival")
    for topic, offset in offsets.items():
        drift = float(offset.max() - offset.min())
        if drift > max_age_ns:
            lines.append(f"header stamps of {topic} drift {drift / NS_PER_S:.3f} s against its "
                         f"receive times in {span} (more than max_age_s "
                         f"{max_age_ns / NS_PER_S:g})")
    return lines


def _signed(ns: float) -> str:
    return f"{ns / NS_PER_S:+.3f} s"

