"""Recovering what an interrupted recording left on disk (`actjepa recover`, and `actjepa convert`
on an unfinished bag).

A recorder killed by SIGKILL, the OOM killer or a power cut leaves a bag without its end: an MCAP
file without summary and footer (and perhaps half a chunk at its end), or a sqlite3 database
without its metadata (and perhaps a hot journal or WAL file), and no metadata.yaml. Readers refuse
it. The recorder flushes a complete, CRC-checked chunk (or commits) at least every
``flush_period_s``, so everything but the last moments is there, in readable form.

Recovery reads the file record by record (``mcap_read``): every chunk that is whole and passes
its CRC gives its messages; a chunk that fails its CRC is left out (and named); the unreadable
tail is counted.
sqlite3: the database is opened by SQLite itself on a copy, which rolls back a hot journal or
checkpoints a WAL, as after any crash. What was read is written as a new, complete bag (chunk
CRCs, index, metadata.yaml) with the same storage; ``recover_bag`` puts it in the place of the
unfinished one and keeps the original beside it, hidden (``.<name>.unfinished``), so nothing is
lost if the user wants to look again.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from rosbags.interfaces import MessageDefinitionFormat
from rosbags.rosbag2 import Reader, StoragePlugin
from rosbags.typesys import Stores, get_typestore

from actjepa_core.bags.mcap import FlushingWriter
from actjepa_core.bags.mcap_read import MAGIC, RawChannel, mcap_events
from actjepa_core.bags.reader import BAG_METADATA, BagError, describe, parse_definition

UNKNOWN_HASH = "RIHS01_" + "0" * 64  # a definition that cannot be parsed has no computable hash
SQLITE_SIDECARS = ("-wal", "-journal", "-shm")
UNFINISHED_SUFFIX = ".unfinished"
BAG_VERSION = 8


@dataclass
class Salvage:
    """What a recovery read: messages per topic, chunks kept and left out, bytes unreadable."""

    path: str
    storage: str
    complete: bool = False  # the file had its end (footer / a finished sqlite3 database)
    topics: Counter = field(default_factory=Counter)
    chunks: int = 0
    bad_chunks: list[str] = field(default_factory=list)  # why each left-out chunk was
    lost_messages: int = 0  # messages of channels whose definition was lost
    tail_bytes: int = 0  # bytes at the end that are not a whole record

    @property
    def messages(self) -> int:
        return sum(self.topics.values())

    @property
    def needed(self) -> bool:
        """Whether the file was not a complete, intact bag."""
        return not self.complete or bool(self.bad_chunks or self.tail_bytes)

    def describe(self) -> str:
        """One line: what was recovered and what was not."""
        counts = ", ".join(f"{t}: {n}" for t, n in sorted(self.topics.items())) or "none"
        parts = [f"recovered {self.messages} message(s) ({counts})"]
        if self.storage == "mcap":
            parts[0] += f" from {self.chunks} complete chunk(s)"
        if self.bad_chunks:
            parts.append(f"left out {len(self.bad_chunks)} corrupt chunk(s) "
                         f"({'; '.join(self.bad_chunks[:3])})")
        if self.tail_bytes:
            parts.append(f"the last {self.tail_bytes} byte(s) are not a whole record (written "
                         "after the last flush, or cut off)")
        if self.lost_messages:
            parts.append(f"{self.lost_messages} message(s) of channels without a definition "
                         "were dropped")
        return "; ".join(parts)


# ---- what needs recovering ----------------------------------------------------------------------
def is_unfinished(path: Path) -> bool:
    """Whether ``path`` (a bag folder or a storage file, as ``find_bags`` gives them) lacks its
    end: an MCAP file without its closing magic, a sqlite3 file beside a hot journal/WAL or in
    a folder without metadata.yaml, a folder without metadata.yaml or holding such a file."""
    if path.is_dir():
        if not (path / BAG_METADATA).is_file():
            return True
        return any(is_unfinished(p) for p in path.glob("*.mcap"))
    if path.suffix == ".mcap":
        try:
            with path.open("rb") as f:
                start = f.read(len(MAGIC))
                if len(start) < len(MAGIC) and MAGIC.startswith(start):
                    return True  # empty: killed before the writer's first flush
                if start != MAGIC:
                    return False  # not an MCAP at all: the reader says so
                f.seek(0, os.SEEK_END)
                if f.tell() < 2 * len(MAGIC):
                    return True
                f.seek(-len(MAGIC), os.SEEK_END)
                return f.read(len(MAGIC)) != MAGIC
        except OSError:
            return False
    if path.suffix == ".db3":
        if any(Path(f"{path}{s}").exists() for s in SQLITE_SIDECARS[:2]):
            return True  # a hot journal or WAL: SQLite must recover it first
        return not (path.parent / BAG_METADATA).is_file() and not _sqlite_closed(path)
    return False


def _sqlite_closed(path: Path) -> bool:
    """Whether the writer closed the database (rosbag2 and rosbags write its metadata row on
    close); unreadable: not ours to judge here (the reader reports it)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            return "metadata" not in tables or bool(
                con.execute("SELECT count(*) FROM metadata").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return True


def _in_unfinished_folder(path: Path) -> bool:
    """A storage file named after its folder (rosbags: <bag>.mcap, rosbag2: <bag>_0.mcap) in a
    folder without metadata.yaml: the recorder never finished it."""
    folder = path.parent
    return path.stem.startswith(folder.name) and not (folder / BAG_METADATA).exists()


def bag_of(path: Path) -> Path:
    """The bag to name to the user for a storage file: its folder if the recorder made one."""
    return path.parent if path.is_file() and _in_unfinished_folder(path) else path


def _storage_file(path: Path) -> Path:
    if path.is_file():
        if path.suffix not in (".mcap", ".db3"):
            raise BagError(f"{path}: not a rosbag2 storage file; expected a .mcap or .db3 file "
                           "or a bag folder")
        return path
    if not path.is_dir():
        raise BagError(f"{path}: no such bag, file or folder")
    files = sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3") and p.is_file())
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise BagError(f"{path}: expected exactly one .mcap or .db3 file in the bag folder, found "
                       f"{found}")
    return files[0]


# ---- sqlite3 -------------------------------------------------------------------------------------
def _sqlite_events(path: Path, salvage: Salvage) -> Iterator[tuple[str, Any]]:
    """The committed content of a sqlite3 bag, read from a copy that SQLite has recovered
    (hot journal rolled back, WAL checkpointed)."""
    with tempfile.TemporaryDirectory(prefix="actjepa-recover-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        for suffix in SQLITE_SIDECARS[:2]:
            side = Path(f"{path}{suffix}")
            if side.exists():
                shutil.copyfile(side, f"{copy}{suffix}")
        try:
            con = sqlite3.connect(copy)
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                has_row = bool(con.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name='metadata'").fetchone()[0]
                    and con.execute("SELECT count(*) FROM metadata").fetchone()[0])
                salvage.complete = not is_unfinished(path) and (
                    has_row or (path.parent / BAG_METADATA).is_file())
            finally:
                con.close()
            with Reader(copy) as reader:
                ids = {}
                for conn in reader.connections:
                    ids[(conn.topic, conn.msgtype)] = conn.id
                    yield "channel", (conn.id, RawChannel(
                        conn.topic, conn.msgtype, conn.msgdef,
                        conn.ext.serialization_format, list(conn.ext.offered_qos_profiles)))
                for conn, stamp, raw in reader.messages():
                    yield "message", (ids[(conn.topic, conn.msgtype)], stamp, raw)
        except Exception as err:  # noqa: BLE001 - apsw, sqlite3 and rosbags errors
            if isinstance(err, BagError):
                raise
            raise BagError(f"{path}: the sqlite3 database cannot be recovered: "
                           f"{describe(err)}") from None


# ---- writing the recovered bag ------------------------------------------------------------------
def _rihs01(channel: RawChannel) -> str:
    """The type hash for metadata.yaml, from the definition (unknown when it does not parse)."""
    try:
        store = get_typestore(Stores.EMPTY)
        store.register(parse_definition(channel.definition, channel.msgtype))
        return store.hash_rihs01(channel.msgtype)
    except Exception:  # noqa: BLE001 - an unparsable definition is kept as it is
        return UNKNOWN_HASH


def scan(source: Path) -> Salvage:
    """What ``source`` (an MCAP or sqlite3 file) holds, read as a recovery would, writing
    nothing."""
    storage = "mcap" if source.suffix == ".mcap" else "sqlite3"
    salvage = Salvage(str(source), storage)
    events = mcap_events if storage == "mcap" else _sqlite_events
    topics: dict[int, str] = {}
    for kind, item in events(source, salvage):
        if kind == "channel":
            topics.setdefault(item[0], item[1].topic)
        elif item[0] in topics:
            salvage.topics[topics[item[0]]] += 1
        else:
            salvage.lost_messages += 1
    return salvage


def write_salvage(source: Path, out: Path) -> Salvage:
    """Read what ``source`` (an MCAP or sqlite3 file) holds and write it as the complete bag
    ``out`` (a new folder) with the same storage."""
    storage = "mcap" if source.suffix == ".mcap" else "sqlite3"
    salvage = Salvage(str(source), storage)
    events = mcap_events if storage == "mcap" else _sqlite_events
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = FlushingWriter(out, version=BAG_VERSION, storage_plugin=plugin)
    writer.open()
    writer.storage.fsync = False  # the caller syncs the finished files
    try:
        connections: dict[int, Any] = {}
        for kind, item in events(source, salvage):
            if kind == "channel":
                cid, channel = item
                if cid in connections:
                    continue
                definition = channel.definition
                if definition.format == MessageDefinitionFormat.NONE or not definition.data:
                    text = _distro_definition(channel.msgtype)
                else:
                    text = definition.data
                if text is None:
                    connections[cid] = None
                    continue
                connections[cid] = (channel.topic, writer.add_connection(
                    channel.topic, channel.msgtype, msgdef=text, rihs01=_rihs01(channel),
                    serialization_format=channel.encoding or "cdr",
                    offered_qos_profiles=channel.qos))
            else:
                cid, stamp, raw = item
                target = connections.get(cid)
                if target is None:
                    salvage.lost_messages += 1
                    continue
                writer.write(target[1], stamp, raw)
                salvage.topics[target[0]] += 1
        writer.close()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.abort()
        shutil.rmtree(out, ignore_errors=True)
        raise
    return salvage


def _distro_definition(msgtype: str) -> str | None:
    """A definition for a type the source did not embed (Humble sqlite3), from rosbags' store."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    if msgtype not in store.fielddefs:
        return None
    return store.generate_msgdef(msgtype, ros_version=2)[0]


@contextlib.contextmanager
def recovered_copy(path: Path) -> Iterator[tuple[Path, Salvage]]:
    """A complete bag with what ``path`` holds, in a temporary folder (convert reads it)."""
    source = _storage_file(path)
    with tempfile.TemporaryDirectory(prefix="actjepa-recover-") as tmp:
        out = Path(tmp) / bag_of(path).name
        try:
            salvage = write_salvage(source, out)
        except BagError:
            raise
        except Exception as err:  # noqa: BLE001 - a full temporary disk, a rosbags error
            raise BagError(f"{path}: unfinished bag that cannot be recovered: "
                           f"{describe(err)}") from None
        yield out, salvage


def recover_bag(path: Path) -> tuple[Salvage, Path | None]:
    """Make ``path`` (a bag folder or storage file) a complete bag with everything readable in
    it; returns what was recovered and where the original now is (None: nothing to do)."""
    path = Path(path)
    source = _storage_file(path)
    folder_bag = path.is_dir() or _in_unfinished_folder(path)
    bag = path if path.is_dir() else (path.parent if folder_bag else path)
    if not is_unfinished(source) and not (folder_bag and is_unfinished(bag)):
        salvage = scan(source)  # a finished bag: rewrite it only if a chunk is corrupt
        if not salvage.needed:
            return salvage, None
    staging_root = bag.parent / f".{bag.name}.recovering"
    shutil.rmtree(staging_root, ignore_errors=True)
    staging_root.mkdir()
    try:
        staged = staging_root / (bag.name if folder_bag else source.stem)
        salvage = write_salvage(source, staged)
        kept = bag.parent / f".{bag.name}{UNFINISHED_SUFFIX}"
        if kept.exists():
            kept = Path(tempfile.mkdtemp(prefix=f".{bag.name}{UNFINISHED_SUFFIX}.",
                                         dir=bag.parent))
            kept.rmdir()
        _fsync_tree(staged)
        if folder_bag:
            os.rename(bag, kept)
            os.rename(staged, bag)
        else:
            new = next(staged.glob(f"*{source.suffix}"))  # (staged is named after the file)
            os.replace(new, staging_root / source.name)
            os.rename(source, kept)
            os.rename(staging_root / source.name, source)
        return salvage, kept
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for item in folder.iterdir():
        with item.open("rb") as f:
            os.fsync(f.fileno())


def recover_paths(paths: list[str]) -> tuple[list[str], int, int]:
    """`actjepa recover`: every bag under ``paths`` made complete where it needs it; returns
    one line per bag, and how many were recovered and how many could not be."""
    from actjepa_core.bags.reader import find_bags

    lines, recovered, failed = [], 0, 0
    for found in find_bags(paths):
        bag = bag_of(found)
        try:
            salvage, kept = recover_bag(bag)
        except BagError as err:
            lines.append(f"{bag}: not recovered: {str(err).removeprefix(f'{bag}: ')}")
            failed += 1
            continue
        except OSError as err:
            lines.append(f"{bag}: not recovered: {describe(err)}")
            failed += 1
            continue
        if kept is None:
            lines.append(f"{bag}: complete, nothing to recover ({salvage.messages} messages)")
            continue
        recovered += 1
        lines.append(f"{bag}: {salvage.describe()}; the original is kept as {kept}")
    return lines, recovered, failed
