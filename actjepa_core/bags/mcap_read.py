"""Reading an MCAP file record by record, as far as it is whole: what recovery does with a file
a recorder never finished (no summary, no footer, perhaps half a record at the end).

``mcap_events`` yields the channels and messages of every top-level record and of every chunk
that passes its size and CRC checks, in file order, and notes on the ``salvage`` it is given
(``actjepa_core.bags.recover.Salvage``) how many chunks it read, which it left out and why, how
many bytes at the end were not a whole record, and whether the writer had finished the file.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat
from rosbags.rosbag2.storage_mcap import decompress, get_qos

from actjepa_core.bags.reader import BagError, describe

MAGIC = b"\x89MCAP0\r\n"
FOOTER, SCHEMA, CHANNEL, MESSAGE, CHUNK, DATA_END = 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F
MAX_RECORD = 1 << 34  # 16 GiB: a length beyond this is a torn write, not a record


class _Truncated(Exception):
    """The data ends inside a record."""


def _u16(b: BinaryIO) -> int:
    return struct.unpack("<H", _read(b, 2))[0]


def _u32(b: BinaryIO) -> int:
    return struct.unpack("<I", _read(b, 4))[0]


def _u64(b: BinaryIO) -> int:
    return struct.unpack("<Q", _read(b, 8))[0]


def _read(b: BinaryIO, n: int) -> bytes:
    data = b.read(n)
    if len(data) != n:
        raise _Truncated
    return data


def _string(b: BinaryIO) -> str:
    return _read(b, _u32(b)).decode("utf-8", errors="replace")


def _records(b: BinaryIO, end: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """(offset, opcode, body) of each whole record until ``end`` or the data runs out; a torn
    record at the end raises _Truncated carrying nothing."""
    while end is None or b.tell() < end:
        offset = b.tell()
        head = b.read(9)
        if not head and end is None:
            return
        if len(head) != 9:
            raise _Truncated
        op, size = head[0], struct.unpack("<Q", head[1:])[0]
        if size > MAX_RECORD:
            raise _Truncated
        yield offset, op, _read(b, size)


@dataclass
class RawChannel:
    topic: str
    msgtype: str
    definition: MessageDefinition
    encoding: str
    qos: list


def mcap_events(path: Path, salvage: Any) -> Iterator[tuple[str, Any]]:
    """('channel', (id, _Channel)) and ('message', (channel id, log time, data)) in file order,
    from every whole record and every chunk that passes its checks."""
    schemas: dict[int, tuple[str, MessageDefinition]] = {}
    with path.open("rb") as f:
        start = f.read(len(MAGIC))
        size = f.seek(0, os.SEEK_END)
        if len(start) < len(MAGIC) and MAGIC.startswith(start):
            salvage.tail_bytes = size  # killed before the writer's first flush: nothing in it
            return
        if start != MAGIC:
            raise BagError(f"{path}: not an MCAP file (no MCAP magic at its start)")
        f.seek(len(MAGIC))
        whole = len(MAGIC)  # the end of the last whole record
        try:
            for offset, op, body in _records(f):
                whole = f.tell()
                if op in (DATA_END, FOOTER):  # the writer finished: the summary follows
                    salvage.complete = True
                    return
                if op != CHUNK:
                    yield from _event(op, body, schemas)
                    continue
                try:
                    inner = _chunk_records(body)
                except Exception as err:  # noqa: BLE001 - CRC, size, compression errors
                    why = "CRC mismatch" if "checksum" in str(err).lower() else describe(err)
                    salvage.bad_chunks.append(f"chunk at byte {offset}: {why}")
                    continue
                salvage.chunks += 1
                for event in inner:
                    yield from _event(*event, schemas)
        except _Truncated:
            pass
        salvage.tail_bytes = size - whole


def _chunk_records(body: bytes) -> list[tuple[int, bytes]]:
    """The records inside one chunk, after its size and CRC checks (raises on any failure)."""
    b = BytesIO(body)
    _u64(b), _u64(b)  # message start and end time
    raw_size, crc = _u64(b), _u32(b)
    compression = _string(b)
    compressed = _read(b, _u64(b))
    raw = decompress(compressed, compression, raw_size, crc)  # checks a non-zero CRC
    inner = BytesIO(raw)
    try:
        return [(op, data) for _, op, data in _records(inner, len(raw))]
    except _Truncated:
        raise BagError("a record runs past the end of its chunk") from None


def _event(op: int, body: bytes, schemas: dict) -> Iterator[tuple[str, Any]]:
    b = BytesIO(body)
    try:
        if op == SCHEMA:
            sid, name, encoding = _u16(b), _string(b), _string(b)
            data = _read(b, _u32(b)).decode("utf-8", errors="replace")
            fmt = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL,
                   "omgidl": MessageDefinitionFormat.IDL}.get(encoding,
                                                              MessageDefinitionFormat.NONE)
            schemas[sid] = (name, MessageDefinition(fmt, data))
        elif op == CHANNEL:
            cid, sid, topic, encoding = _u16(b), _u16(b), _string(b), _string(b)
            metadata = _read(b, _u32(b))
            name, definition = schemas.get(sid, ("", MessageDefinition(
                MessageDefinitionFormat.NONE, "")))
            if not name:
                return  # a channel whose schema was lost: its messages cannot be typed
            try:
                qos = get_qos(metadata)
            except Exception:  # noqa: BLE001 - QoS is informative only
                qos = []
            yield "channel", (cid, RawChannel(topic, name, definition, encoding, qos))
        elif op == MESSAGE:
            cid, _, log_time, _ = struct.unpack("<HIQQ", _read(b, 22))
            yield "message", (cid, log_time, b.read())
    except _Truncated:
        return  # a malformed record inside a chunk that passed its CRC: skip it
