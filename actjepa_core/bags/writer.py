"""Writing a rosbag2 (MCAP or sqlite3) with the `rosbags` library: what the recorder node uses
where ``ros2 bag`` is not installed, and what tests use to make real bags.

Messages go in as the serialized CDR bytes they arrived as (no re-serialization), and every topic's
message definition is embedded, so the bag reads back without knowing the recording machine's
ROS distribution. MCAP chunks carry CRCs. Until ``close`` the bag has no metadata.yaml, so a bag is
either complete or recognisably unfinished; with ``flush_period_s``, what was received up to a
flush is on disk in complete chunks (sqlite3: committed), and an unfinished bag left by a killed
recorder gives back every message older than the flush period (``actjepa recover``).
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin
from rosbags.typesys import get_typestore

from actjepa_core.bags.mcap import FlushingWriter
from actjepa_core.bags.reader import DISTRO_STORES, BagError

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 8  # rosbag2 format 8: what Jazzy writes and reads (Kilted reads it too)
DEFAULT_DISTRO = "kilted"


class BagWriter:
    """One bag being written: ``add_topic`` once per topic (any time), then ``write``."""

    def __init__(self, path: str | Path, storage: str = "mcap", distro: str = DEFAULT_DISTRO,
                 flush_period_s: float | None = None, fsync: bool = True) -> None:
        """``flush_period_s``: a write at least this long after the last flush flushes (None:
        only ``flush`` and ``close`` do); ``fsync``: a flush also waits for the disk."""
        if storage not in STORAGES:
            raise BagError(f"{path}: storage {storage!r}; expected one of {list(STORAGES)}")
        self.path = Path(path)
        self.typestore = get_typestore(DISTRO_STORES.get(distro, DISTRO_STORES[DEFAULT_DISTRO]))
        self.counts: Counter = Counter()
        self._connections: dict = {}
        self._period_ns = None if flush_period_s is None else round(flush_period_s * 1e9)
        self._flushed_ns = time.monotonic_ns()
        self._unflushed = 0  # messages written since the last flush
        try:
            self._writer = FlushingWriter(self.path, version=BAG_VERSION,
                                          storage_plugin=STORAGES[storage])
            self._writer.open()
        except Exception as err:  # noqa: BLE001 - WriterError, OSError
            raise BagError(f"{self.path}: cannot create the bag: {err}") from None
        self._writer.storage.fsync = fsync
        self._writer.storage.flush()  # the file header: an MCAP from the start, even if killed

    def has_topic(self, topic: str) -> bool:
        return topic in self._connections

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare ``topic``; a type the type store does not know cannot have its definition
        embedded and is refused (BagError)."""
        if msgtype not in self.typestore.fielddefs:
            raise BagError(f"{self.path}: cannot record {topic}: message type {msgtype} is not in "
                           "the rosbags type store, so its definition cannot be embedded")
        self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                               typestore=self.typestore)

    def write(self, topic: str, receive_ns: int, raw: bytes) -> None:
        """Append one serialized message received at ``receive_ns``."""
        self._writer.write(self._connections[topic], receive_ns, raw)
        self.counts[topic] += 1
        self._unflushed += 1
        if (self._period_ns is not None
                and time.monotonic_ns() - self._flushed_ns >= self._period_ns):
            self.flush()

    def flush(self) -> None:
        """Put everything written so far on disk in readable form (a complete MCAP chunk, a
        sqlite3 commit); nothing to do if no message came since the last flush."""
        if self._unflushed:
            self._writer.storage.flush()
            self._unflushed = 0
        self._flushed_ns = time.monotonic_ns()

    def close(self) -> Counter:
        """Finish the bag (index, metadata.yaml); returns messages written per topic."""
        self._writer.close()
        return self.counts
