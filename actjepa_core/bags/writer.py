"""Writing a rosbag2 (MCAP or sqlite3) with the `rosbags` library: what the recorder node uses
where ``ros2 bag`` is not installed, and what tests use to make real bags.

Messages go in as the serialized CDR bytes they arrived as (no re-serialization), and every topic's
message definition is embedded, so the bag reads back without knowing the recording machine's
ROS distribution. Until ``close`` the bag has no metadata.yaml (readers refuse it), so a bag is
either complete or recognisably unfinished.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore

from actjepa_core.bags.reader import DISTRO_STORES, BagError

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 8  # rosbag2 format 8: what Jazzy writes and reads (Kilted reads it too)
DEFAULT_DISTRO = "kilted"


class BagWriter:
    """One bag being written: ``add_topic`` once per topic (any time), then ``write``."""

    def __init__(self, path: str | Path, storage: str = "mcap",
                 distro: str = DEFAULT_DISTRO) -> None:
        if storage not in STORAGES:
            raise BagError(f"{path}: storage {storage!r}; expected one of {list(STORAGES)}")
        self.path = Path(path)
        self.typestore = get_typestore(DISTRO_STORES.get(distro, DISTRO_STORES[DEFAULT_DISTRO]))
        self.counts: Counter = Counter()
        self._connections: dict = {}
        try:
            self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
            self._writer.open()
        except Exception as err:  # noqa: BLE001 - WriterError, OSError
            raise BagError(f"{self.path}: cannot create the bag: {err}") from None

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

    def close(self) -> Counter:
        """Finish the bag (index, metadata.yaml); returns messages written per topic."""
        self._writer.close()
        return self.counts
