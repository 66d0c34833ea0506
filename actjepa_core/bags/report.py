"""What a conversion gave, per bag and in total: the data ``summary`` prints and ``append`` sends
back. Every tick a bag's plan made is either written or counted as dropped with its reason, so
the counts printed are the file's."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from actjepa_core.bags.config import ConvertConfig
from actjepa_core.bags.reader import StreamTimes
from actjepa_core.bags.sync import FAR_APART
from actjepa_core.data.episodes import Episode
from actjepa_core.units import NS_PER_S

MAX_LISTED = 5  # bad messages named per bag; the rest are counted


@dataclass
class BagReport:
    """What one bag gave: episodes, ticks, dropped ticks by reason, streams, what was skipped."""

    path: str
    storage: str = ""
    start_ns: int = 0  # the first configured message (time source): episode spans count from it
    receive_start_ns: int = 0  # the same on the recorder's clock: message times count from it
    streams: list[StreamTimes] = field(default_factory=list)
    episodes: int = 0
    ticks: int = 0
    dropped: Counter = field(default_factory=Counter)
    skipped: str = ""  # why the whole bag was skipped
    skipped_episodes: list[str] = field(default_factory=list)
    bad_messages: list[str] = field(default_factory=list)  # named once each; their ticks dropped
    warnings: list[str] = field(default_factory=list)  # converted, but the user should know
    _bad_seen: dict = field(default_factory=dict, repr=False)  # (topic, ordinal) -> its line

    def name_bad(self, topic: str, ordinal: int, receive_ns: int, why: object) -> str:
        """The line naming one bad message (kept once in ``bad_messages``)."""
        key = (topic, ordinal)
        if key not in self._bad_seen:
            at = (receive_ns - self.receive_start_ns) / NS_PER_S
            self._bad_seen[key] = f"{topic} message at {at:.3f} s: {why}"
            self.bad_messages.append(self._bad_seen[key])
        return self._bad_seen[key]

    @property
    def gave_nothing(self) -> bool:
        return self.episodes == 0


@dataclass
class ConvertResult:
    episodes: list[Episode]
    bags: list[BagReport]
    config: ConvertConfig
    notes: list[str] = field(default_factory=list)  # inputs left out: repeats, symlink loops

    @property
    def skipped(self) -> bool:
        """Whether some bag, episode, bad message or tick pairing clocks that disagree was left
        out (the CLI's exit code says so)."""
        return any(b.skipped or b.skipped_episodes or b.bad_messages or b.dropped[FAR_APART]
                   for b in self.bags)
