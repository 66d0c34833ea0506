"""Planned ticks -> episodes: decode the messages kept ticks use, drop the ticks a bad message
spoils, and assemble each run of consecutive kept ticks into an episode.

A fault for a moment costs its ticks, not the episode: a message that cannot be converted (a
JointState without a configured joint, with empty positions, a frame that does not decode), one
holding NaN, Inf or a value beyond float32 (the episodes file's type), and a command whose length
differs from the others' drop the ticks that use them, and each such message is named once. What
cannot be repaired is refused with the time it happened: an observation whose shape changes
within an episode (a camera or driver reconfigured) skips that episode, and the first episode
fixes the shapes of the file. Every planned tick is written or counted as dropped with its reason.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from actjepa_core.bags.config import ConvertConfig
from actjepa_core.bags.decoders import Decoders
from actjepa_core.bags.frames import Frame, FrameDecoder, Spill, SpilledFrames
from actjepa_core.bags.reader import NS_PER_S, Bag, StreamTimes, read_messages
from actjepa_core.bags.report import BagReport
from actjepa_core.bags.sync import TickPlan
from actjepa_core.data.episodes import MIN_STEPS, Episode
from actjepa_core.data.messages import ConversionError

OBS, ACTION = "obs", "action"
SHORT_RUN = f"fewer than {MIN_STEPS} consecutive ticks (no transition)"
SKIPPED_EPISODE = "in a skipped episode"
FLOAT32_MAX = float(np.finfo(np.float32).max)
Values = dict[tuple[str, str], dict[int, Any]]  # (role, topic) -> {ordinal: array|Frame|error}


@dataclass
class Planned:
    """One window's ticks, planned on the streams of its span of the recording."""

    number: int  # the bag's episode number
    plan: TickPlan
    streams: dict[str, StreamTimes]


class NonFinite(ConversionError):
    """A decoded message with a value the episodes file cannot hold (NaN, Inf, beyond float32)."""


class _Skip(Exception):
    """An episode that cannot be assembled; the message says why."""


# ---- decoding --------------------------------------------------------------------------------
def decode_used(bag: Bag, planned: list[Planned], decoders: Decoders, config: ConvertConfig,
                spill: Spill) -> Values:
    """Every message a kept tick uses, converted: an array, a spilled ``Frame`` (images: checked,
    then set aside encoded) or the ConversionError saying why it cannot be used."""
    wanted = _wanted(planned, decoders, config)
    by_topic: dict[str, set[int]] = {}
    for (_, topic), ordinals in wanted.items():
        by_topic.setdefault(topic, set()).update(ordinals)
    functions = {(OBS, t): f for parts in decoders.observations.values() for t, f in parts}
    functions[(ACTION, config.action.topic)] = decoders.action
    images = {decoders.observations[key][0][0] for key in decoders.images}
    deserializers = {t: bag.deserializer(t) for t, ordinals in by_topic.items() if ordinals}
    values: Values = {key: {} for key in wanted}
    for topic, ordinal, receive_ns, raw in read_messages(bag, by_topic):
        msg = bag.decode(deserializers[topic], raw, topic, receive_ns)
        for role in (OBS, ACTION):
            if ordinal in wanted.get((role, topic), ()):
                value = _convert(functions[(role, topic)], msg)
                if role == OBS and topic in images and isinstance(value, np.ndarray):
                    value = spill.add(raw, value.shape)  # checked; decoded again when written
                values[(role, topic)][ordinal] = value
    return values


def frame_decoders(bag: Bag, decoders: Decoders) -> dict[str, FrameDecoder]:
    """Per image key: encoded message -> frame, usable after the bag is closed."""
    result = {}
    for key in decoders.images:
        topic, function = decoders.observations[key][0]
        result[key] = _frame_decoder(bag, topic, function)
    return result


def _frame_decoder(bag: Bag, topic: str, function: Callable[[Any], np.ndarray]
                   ) -> FrameDecoder:
    deserialize = bag.deserializer(topic)
    return lambda raw: function(bag.decode(deserialize, raw, topic, 0))


