"""rosbag2 bags (sqlite3 or MCAP; Humble, Jazzy, Kilted) opened with the `rosbags` library.

A bag is a folder with ``metadata.yaml`` or a lone ``.mcap`` / ``.db3`` file. Message types are
decoded with the definitions the bag embeds (Jazzy and later, and MCAP, store them) or, for bags
that embed none (Humble's sqlite3), with the `rosbags` type store of the bag's ROS distribution.
Every failure to read a bag (missing, truncated, corrupt, unknown type, missing topic) is a
``BagError`` naming the bag, so the caller can skip that bag and convert the others.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from actjepa_core.bags.inputs import (  # noqa: F401 - find_bags: the recorder's import
    BAG_METADATA,
    STORAGE_SUFFIXES,
    describe,
    discover_bags,
    find_bags,
)
from actjepa_core.errors import ActJepaError
from actjepa_core.units import NS_PER_S

# The type store for bags without embedded definitions: the bag's ros_distro if it names one;
# Humble otherwise (the only distribution whose bags carry neither definitions nor ros_distro).
DISTRO_STORES = {"humble": Stores.ROS2_HUMBLE, "iron": Stores.ROS2_IRON,
                 "jazzy": Stores.ROS2_JAZZY, "kilted": Stores.ROS2_KILTED}
DEFAULT_DISTRO = "humble"
_IDL_SEPARATOR = "=" * 80 + "\n"


class BagError(ActJepaError):
    """A bag that cannot be converted; the message names the bag and why."""


@dataclass
class StreamTimes:
    """One topic's distinct messages in time order: ``times[i]`` (ns, the configured time source)
    of message number ``ordinal[i]``, received at ``receive[i]``."""

    topic: str
    msgtype: str
    times: np.ndarray  # int64, ascending
    ordinal: np.ndarray  # int64: position of that message among the topic's messages in the bag
    receive: np.ndarray | None = None  # int64 receive times (the bag's); None: equal to times
    messages: list[Any] | None = None  # deserialized, in time order (only when asked for)
    duplicates: int = 0  # messages left out: the same stamp and bytes as one kept

    def __post_init__(self) -> None:
        if self.receive is None:
            self.receive = self.times

    @property
    def rate_hz(self) -> float:
        """The typical rate: 1 / median interval between distinct stamps (pauses between
        episodes do not dilute it; messages sharing a stamp do not make it 0)."""
        gaps = np.diff(self.times)
        gaps = gaps[gaps > 0]
        return NS_PER_S / float(np.median(gaps)) if gaps.size else 0.0

    @property
    def longest_gap_s(self) -> float:
        return float(np.diff(self.times).max()) / NS_PER_S if len(self.times) > 1 else 0.0

    def select(self, mask: np.ndarray) -> "StreamTimes":
        """The messages where ``mask`` holds (a span of the recording), same order."""
        messages = (None if self.messages is None else
                    [m for m, keep in zip(self.messages, mask) if keep])
        return StreamTimes(self.topic, self.msgtype, self.times[mask], self.ordinal[mask],
                           self.receive[mask], messages, 0)


class Bag:
    """An open bag: its topics and types, and its messages deserialized on demand."""

    def __init__(self, path: Path, typestore: str = "auto", label: Path | None = None) -> None:
        """``label``: the name errors give the bag (a recovered copy is named as its original)."""
        self.path = path
        self.label = label or path
        self._typestore_choice = typestore
        self._reader: Reader | None = None
        self._stores: dict[str, Any] = {}

    def __enter__(self) -> "Bag":
        self._reader = self._guard("is not a rosbag2 bag", lambda: Reader(self.path))
        self._guard("cannot be opened", self._reader.open)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._reader is not None and self._reader.is_open:
            try:
                self._reader.close()
            except Exception:  # noqa: BLE001 - a broken bag may fail to close; it is skipped
                pass

    # ---- what the bag holds ------------------------------------------------------------------
    @property
    def storage(self) -> str:
        return "mcap" if self._storage_files(".mcap") else "sqlite3"

    def _storage_files(self, suffix: str) -> bool:
        path = self.path
        return path.suffix == suffix or (path.is_dir() and any(path.glob(f"*{suffix}")))

    @property
    def ros_distro(self) -> str:
        return str(self._reader.ros_distro or "")

    def topic_types(self) -> dict[str, str]:
        """{topic: message type} of every topic in the bag."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    def require_topics(self, topics: Iterable[str]) -> dict[str, str]:
        """{topic: type} for ``topics``; a missing one is a BagError listing what the bag has."""
        have = self.topic_types()
        missing = [t for t in topics if t not in have]
        if missing:
            listing = ", ".join(f"{t} ({have[t]})" for t in sorted(have)) or "none"
            raise BagError(f"{self.label}: no topic {', '.join(missing)}; the bag has: {listing}")
        return {t: have[t] for t in topics}

    # ---- decoding ----------------------------------------------------------------------------
    def deserializer(self, topic: str) -> Callable[[bytes], Any]:
        """raw CDR bytes -> message, for ``topic``'s type (BagError if its type is unknown).
        Only this topic's embedded definition is parsed: a broken one elsewhere does not
        matter."""
        msgtype = self.topic_types()[topic]
        store = self._store_for(topic, msgtype)
        if msgtype not in store.fielddefs:
            raise BagError(f"{self.label}: unknown message type {msgtype} on {topic}: the bag "
                           f"embeds no definition and the {self._fallback_distro()} type store "
                           "lacks it")

        def deserialize(raw: bytes) -> Any:
            return store.deserialize_cdr(raw, msgtype)

        return deserialize

    def _store_for(self, topic: str, msgtype: str) -> Any:
        """The topic's embedded definition when the bag has one, else the distro's store."""
        embedded = [c for c in self._reader.connections if c.topic == topic
                    and c.msgtype == msgtype
                    and c.msgdef.format != MessageDefinitionFormat.NONE and c.msgdef.data]
        if embedded:
            return self._embedded_store(topic, embedded)
        distro = self._fallback_distro()
        if distro not in self._stores:
            self._stores[distro] = get_typestore(DISTRO_STORES[distro])
        return self._stores[distro]

    def _fallback_distro(self) -> str:
        if self._typestore_choice != "auto":
            return self._typestore_choice
        distro = self.ros_distro.lower()
        return distro if distro in DISTRO_STORES else DEFAULT_DISTRO

    def _embedded_store(self, topic: str, connections: list[Any]) -> Any:
        """A type store of ``topic``'s embedded definition (with the types it uses)."""
        key = f"topic {topic}"
        if key not in self._stores:
            typs: dict = {}
            for conn in connections:
                try:
                    typs.update(parse_definition(conn.msgdef, conn.msgtype))
                except Exception as err:  # noqa: BLE001 - rosbags' parser raises several types
                    raise BagError(f"{self.label}: the message definition of {conn.msgtype} on "
                                   f"{topic} cannot be parsed: {_parse_failure(err)}") from None
            store = get_typestore(Stores.EMPTY)
            self._guard(f"the message definitions of {topic} disagree",
                        lambda: store.register(typs))
            self._stores[key] = store
        return self._stores[key]

    # ---- reading -----------------------------------------------------------------------------
    def raw_messages(self, topics: Iterable[str]) -> Iterator[tuple[str, int, bytes]]:
        """(topic, receive time ns, raw CDR) of ``topics``, in the bag's order."""
        wanted = set(topics)
        connections = [c for c in self._reader.connections if c.topic in wanted]
        if not connections:  # rosbags reads every topic when given none
            return
        iterator = iter(self._reader.messages(connections=connections))
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except Exception as err:  # noqa: BLE001 - any storage failure: truncated/corrupt
                if "checksum" in str(err).lower():
                    raise BagError(f"{self.label}: corrupt: an MCAP chunk fails its CRC check "
                                   "(its bytes changed after they were written); `actjepa "
                                   f"recover {self.label}` keeps the chunks that pass") from None
                raise BagError(f"{self.label}: cannot be read to the end (truncated or corrupt?): "
                               f"{describe(err)}") from None
            connection, timestamp, raw = item
            yield connection.topic, int(timestamp), raw

    def decode(self, deserialize: Callable[[bytes], Any], raw: bytes, topic: str,
               receive_ns: int) -> Any:
        """Deserialize one message; a corrupt one is a BagError naming topic and time."""
        try:
            return deserialize(raw)
        except Exception as err:  # noqa: BLE001 - rosbags raises assorted errors on bad CDR
            raise BagError(f"{self.label}: corrupt {topic} message at {receive_ns / NS_PER_S:.3f} "
                           f"s: {describe(err)}") from None

    def _guard(self, what: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except BagError:
            raise
        except Exception as err:  # noqa: BLE001 - rosbags/sqlite/mcap raise many error types
            raise BagError(f"{self.label}: {what} (truncated or corrupt?): "
                           f"{describe(err)}") from None


def _parse_failure(err: BaseException) -> str:
    """rosbags' "Could not parse:" text (the whole definition, a position, the line) as one
    line: the line it stopped at."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Could not parse"):
        return f"not a valid message definition near {lines[-1][:80]!r}"
    return describe(err)


def parse_definition(definition: Any, msgtype: str) -> dict:
    if definition.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(definition.data, msgtype)
    typs: dict = {}
    if definition.data.startswith(f"{_IDL_SEPARATOR}IDL: "):
        for part in definition.data.split(_IDL_SEPARATOR)[1:]:
            typs.update(get_types_from_idl(part.split("\n", 1)[1]))
    else:
        typs.update(get_types_from_idl(definition.data))
    return typs


def header_time(msg: Any, receive_ns: int) -> int:
    """header.stamp in ns, or the receive time when there is no header or the stamp is zero
    (a JointTrajectory stamped 0 means "start now")."""
    header = getattr(msg, "header", None)
    if header is None:
        return receive_ns
    stamp = int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)
    return stamp if stamp > 0 else receive_ns


def read_streams(bag: Bag, topics: Sequence[str], header_times: bool,
                 keep: Iterable[str] = ()) -> dict[str, StreamTimes]:
    """Each topic's distinct message times (receive or header), sorted, with their receive times;
    ``keep`` topics' messages too. A message with the same stamp and bytes as an earlier one of its
    topic (two identical publishers recorded, a bridge echoing) is left out and counted: it would
    weigh twice and make every interval 0."""
    keep = set(keep)
    types = bag.require_topics(topics)
    decode_topics = set(topics) if header_times else keep
    deserializers = {t: bag.deserializer(t) for t in decode_topics}
    found = {t: _Found() for t in topics}
    for topic, receive_ns, raw in bag.raw_messages(topics):
        msg = (bag.decode(deserializers[topic], raw, topic, receive_ns)
               if topic in deserializers else None)
        stamp = header_time(msg, receive_ns) if header_times else receive_ns
        found[topic].add(stamp, receive_ns, raw, msg if topic in keep else None)
    return {t: found[t].stream(t, types[t], t in keep) for t in topics}


class _Found:
    """One topic's messages as read (bag order), duplicates left out."""

    def __init__(self) -> None:
        self.stamps: list[int] = []
        self.receive: list[int] = []
        self.ordinal: list[int] = []
        self.messages: list[Any] = []
        self.seen: set[tuple[int, int, int]] = set()  # (stamp, size, CRC-32) of kept messages
        self.count = 0

    def add(self, stamp: int, receive_ns: int, raw: bytes, msg: Any) -> None:
        ordinal, self.count = self.count, self.count + 1
        key = (stamp, len(raw), zlib.crc32(raw))
        if key in self.seen:
            return
        self.seen.add(key)
        self.stamps.append(stamp)
        self.receive.append(receive_ns)
        self.ordinal.append(ordinal)
        self.messages.append(msg)

    def stream(self, topic: str, msgtype: str, keep: bool) -> StreamTimes:
        stamps = np.asarray(self.stamps, dtype=np.int64)
        order = np.argsort(stamps, kind="stable")
        messages = [self.messages[i] for i in order] if keep else None
        return StreamTimes(topic, msgtype, stamps[order],
                           np.asarray(self.ordinal, dtype=np.int64)[order],
                           np.asarray(self.receive, dtype=np.int64)[order], messages,
                           self.count - len(self.stamps))


def read_messages(bag: Bag, wanted: dict[str, set[int]]
                  ) -> Iterator[tuple[str, int, int, bytes]]:
    """(topic, ordinal, receive ns, raw CDR) for the wanted message ordinals of each topic
    (``Bag.decode`` with ``Bag.deserializer`` makes the message)."""
    counters = {t: 0 for t, ordinals in wanted.items() if ordinals}
    for topic, receive_ns, raw in bag.raw_messages(counters):
        ordinal = counters[topic]
        counters[topic] += 1
        if ordinal in wanted[topic]:
            yield topic, ordinal, receive_ns, raw
