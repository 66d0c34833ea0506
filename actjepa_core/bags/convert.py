"""Bags -> episodes: read each bag's streams, plan its ticks, decode the messages the ticks use,
and assemble episodes; a bag or episode that cannot be converted is skipped with its reason. An
unfinished bag (a recorder killed before closing it) is read through a recovered copy, with a
warning saying what was recovered (``actjepa_core.bags.recover``).

Two passes over each bag: the first reads timestamps only (plus the small marker and success
messages), the second decodes just the messages some tick uses, so a long camera recording is
never held in memory raw. The first converted episode fixes the observation shapes and action
size; a later episode that disagrees is skipped rather than written into a file training would
reject. A decoded message holding NaN, Inf or a value beyond float32's range (the episodes file's
type) is bad data: the ticks that use it are dropped with that reason, the rest of the episode is
kept, and the message is reported.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from actjepa_core.bags.config import ConvertConfig
from actjepa_core.bags.decoders import BOOL, MARKER_TYPES, Decoders, check_marker, decoders_for
from actjepa_core.bags.reader import (
    NS_PER_S,
    Bag,
    BagError,
    StreamTimes,
    discover_bags,
    read_messages,
    read_streams,
)
from actjepa_core.bags.recover import bag_of, is_unfinished, recovered_copy
from actjepa_core.bags.sync import (
    NoTicks,
    TickPlan,
    TickRules,
    gap_windows,
    marker_windows,
    plan_ticks,
)
from actjepa_core.data.episodes import MIN_STEPS, Episode, write_episodes
from actjepa_core.data.messages import ConversionError
from actjepa_core.errors import ActJepaError

SHORT_RUN = f"fewer than {MIN_STEPS} consecutive ticks (no transition)"
OBS, ACTION = "obs", "action"
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_LISTED = 5  # bad messages named per bag; the rest are counted


@dataclass
class BagReport:
    """What one bag gave: episodes, ticks, dropped ticks by reason, streams, what was skipped."""

    path: str
    storage: str = ""
    start_ns: int = 0  # the first configured message: times in reasons count from here
    streams: list[StreamTimes] = field(default_factory=list)
    episodes: int = 0
    ticks: int = 0
    dropped: Counter = field(default_factory=Counter)
    skipped: str = ""  # why the whole bag was skipped
    skipped_episodes: list[str] = field(default_factory=list)
    bad_messages: list[str] = field(default_factory=list)  # non-finite values: ticks dropped
    warnings: list[str] = field(default_factory=list)  # converted, but the user should know
    _bad_seen: set = field(default_factory=set, repr=False)  # (topic, ordinal) already named


@dataclass
class ConvertResult:
    episodes: list[Episode]
    bags: list[BagReport]
    config: ConvertConfig
    notes: list[str] = field(default_factory=list)  # inputs left out: repeats, symlink loops

    @property
    def skipped(self) -> bool:
        """Whether some bag, episode or bad message was skipped (the CLI's exit code says so)."""
        return any(b.skipped or b.skipped_episodes or b.bad_messages for b in self.bags)


class _Skip(Exception):
    """An episode that cannot be assembled; the message says why."""


class NonFinite(ConversionError):
    """A decoded message with a value the episodes file cannot hold (NaN, Inf, beyond float32)."""


def convert_bags(paths: Sequence[str | Path], config: ConvertConfig) -> ConvertResult:
    """Convert every bag under ``paths``; never raises for one bad bag (see the reports)."""
    spec: dict[str, Any] = {}
    episodes, reports = [], []
    bags, notes = discover_bags(paths)
    for path in bags:
        eps, report = convert_bag(path, config, spec)
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
    write_episodes(out, result.episodes, source=source, obs_keys=list(result.config.observations))


def convert_bag(path: Path, config: ConvertConfig, spec: dict[str, Any]
                ) -> tuple[list[Episode], BagReport]:
    """One bag's episodes and report; ``spec`` (shapes of the first episode) is shared."""
    report = BagReport(str(path))
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
            plans = _plans(streams, config, report)
            values = _decode(bag, streams, plans, decoders, config)
    except BagError as err:
        report.skipped = str(err).removeprefix(f"{path}: ")
        return [], report
    episodes = []
    for number, plan in plans:
        episodes += _episodes(number, plan, streams, values, decoders, config, spec, report)
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
def _plans(streams: dict[str, StreamTimes], config: ConvertConfig,
           report: BagReport) -> list[tuple[int, TickPlan]]:
    rules = TickRules(period_ns=round(NS_PER_S / config.rate_hz), phase=config.tick_phase,
                      max_age_ns=round(config.max_age_s * NS_PER_S), action_at=config.action.at,
                      delta=config.action.source == "joint_delta")
    obs_topics = list(dict.fromkeys(t for ts in config.observations.values() for t in ts))
    data = [streams[t].times for t in (*obs_topics, config.action.topic)]
    if not any(t.size for t in data):
        raise BagError(f"{report.path}: no message on {[*obs_topics, config.action.topic]}")
    bag_start = report.start_ns = min(int(t[0]) for t in data if t.size)
    plans = []
    for number, window in enumerate(_windows(streams, data, config)):
        try:
            plans.append((number, plan_ticks(window, {t: streams[t].times for t in obs_topics},
                                             config.action.topic,
                                             streams[config.action.topic].times, rules)))
        except NoTicks as err:
            report.skipped_episodes.append(f"episode {number} {_span(window, bag_start)}: {err}")
    return plans


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


def _span(window: tuple[int, int], origin: int) -> str:
    return f"({(window[0] - origin) / NS_PER_S:.2f}-{(window[1] - origin) / NS_PER_S:.2f} s)"


# ---- pass 2: decode the messages ticks use ----------------------------------------------------
def _decode(bag: Bag, streams: dict[str, StreamTimes], plans: list[tuple[int, TickPlan]],
            decoders: Decoders, config: ConvertConfig) -> dict[tuple[str, str], dict[int, Any]]:
    """{(role, topic): {message ordinal: array or ConversionError}} for every used message."""
    wanted: dict[tuple[str, str], set[int]] = {}
    for _, plan in plans:
        kept = plan.kept
        for parts in decoders.observations.values():
            for topic, _ in parts:
                used = plan.index[topic][kept]
                wanted.setdefault((OBS, topic), set()).update(streams[topic].ordinal[used].tolist())
        action = streams[config.action.topic]
        indices = [plan.action_index[kept]]
        if plan.action_next is not None:
            indices.append(plan.action_next[kept])
        for used in indices:
            wanted.setdefault((ACTION, config.action.topic), set()).update(
                action.ordinal[used].tolist())
    by_topic: dict[str, set[int]] = {}
    for (_, topic), ordinals in wanted.items():
        by_topic.setdefault(topic, set()).update(ordinals)
    functions = {(OBS, t): f for parts in decoders.observations.values() for t, f in parts}
    functions[(ACTION, config.action.topic)] = decoders.action
    values: dict[tuple[str, str], dict[int, Any]] = {key: {} for key in wanted}
    for topic, ordinal, _, msg in read_messages(bag, by_topic):
        for role in (OBS, ACTION):
            if ordinal in wanted.get((role, topic), ()):
                values[(role, topic)][ordinal] = _convert(functions[(role, topic)], msg)
    return values


def _convert(function: Any, msg: Any) -> Any:
    try:
        value = function(msg)
    except ConversionError as err:
        return err
    return _finite(value)


def _finite(value: np.ndarray) -> np.ndarray | NonFinite:
    """``value``, or NonFinite naming its first NaN, Inf or beyond-float32 element."""
    if value.dtype.kind != "f":
        return value
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(value) <= FLOAT32_MAX)  # NaN compares False
    if not bad.any():
        return value
    flat = value.reshape(-1)
    i = int(np.flatnonzero(bad.reshape(-1))[0])
    x = float(flat[i])
    what = ("NaN" if np.isnan(x) else "Inf" if x > 0 and np.isinf(x) else "-Inf" if np.isinf(x)
            else f"{x:g}")
    more = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
    beyond = "" if np.isinf(x) or np.isnan(x) else " overflows float32"
    return NonFinite(f"{what} in element {i}{beyond}{more}; expected finite values")