def _wanted(planned: list[Planned], decoders: Decoders, config: ConvertConfig
            ) -> dict[tuple[str, str], set[int]]:
    wanted: dict[tuple[str, str], set[int]] = {}
    for item in planned:
        plan, streams, kept = item.plan, item.streams, item.plan.kept
        for parts in decoders.observations.values():
            for topic, _ in parts:
                used = plan.index[topic][kept]
                wanted.setdefault((OBS, topic), set()).update(streams[topic].ordinal[used].tolist())
        action = streams[config.action.topic]
        for index in _action_indices(plan):
            wanted.setdefault((ACTION, config.action.topic), set()).update(
                action.ordinal[index[kept]].tolist())
    return wanted


def _action_indices(plan: TickPlan) -> list[np.ndarray]:
    return [plan.action_index] + ([] if plan.action_next is None else [plan.action_next])


def _convert(function: Callable[[Any], np.ndarray], msg: Any) -> Any:
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


# ---- dropping what a bad message spoils --------------------------------------------------------
def drop_bad_ticks(item: Planned, values: Values, config: ConvertConfig, spec: dict[str, Any],
                   report: BagReport) -> str:
    """Drop every kept tick that uses an unusable message or a command of another length, name
    each such message once; returns the first one's line ('' if none)."""
    plan, streams = item.plan, item.streams
    uses = [(OBS, topic, plan.index[topic]) for (role, topic) in values
            if role == OBS and topic in plan.index]
    uses += [(ACTION, config.action.topic, index) for index in _action_indices(plan)]
    first = ""
    for i in np.flatnonzero(plan.kept):
        for role, topic, index in uses:
            stream = streams[topic]
            result = values[(role, topic)].get(int(stream.ordinal[index[i]]))
            if isinstance(result, ConversionError):
                kind = "non-finite" if isinstance(result, NonFinite) else "bad"
                plan.reasons[i] = f"{kind} {topic}"
                line = report.name_bad(topic, int(stream.ordinal[index[i]]),
                                       int(stream.receive[index[i]]), result)
                first = first or line
                break
    return _drop_odd_commands(item, values, config, spec, report) or first


def _drop_odd_commands(item: Planned, values: Values, config: ConvertConfig,
                       spec: dict[str, Any], report: BagReport) -> str:
    """Drop kept ticks whose command has another length than the file's (or, for the first
    episode, than most of this window's commands): a command that changes length for a moment."""
    plan, topic = item.plan, config.action.topic
    stream, decoded = item.streams[topic], values[(ACTION, topic)]
    kept = np.flatnonzero(plan.kept)
    if not kept.size:
        return ""
    shapes = [decoded[int(stream.ordinal[index[i]])].shape for i in kept
              for index in _action_indices(plan)]
    expected = spec.get("action") or Counter(shapes).most_common(1)[0][0]
    first = ""
    for i in kept:
        for index in _action_indices(plan):
            ordinal = int(stream.ordinal[index[i]])
            if decoded[ordinal].shape != tuple(expected):
                plan.reasons[i] = f"bad {topic}"
                line = report.name_bad(topic, ordinal, int(stream.receive[index[i]]),
                                       f"{decoded[ordinal].size} values; expected "
                                       f"{int(np.prod(expected))}, the other commands' length")
                first = first or line
                break
    return first


