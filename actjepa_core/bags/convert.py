"""Bags -> episodes: read each bag's streams, plan its ticks, decode the messages the ticks use,
and assemble episodes (``assemble``); a bag or episode that cannot be converted is skipped with its
reason. An unfinished bag (a recorder killed before closing it) is read through a recovered copy,
with a warning saying what was recovered (``actjepa_core.bags.recover``).

Two passes over each bag: the first reads timestamps only (plus the small marker and success
messages, and header stamps with ``time_source: header``), the second decodes just the messages
some tick uses, so a long camera recording is never held in memory raw; its frames are set aside
encoded and decoded again a chunk at a time when written (``frames``). A message repeated with the
same stamp and bytes is read once (``reader``). With header stamps, a publisher clock that jumps
splits the recording there, and ticks whose messages were received further apart than max age plus
one period are dropped, whatever the stamps say (``clock``, ``sync.drop_far_apart``).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from actjepa_core.bags.assemble import (
    Planned,
    decode_used,
    episodes_of,
    frame_decoders,
    span,
)
from actjepa_core.bags.clock import Segment, clock_segments
from actjepa_core.bags.config import ConvertConfig
from actjepa_core.bags.decoders import BOOL, MARKER_TYPES, check_marker, decoders_for
from actjepa_core.bags.frames import Spill
from actjepa_core.bags.reader import (
    NS_PER_S,
    Bag,
    BagError,
    StreamTimes,
    discover_bags,
    read_streams,
)
from actjepa_core.bags.recover import bag_of, is_unfinished, recovered_copy
from actjepa_core.bags.report import MAX_LISTED, BagReport, ConvertResult
from actjepa_core.bags.sync import (
    NoTicks,
    TickRules,
    drop_far_apart,
    gap_windows,
    marker_windows,
    plan_ticks,
)
from actjepa_core.data.episodes import Episode, write_episodes
from actjepa_core.errors import ActJepaError

__all__ = ["MAX_LISTED", "BagReport", "ConvertResult", "convert_bag", "convert_bags",
           "write_result"]


def convert_bags(paths: Sequence[str | Path], config: ConvertConfig) -> ConvertResult:
    """Convert every bag under ``paths``; never raises for one bad bag (see the reports)."""
    spec: dict[str, Any] = {}
    episodes, reports = [], []
    bags, notes = discover_bags(paths)
    spill = Spill()  # the frames of every bag's episodes, until they are written
    for path in bags:
        eps, report = convert_bag(path, config, spec, spill)
        episodes += eps
        reports.append(report)
    return ConvertResult(episodes, reports, config, notes)


def write_result(result: ConvertResult, out: str | Path) -> None:
    """Write the episodes atomically; no episode at all is an error listing why."""
    if not result.episodes:
        why = "; ".join(f"{r.path}: {r.skipped or '; '.join(r.skipped_episodes) or 'no episode'}"
                        for r in result.bags)
        raise ActJepaError(f"no episode converted, {out} not written: {why}")
    source = "bags: " + ", ".join(r.path for r in result.bags if r.episodes)
    write_episodes(out, result.episodes, source, list(result.config.observations))


def convert_bag(path: Path, config: ConvertConfig, spec: dict[str, Any],
                spill: Spill | None = None) -> tuple[list[Episode], BagReport]:
    """One bag's episodes and report; ``spec`` (shapes of the first episode) is shared; image
    frames are set aside in ``spill`` (a new one if None) until written."""
    report = BagReport(str(path))
    spill = spill if spill is not None else Spill()
    try:
        with contextlib.ExitStack() as stack:
            source = path
            if is_unfinished(path):
                source, salvage = stack.enter_context(recovered_copy(path))
                if not salvage.messages:
                    raise BagError(f"{path}: truncated or corrupt, without its end and nothing "
                                   f"readable in it ({salvage.describe()})")
                report.warnings.append(
                    f"unfinished bag (without its end: the recorder was killed or is still "
                    f"recording, or the file was cut short): {salvage.describe()}; `actjepa "
                    f"recover {bag_of(path)}` repairs it in place")
            bag = stack.enter_context(Bag(source, config.typestore, label=path))
            report.storage = bag.storage
            types = bag.require_topics(config.required_topics())
            decoders = decoders_for(types, config, path)
            extras = _extra_topics(config, bag.topic_types())
            for topic, allowed in extras.items():
                check_marker(topic, bag.topic_types()[topic], path, allowed)
            topics = list(dict.fromkeys([*types, *extras]))
            streams = read_streams(bag, topics, config.time_source == "header", keep=extras)
            report.streams = [streams[t] for t in topics]
            segments = _segments(streams, config, report)
            plans = _plans(segments, config, report)
            values = decode_used(bag, plans, decoders, config, spill)
            frames = frame_decoders(bag, decoders)
    except BagError as err:
        report.skipped = str(err).removeprefix(f"{path}: ")
        return [], report
    episodes = []
    for item in plans:
        episodes += episodes_of(item, values, decoders, frames, config, spec, spill, report)
    return episodes, report


def _extra_topics(config: ConvertConfig, present: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Marker and success topics (the latter if the bag has it): read whole in the first pass;
    their allowed types."""
    extras = {}
    if config.episodes.split == "marker":
        extras[config.episodes.marker_topic] = MARKER_TYPES
    if config.success_topic in present:
        extras[config.success_topic] = (BOOL,)
    return extras