# ---- assembly ---------------------------------------------------------------------------------
def _episodes(number: int, plan: TickPlan, streams: dict[str, StreamTimes],
              values: dict[tuple[str, str], dict[int, Any]], decoders: Decoders,
              config: ConvertConfig, spec: dict[str, Any], report: BagReport) -> list[Episode]:
    """The episodes of one window: one per run of consecutive kept ticks."""
    _drop_bad_ticks(plan, streams, values, config, report)
    runs = plan.runs(MIN_STEPS)
    in_runs = np.zeros(len(plan.ticks), dtype=bool)
    for a, b in runs:
        in_runs[a:b] = True
    for i in np.flatnonzero(~in_runs):
        report.dropped[plan.reasons[i] or SHORT_RUN] += 1
    where = f"episode {number} {_span((plan.ticks[0], plan.ticks[-1]), report.start_ns)}"
    if not runs:
        report.skipped_episodes.append(
            f"{where}: {int(plan.kept.sum())} usable tick(s) of {len(plan.ticks)} at "
            f"{config.rate_hz:g} Hz; need at least {MIN_STEPS} in a row to form one transition")
        return []
    episodes = []
    for part, (a, b) in enumerate(runs):
        label = where if len(runs) == 1 else f"{where} part {part}"
        try:
            episode = _assemble(plan, a, b, streams, values, decoders, config, report.start_ns)
            _check_spec(episode, spec)
        except _Skip as err:
            report.skipped_episodes.append(f"{label}: {err}")
            continue
        period = round(NS_PER_S / config.rate_hz)  # the last tick's step reports until then
        episode.success = _success(streams, config, plan.ticks[a], plan.ticks[b - 1] + period)
        episode.attrs = {"bag": report.path, "bag_episode": number, "part": part,
                         "start_ns": int(plan.ticks[a])}
        episodes.append(episode)
        report.episodes += 1
        report.ticks += b - a
    return episodes


