"""The text `actjepa convert` prints: inputs left out (a recording named twice, a symlink loop);
per bag its episodes, ticks, dropped ticks and why, and each stream's distinct message count and
rate (the first thing to check when ticks are dropped: a stream slower than the output rate, or
one that stopped); then what was skipped and why, and the totals. Every count is the file's: a
bag that gave no episode is not counted among those converted from."""
from __future__ import annotations

from collections import Counter

from actjepa_core.bags.convert import MAX_LISTED, ConvertResult


def format_summary(result: ConvertResult) -> str:
    lines = [f"input: {note}" for note in result.notes]
    for bag in result.bags:
        if bag.skipped:
            lines.append(f"{bag.path}: skipped: {bag.skipped}")
            lines += [f"  warning: {why}" for why in bag.warnings]
            continue
        lines.append(f"{bag.path} ({bag.storage}): {_count(bag.episodes, 'episode')}, "
                     f"{_count(bag.ticks, 'tick')}, {_dropped(bag.dropped)}")
        width = max((len(s.topic) for s in bag.streams), default=0)
        for stream in bag.streams:
            lines.append(f"    {stream.topic:<{width}}  {stream.msgtype:<34} "
                         f"{len(stream.times):>7} msgs {stream.rate_hz:>8.1f} Hz, longest gap "
                         f"{stream.longest_gap_s:.3f} s"
                         + (f", {stream.duplicates} duplicates left out" if stream.duplicates
                            else ""))
        lines += [f"  warning: {why}" for why in bag.warnings]
        lines += [f"  skipped: {why}" for why in bag.skipped_episodes]
        lines += [f"  bad data: {why}" for why in bag.bad_messages[:MAX_LISTED]]
        if len(bag.bad_messages) > MAX_LISTED:
            lines.append(f"  bad data: {len(bag.bad_messages) - MAX_LISTED} more message(s)")
    lines.append(_totals(result))
    return "\n".join(lines)


def _totals(result: ConvertResult) -> str:
    dropped = Counter()
    for bag in result.bags:
        dropped.update(bag.dropped)
    bags_skipped = sum(bool(b.skipped) for b in result.bags)
    productive = sum(not b.gave_nothing for b in result.bags)
    episodes_skipped = sum(len(b.skipped_episodes) for b in result.bags)
    bad = sum(len(b.bad_messages) for b in result.bags)
    ticks = sum(b.ticks for b in result.bags)
    return (f"converted {_count(len(result.episodes), 'episode')} ({_count(ticks, 'tick')} at "
            f"{result.config.rate_hz:g} Hz, {_dropped(dropped)}) from "
            f"{productive} of {_count(len(result.bags), 'bag')}; skipped "
            f"{_count(bags_skipped, 'bag')} and {_count(episodes_skipped, 'episode')}"
            + (f"; {_count(bad, 'bad message')} (NaN/Inf, unconvertible, another length: "
               "their ticks dropped)" if bad else ""))


def _dropped(dropped: Counter) -> str:
    total = sum(dropped.values())
    if not total:
        return "0 dropped"
    reasons = ", ".join(f"{why}: {n}" for why, n in dropped.most_common())
    return f"{total} dropped ({reasons})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
