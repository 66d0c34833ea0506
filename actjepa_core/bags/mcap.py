"""The storage writers behind ``BagWriter``: rosbags' own, plus what a recorder that may be killed
needs.

MCAP: every chunk carries the CRC-32 of its records (rosbags writes 0, "no CRC", so a flipped
byte would read back as a wrong value; readers, rosbags included, check a non-zero CRC), and
``flush`` closes the pending chunk and hands it to the operating system, so the file is a valid
MCAP prefix: header, complete chunks, their message indexes. What a killed recorder leaves behind
is then readable chunk by chunk (``actjepa_core.bags.recover``). With ``fsync`` a background
thread then waits for the disk (against power cuts): the recorder's callbacks, which stamp each
message's receive time, never wait for a slow disk.

sqlite3: ``flush`` commits the open transaction (rosbags commits only on close); with ``fsync``
off the commit does not wait for the disk either (``PRAGMA synchronous=OFF``).
"""
from __future__ import annotations

import os
import threading
from binascii import crc32
from collections import defaultdict
from io import BytesIO

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import (
    McapWriter,
    PendingChunk,
    write_record,
    write_string,
    write_uint16,
    write_uint32,
    write_uint64,
)
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

NO_TIME = 2**63 - 1  # rosbags' "no message yet" chunk start time


class CrcMcapWriter(McapWriter):
    """rosbags' MCAP storage writer with chunk CRCs and an explicit ``flush``."""

    fsync = True  # flush: also have the disk written (survives a power cut, not only a kill)
    _syncer: "_Syncer | None" = None

    def close_chunk(self) -> None:
        """Write the pending chunk (with its CRC) and its message indexes; start a new one."""
        records = self.chunk.bio.getvalue()
        start, end = self.chunk.message_start_time, self.chunk.message_end_time
        if start == NO_TIME:  # only schema/channel records: no message time range
            start = end = 0
        rec = BytesIO()
        write_uint64(rec, start)
        write_uint64(rec, end)
        write_uint64(rec, len(records))
        write_uint32(rec, crc32(records))
        compressed = self.compressor(records)
        write_string(rec, self.compression)
        write_uint64(rec, len(compressed))
        rec.write(compressed)

        chunk_start = self.bio.tell()
        write_record(self.bio, 0x06, rec)
        chunk_end = self.bio.tell()

        offsets: list[tuple[int, int]] = []
        for cid, msgs in self.chunk.msgs.items():
            offsets.append((cid, self.bio.tell()))
            rec = BytesIO()
            write_uint16(rec, cid)
            write_uint32(rec, len(msgs) * 16)
            for ts, offset in msgs:
                write_uint64(rec, ts)
                write_uint64(rec, offset)
            write_record(self.bio, 0x07, rec)

        rec = BytesIO()  # the chunk index, written into the summary on close
        write_uint64(rec, start)
        write_uint64(rec, end)
        write_uint64(rec, chunk_start)
        write_uint64(rec, chunk_end - chunk_start)
        write_uint32(rec, len(offsets) * 10)
        for cid, offset in offsets:
            write_uint16(rec, cid)
            write_uint64(rec, offset)
        write_uint64(rec, self.bio.tell() - chunk_end)
        write_string(rec, self.compression)
        write_uint64(rec, len(compressed))
        write_uint64(rec, len(records))
        self.chunks.append(rec)
        self.chunk = PendingChunk(NO_TIME, 0, BytesIO(), defaultdict(list))

    def flush(self) -> None:
        """Close the pending chunk, if it holds anything, hand the file to the operating system
        (a killed process loses nothing of it) and, with ``fsync``, have it written to disk."""
        if self.chunk.bio.tell():
            self.close_chunk()
        self.bio.flush()
        if self.fsync:
            if self._syncer is None:
                self._syncer = _Syncer(self.bio.fileno())
            self._syncer.request()

    def close(self, version: int, metadata: str) -> None:
        self._stop_syncer()
        super().close(version, metadata)
        if self.fsync:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def abort(self) -> None:
        self._stop_syncer()
        super().abort()

    def _stop_syncer(self) -> None:
        if self._syncer is not None:
            self._syncer.stop()
            self._syncer = None


class _Syncer:
    """A thread that fsyncs one file descriptor whenever asked (requests made while it syncs
    are served by one more fsync)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.wake = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="bag-fsync", daemon=True)
        self.thread.start()

    def request(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        """Finish a sync under way, then end (before the descriptor is closed)."""
        self.stopping = True
        self.wake.set()
        self.thread.join()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stopping:
                return
            try:
                os.fsync(self.fd)
            except OSError:  # the disk fails: the recorder's writes will say so
                return


class CommittingSqlite3Writer(Sqlite3Writer):
    """rosbags' sqlite3 storage writer with an explicit ``flush`` (a commit)."""

    _synchronous: str | None = None

    def flush(self) -> None:
        fsync = getattr(self, "fsync", True)
        mode = "FULL" if fsync else "OFF"
        if mode != self._synchronous:
            self.conn.commit()  # (the pragma has no effect inside a transaction)
            self.conn.execute(f"PRAGMA synchronous={mode}")
            self._synchronous = mode
        self.conn.commit()


class FlushingWriter(Writer):
    """rosbags' Writer using the storage writers above."""

    STORAGE_PLUGINS = {StoragePlugin.SQLITE3: CommittingSqlite3Writer,
                       StoragePlugin.MCAP: CrcMcapWriter}