def _drop_bad_ticks(plan: TickPlan, streams: dict[str, StreamTimes],
                    values: dict[tuple[str, str], dict[int, Any]], config: ConvertConfig,
                    report: BagReport) -> None:
    """Drop every kept tick that uses a NonFinite message (reason ``non-finite <topic>``), and
    name each such message once in the report."""
    uses = [(OBS, topic, plan.index[topic]) for (role, topic) in values if role == OBS]
    uses.append((ACTION, config.action.topic, plan.action_index))
    if plan.action_next is not None:
        uses.append((ACTION, config.action.topic, plan.action_next))
    seen = report._bad_seen
    for i in np.flatnonzero(plan.kept):
        for role, topic, index in uses:
            stream = streams[topic]
            ordinal = int(stream.ordinal[index[i]])
            result = values[(role, topic)].get(ordinal)
            if not isinstance(result, NonFinite):
                continue
            plan.reasons[i] = f"non-finite {topic}"
            if (topic, ordinal) not in seen:
                seen.add((topic, ordinal))
                at = (stream.times[index[i]] - report.start_ns) / NS_PER_S
                report.bad_messages.append(f"{topic} message at {at:.3f} s: {result}")
            break


def _assemble(plan: TickPlan, a: int, b: int, streams: dict[str, StreamTimes],
              values: dict[tuple[str, str], dict[int, Any]], decoders: Decoders,
              config: ConvertConfig, origin: int) -> Episode:
    def value(role: str, topic: str, index: int) -> np.ndarray:
        stream = streams[topic]
        result = values[(role, topic)][int(stream.ordinal[index])]
        if isinstance(result, ConversionError):
            at = (stream.times[index] - origin) / NS_PER_S
            raise _Skip(f"{topic} message at {at:.3f} s: {result}")
        return result

    obs = {}
    for key, parts in decoders.observations.items():
        rows = [[value(OBS, topic, plan.index[topic][i]) for topic, _ in parts]
                for i in range(a, b)]
        rows = [r[0] if len(r) == 1 else np.concatenate(r) for r in rows]
        dtype = np.uint8 if key in decoders.images else np.float32
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            obs[key] = _stack(rows, f"observation '{key}'").astype(dtype, copy=False)
    topic = config.action.topic
    actions = [value(ACTION, topic, plan.action_index[i]) for i in range(a, b)]
    if plan.action_next is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            actions = [value(ACTION, topic, plan.action_next[i]) - now
                       for i, now in zip(range(a, b), actions)]
    with np.errstate(over="ignore", invalid="ignore"):
        episode = Episode(obs=obs, actions=_stack(actions, "action").astype(np.float32))
    for what, array in (("action", episode.actions), *obs.items()):  # e.g. a delta overflowing
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise _Skip(f"{what} is not finite after conversion to float32; expected finite "
                        "values")
    return episode


def _stack(rows: list[np.ndarray], what: str) -> np.ndarray:
    shapes = sorted({r.shape for r in rows})
    if len(shapes) > 1:
        raise _Skip(f"{what} changes shape within the episode ({shapes}); expected one shape")
    return np.stack(rows)


def _check_spec(episode: Episode, spec: dict[str, Any]) -> None:
    """The first episode fixes the shapes; a later one that differs is skipped."""
    shapes = {key: arr.shape[1:] for key, arr in episode.obs.items()}
    shapes["action"] = episode.actions.shape[1:]
    if not spec:
        spec.update(shapes)
        return
    for key, shape in shapes.items():
        if spec[key] != shape:
            raise _Skip(f"{key} has shape {shape} but earlier episodes have {spec[key]}; "
                        "expected one shape per key in one episodes file")


def _success(streams: dict[str, StreamTimes], config: ConvertConfig, start: int,
             stop: int) -> bool | None:
    """Any true ``success_topic`` message within the episode; None without that topic."""
    stream = streams.get(config.success_topic)
    if stream is None:
        return None
    inside = (stream.times >= start) & (stream.times <= stop)
    return any(bool(m.data) for m, ok in zip(stream.messages, inside) if ok)
