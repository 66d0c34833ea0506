"""A growing episodes file: each recorded bag's episodes appended as the bag closes, or the whole
file rebuilt from a folder of bags (what ``recorder_node`` does with ``episodes_file``).

Conversion is exactly ``actjepa convert``'s (``convert_bag`` with the same config); the episodes
of one bag are written with ``write_episodes`` (its checks and layout,
image frames a chunk at a time) and then copied into a copy of the episodes file, which replaces
the file by rename only when complete and on disk. A reader therefore always sees a whole file:
the one before the append or the one after, never a partial one, whatever kills the writer
(SIGINT, SIGKILL, a power cut: the new file is fsynced before the rename and the folder after). A
reader that has the file open (``actjepa train``) keeps reading the version it opened. Appending
never changes an episode already in the file: a later version holds the earlier one's episodes,
unchanged and in the same order, plus the new ones.

The cost is one copy of the file per append (a byte copy in the kernel: well under a second per
GB on local disks). The bag stays the source of truth: ``rebuild`` makes the file again from bags.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import h5py

from actjepa_core.atomic import atomic_path
from actjepa_core.bags.config import ConvertConfig
from actjepa_core.bags.convert import BagReport, convert_bag, convert_bags, write_result
from actjepa_core.data.episodes import Episode, write_episodes
from actjepa_core.errors import ActJepaError

MAX_SOURCE_CHARS = 8000  # /data's source attribute (HDF5 keeps attributes small): else summarised
TMP_SUFFIX = ".tmp"  # atomic_path's temporary names: .<file name>.<random>.tmp
_DEMO_NAME = re.compile(r"^demo_(\d+)$")  # the episodes file's group names


def file_spec(path: str | Path) -> dict[str, Any] | None:
    """What an existing episodes file fixes for new episodes: ``obs_keys``, ``action_dim``,
    ``shapes`` ({key: shape of one row, "action": (A,)}) and ``episodes`` (count); None if there is
    no file. ActJepaError if the file is there but is not an episodes file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ActJepaError(f"{path}: exists but is not a readable HDF5 file ({err}); expected an "
                           "episodes file to append to (move it away, or rebuild with ~/convert)"
                           ) from None
    with f:
        data = f.get("data")
        if not isinstance(data, h5py.Group) or "obs_keys" not in data.attrs \
                or "action_dim" not in data.attrs:
            raise ActJepaError(f"{path}: not an episodes file (no /data with obs_keys and "
                               "action_dim); expected one to append to")
        keys = [str(k) for k in data.attrs["obs_keys"]]
        action_dim = int(data.attrs["action_dim"])
        demos = _demo_names(data)
        shapes: dict[str, tuple[int, ...]] = {}
        if demos:
            first = data[demos[0]]
            shapes = {k: tuple(first["obs"][k].shape[1:]) for k in keys}
            shapes["action"] = (action_dim,)
        return {"obs_keys": keys, "action_dim": action_dim, "shapes": shapes,
                "episodes": len(demos), "source": str(data.attrs.get("source", ""))}


def _demo_names(data: h5py.Group) -> list[str]:
    names = [n for n in data if _DEMO_NAME.match(n)]
    return sorted(names, key=lambda n: int(_DEMO_NAME.match(n).group(1)))


def append_bag(bag: str | Path, config: ConvertConfig, episodes_file: str | Path
               ) -> dict[str, Any]:
    """Convert one bag and append its episodes to ``episodes_file`` (created if missing).

    Returns the outcome as plain data (``describe`` makes it one line): ``added`` episodes,
    ``ticks``, ``dropped`` {reason: ticks}, ``skipped`` (why the bag gave nothing),
    ``skipped_episodes``, ``bad_messages``, ``warnings``, ``episodes`` (now in the file), ``ok``
    (the file holds the bag's episodes, or there were none to add) and ``error`` (the file could
    not be written: it is unchanged). Never raises for a bad bag or file."""
    started = time.monotonic()
    out = Path(episodes_file)
    result: dict[str, Any] = {"kind": "append", "bag": str(bag), "episodes_file": str(out)}
    try:
        spec = file_spec(out)
        obs_keys = list(config.observations)
        if spec is not None and spec["obs_keys"] != obs_keys:
            raise ActJepaError(f"{out} holds observation keys {spec['obs_keys']} but the convert "
                               f"config gives {obs_keys}; expected the same keys (rebuild the "
                               "file with ~/convert, or record into another episodes_file)")
        shapes = dict(spec["shapes"]) if spec else {}
        episodes, report = convert_bag(Path(bag), config, shapes)
        result.update(report_fields(report))
        total = spec["episodes"] if spec else 0
        if episodes:
            total = append_episodes(out, episodes, str(bag), obs_keys)
        result.update(added=len(episodes), episodes=total, ok=True, error="")
    except (ActJepaError, OSError) as err:
        result.update(added=0, ok=False, error=str(err))
        result.setdefault("episodes", None)
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def append_episodes(path: str | Path, episodes: Sequence[Episode], bag: str,
                    obs_keys: Sequence[str]) -> int:
    """Append ``episodes`` (from ``bag``) to the episodes file at ``path`` atomically; returns the
    number of episodes the file now holds."""
    path = Path(path)
    with atomic_path(path) as tmp:
        scratch = tmp.with_name(tmp.name.removesuffix(TMP_SUFFIX) + ".new" + TMP_SUFFIX)
        try:
            if not path.exists():
                write_episodes(scratch, episodes, f"bags: {bag}", obs_keys)
                os.replace(scratch, tmp)
                total = len(episodes)
            else:
                shutil.copyfile(path, tmp)
                write_episodes(scratch, episodes, bag, obs_keys)
                total = _merge(tmp, scratch, bag)
        finally:
            scratch.unlink(missing_ok=True)
        _fsync(tmp)
    _fsync(path.parent)
    return total