# ---- assembly --------------------------------------------------------------------------------
def episodes_of(item: Planned, values: Values, decoders: Decoders,
                frames: dict[str, FrameDecoder], config: ConvertConfig, spec: dict[str, Any],
                spill: Spill, report: BagReport) -> list[Episode]:
    """The episodes of one window: one per run of consecutive kept ticks."""
    plan = item.plan
    first_bad = drop_bad_ticks(item, values, config, spec, report)
    runs = plan.runs(MIN_STEPS)
    in_runs = np.zeros(len(plan.ticks), dtype=bool)
    for a, b in runs:
        in_runs[a:b] = True
    for i in np.flatnonzero(~in_runs):
        report.dropped[plan.reasons[i] or SHORT_RUN] += 1
    where = f"episode {item.number} {span((plan.ticks[0], plan.ticks[-1]), report.start_ns)}"
    if not runs:
        report.skipped_episodes.append(
            f"{where}: {int(plan.kept.sum())} usable tick(s) of {len(plan.ticks)} at "
            f"{config.rate_hz:g} Hz; need at least {MIN_STEPS} in a row to form one transition"
            + (f"; first bad message: {first_bad}" if first_bad else ""))
        return []
    episodes = []
    for part, (a, b) in enumerate(runs):
        label = where if len(runs) == 1 else f"{where} part {part}"
        try:
            episode = _assemble(item, a, b, values, decoders, frames, config, spill,
                                f"{report.path} {label}", report.start_ns)
            _check_spec(episode, spec)
        except _Skip as err:
            report.skipped_episodes.append(f"{label}: {err}")
            report.dropped[SKIPPED_EPISODE] += b - a
            continue
        period = round(NS_PER_S / config.rate_hz)  # the last tick's step reports until then
        episode.success = _success(item.streams, config, plan.ticks[a], plan.ticks[b - 1] + period)
        episode.attrs = {"bag": report.path, "bag_episode": item.number, "part": part,
                         "start_ns": int(plan.ticks[a])}
        episodes.append(episode)
        report.episodes += 1
        report.ticks += b - a
    return episodes


def span(window: tuple[int, int], origin: int) -> str:
    return f"({(window[0] - origin) / NS_PER_S:.2f}-{(window[1] - origin) / NS_PER_S:.2f} s)"


def _assemble(item: Planned, a: int, b: int, values: Values, decoders: Decoders,
              frames: dict[str, FrameDecoder], config: ConvertConfig, spill: Spill, where: str,
              origin: int) -> Episode:
    plan, streams = item.plan, item.streams
    ticks = plan.ticks[a:b]

    def value(role: str, topic: str, index: int) -> Any:
        return values[(role, topic)][int(streams[topic].ordinal[index])]

    obs: dict[str, Any] = {}
    for key, parts in decoders.observations.items():
        if key in decoders.images:
            topic = parts[0][0]
            used: list[Frame] = [value(OBS, topic, plan.index[topic][i]) for i in range(a, b)]
            _same_shape([f.shape for f in used], ticks, f"observation '{key}'", origin)
            obs[key] = SpilledFrames(spill, used, frames[key], f"{where} '{key}'")
            continue
        rows = [[value(OBS, topic, plan.index[topic][i]) for topic, _ in parts]
                for i in range(a, b)]
        rows = [r[0] if len(r) == 1 else np.concatenate(r) for r in rows]
        _same_shape([r.shape for r in rows], ticks, f"observation '{key}'", origin)
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            obs[key] = np.stack(rows).astype(np.float32, copy=False)
    topic = config.action.topic
    actions = [value(ACTION, topic, plan.action_index[i]) for i in range(a, b)]
    if plan.action_next is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            actions = [value(ACTION, topic, plan.action_next[i]) - now
                       for i, now in zip(range(a, b), actions)]
    _same_shape([x.shape for x in actions], ticks, "action", origin)
    with np.errstate(over="ignore", invalid="ignore"):
        episode = Episode(obs=obs, actions=np.stack(actions).astype(np.float32))
    for what, array in (("action", episode.actions), *obs.items()):  # e.g. a delta overflowing
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise _Skip(f"{what} is not finite after conversion to float32; expected finite "
                        "values")
    return episode


def _same_shape(shapes: list[tuple[int, ...]], ticks: np.ndarray, what: str,
                origin: int) -> None:
    """Refuse (``_Skip``) a shape change, naming the time of the first change."""
    for shape, tick in zip(shapes, ticks):
        if shape != shapes[0]:
            at = (int(tick) - origin) / NS_PER_S
            raise _Skip(f"{what} changes shape within the episode at {at:.3f} s, from "
                        f"{shapes[0]} to {shape}; expected one shape (a camera or driver "
                        "reconfigured? split the recording there)")


def _check_spec(episode: Episode, spec: dict[str, Any]) -> None:
    """The first episode fixes the shapes; a later one that differs is skipped."""
    shapes = {key: tuple(arr.shape[1:]) for key, arr in episode.obs.items()}
    shapes["action"] = tuple(episode.actions.shape[1:])
    if not spec:
        spec.update(shapes)
        return
    for key, shape in shapes.items():
        if tuple(spec[key]) != shape:
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