# ---- pass 1: windows and ticks --------------------------------------------------------------
def _data_topics(config: ConvertConfig) -> list[str]:
    obs = [t for ts in config.observations.values() for t in ts]
    return list(dict.fromkeys([*obs, config.action.topic]))


def _segments(streams: dict[str, StreamTimes], config: ConvertConfig,
              report: BagReport) -> list[Segment]:
    """The spans of the recording to plan on their own (split at header clock jumps); the
    duplicates, jumps and clock disagreements found go into the report's warnings."""
    topics = _data_topics(config)
    present = [streams[t] for t in topics if streams[t].times.size]
    if not present:
        raise BagError(f"{report.path}: no message on {topics}")
    report.start_ns = min(int(s.times[0]) for s in present)
    report.receive_start_ns = min(int(s.receive.min()) for s in present)
    report.warnings += [f"{s.topic}: {s.duplicates} duplicated message(s) left out (the same "
                        "stamp and bytes as one before: two identical publishers recorded?)"
                        for s in streams.values() if s.duplicates]
    if config.time_source != "header":
        return [streams]
    segments, lines = clock_segments(streams, topics, config.clock_jump_s, config.max_age_s,
                                     report.receive_start_ns)
    report.warnings += lines
    return segments


def _plans(segments: list[Segment], config: ConvertConfig, report: BagReport) -> list[Planned]:
    """The ticks of every window of every span; a window without ticks is a skipped episode."""
    rules = TickRules(period_ns=round(NS_PER_S / config.rate_hz), phase=config.tick_phase,
                      max_age_ns=round(config.max_age_s * NS_PER_S), action_at=config.action.at,
                      delta=config.action.source == "joint_delta")
    obs_topics = list(dict.fromkeys(t for ts in config.observations.values() for t in ts))
    action = config.action.topic
    planned, number = [], 0
    for segment in segments:
        data = [segment[t].times for t in (*obs_topics, action)]
        for window in _windows(segment, data, config):
            try:
                plan = plan_ticks(window, {t: segment[t].times for t in obs_topics}, action,
                                  segment[action].times, rules)
            except NoTicks as err:
                report.skipped_episodes.append(
                    f"episode {number} {span(window, report.start_ns)}: {err}")
            else:
                drop_far_apart(plan, {t: segment[t].receive for t in obs_topics}, action,
                               segment[action].receive, rules.max_age_ns + rules.period_ns)
                planned.append(Planned(number, plan, segment))
            number += 1
    return planned


def _windows(streams: dict[str, StreamTimes], data: list[np.ndarray],
             config: ConvertConfig) -> list[tuple[int, int]]:
    merged = np.concatenate(data) if data else np.zeros(0, np.int64)
    if merged.size == 0:
        return []
    begin, end = int(merged.min()), int(merged.max())
    split = config.episodes
    if split.split == "gap":
        return gap_windows(merged, round(split.gap_s * NS_PER_S))
    if split.split == "marker":
        marker = streams[split.marker_topic]
        starts = [bool(m.data) if hasattr(m, "data") else None for m in marker.messages]
        return marker_windows(marker.times.tolist(), starts, begin, end)
    return [(begin, end)]