def _merge(target: Path, new: Path, bag: str) -> int:
    """Copy the demos of ``new`` after those of ``target`` (both episodes files)."""
    with h5py.File(target, "a") as dst, h5py.File(new, "r") as src:
        data = dst["data"]
        names = _demo_names(data)
        number = int(_DEMO_NAME.match(names[-1]).group(1)) + 1 if names else 0
        added = _demo_names(src["data"])
        for name in added:
            src.copy(src["data"][name], data, name=f"demo_{number}")
            number += 1
        data.attrs["source"] = _source(str(data.attrs.get("source", "")), bag)
        return len(names) + len(added)


def _source(previous: str, bag: str) -> str:
    """/data's source after adding ``bag``: 'bags: a, b, ...', summarised when it grows long."""
    if "bags: " in previous:
        text = f"{previous}, {bag}"
    else:
        text = (f"{previous}; " if previous else "") + f"bags: {bag}"
    if len(text) <= MAX_SOURCE_CHARS:
        return text
    return f"bags: many, the latest {bag} (each demo's 'bag' attribute names its own)"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rebuild(bags: Sequence[str | Path], config: ConvertConfig, episodes_file: str | Path
            ) -> dict[str, Any]:
    """``actjepa convert BAGS --out episodes_file``: the file made anew from ``bags`` (replaced
    atomically; left unchanged when no bag gives an episode). Returns the outcome as plain data:
    per-bag ``bags`` entries (``report_fields``) and the totals."""
    started = time.monotonic()
    out = Path(episodes_file)
    result: dict[str, Any] = {"kind": "rebuild", "episodes_file": str(out),
                              "bag_count": len(bags)}
    try:
        converted = convert_bags(bags, config)
        reports = [report_fields(r) for r in converted.bags]
        result["bags"] = reports
        dropped: Counter = Counter()
        for report in reports:
            dropped.update(report["dropped"])
        result.update(added=len(converted.episodes), episodes=len(converted.episodes),
                      ticks=sum(r["ticks"] for r in reports), dropped=dict(dropped),
                      skipped_bags=sum(bool(r["skipped"]) for r in reports),
                      gave_nothing=sum(not r["episodes_in_bag"] for r in reports),
                      skipped_episodes=sum(len(r["skipped_episodes"]) for r in reports))
        write_result(converted, out)
        _fsync(out.parent)
        result.update(ok=True, error="")
    except (ActJepaError, OSError) as err:
        result.update(ok=False, error=str(err))
        result.setdefault("episodes", None)
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def report_fields(report: BagReport) -> dict[str, Any]:
    """A bag's conversion report as plain data (JSON-ready)."""
    return {"bag": report.path, "episodes_in_bag": report.episodes, "ticks": report.ticks,
            "dropped": dict(report.dropped), "skipped": report.skipped,
            "skipped_episodes": list(report.skipped_episodes),
            "bad_messages": list(report.bad_messages), "warnings": list(report.warnings)}


def describe(result: dict[str, Any]) -> str:
    """One log line for an ``append_bag`` or ``rebuild`` outcome."""
    out = Path(result["episodes_file"]).name
    dropped = result.get("dropped") or {}
    drops = (f"{sum(dropped.values())} dropped ("
             + ", ".join(f"{why}: {n}" for why, n in Counter(dropped).most_common()) + ")"
             if dropped else "0 dropped")
    took = f" in {result.get('seconds', 0):.1f} s"
    if result["kind"] == "rebuild":
        if not result["ok"]:
            return f"rebuild of {out} failed{took}, file unchanged: {result['error']}"
        empty = result.get("gave_nothing", 0)
        return (f"rebuilt {out} from {result['bag_count']} bag(s){took}: {result['episodes']} "
                f"episode(s), {result['ticks']} ticks, {drops}; skipped "
                f"{result['skipped_bags']} bag(s) and {result['skipped_episodes']} episode(s)"
                + (f"; {empty} bag(s) gave no episode" if empty else ""))
    bag = Path(result["bag"]).name
    if not result["ok"]:
        return f"{bag}: not added to {out}{took}, file unchanged: {result['error']}"
    if result.get("skipped"):
        return f"{bag}: nothing added to {out}: skipped: {result['skipped']}"
    line = (f"{bag}: {out} += {result['added']} episode(s) ({result['ticks']} ticks, {drops}), "
            f"{result['episodes']} in the file{took}")
    extra = [*(f"skipped {s}" for s in result.get("skipped_episodes", [])),
             *(f"bad data {b}" for b in result.get("bad_messages", [])),
             *(f"warning {w}" for w in result.get("warnings", []))]
    return line + ("; " + "; ".join(extra) if extra else "")


def stale_temporaries(episodes_file: str | Path) -> list[Path]:
    """Temporary files an append killed part-way left beside ``episodes_file``."""
    path = Path(episodes_file)
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}") if p.is_file())
