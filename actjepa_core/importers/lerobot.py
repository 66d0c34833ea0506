"""LeRobotDataset folders (v2.1 and v3.0) -> episodes, read from local files as published.

Both versions describe themselves in ``meta/info.json``: ``codebase_version``, ``fps``,
``features`` (name -> dtype, shape; dtype ``video`` or ``image`` for cameras), and the path
templates ``data_path`` / ``video_path``. Frames are parquet rows (one column per feature, plus
``episode_index``, ``frame_index``, ``timestamp``, ``index``, ``task_index``).

v2.1 (one file per episode)::

    meta/info.json  meta/episodes.jsonl ({"episode_index", "tasks", "length"} per line)
    data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet
    videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4
                                                  (episode_chunk = episode_index // chunks_size)

v3.0 (many episodes per file, located through the episodes table)::

    meta/info.json  meta/tasks.parquet
    meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet
        episode_index, length, data/chunk_index, data/file_index, dataset_from_index,
        dataset_to_index, videos/{video_key}/chunk_index, .../file_index, .../from_timestamp,
        .../to_timestamp
    data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet
    videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4

A camera frame is the video frame at the row's ``timestamp`` (plus the episode's
``from_timestamp`` in v3), decoded with PyAV; ``image`` features are PNG/JPEG bytes in the
parquet row. ``observation.state`` (and any other vector ``observation.*`` feature, after it)
becomes ``state``; ``action`` the actions; ``next.success``, where recorded, the success flag.
Checked against LeRobot's dataset code and documentation; ``lerobot`` itself is not a
dependency (its torchvision requirement has no CPU wheel here).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from actjepa_core.data.episodes import Episode
from actjepa_core.errors import ActJepaError
from actjepa_core.importers.common import (
    ImportOptions,
    ImportRead,
    KeyPlan,
    check_length,
    fit_frames,
    plan_keys,
    vector_rows,
)
from actjepa_core.importers.video import frames_at

INFO = "meta/info.json"
EPISODES_V2 = "meta/episodes.jsonl"
EPISODES_V3 = "meta/episodes"
CAMERA_DTYPES = ("video", "image")
ACTION = "action"
STATE = "observation.state"
SUCCESS = "next.success"
DEFAULT_CHUNKS_SIZE = 1000  # LeRobot's files per chunk folder
SUPPORTED = ("v2.0", "v2.1", "v3.0")


def read_lerobot(source: str, options: ImportOptions) -> ImportRead:
    root = Path(source)
    if not root.is_dir():
        raise ActJepaError(f"{root}: not a folder; expected a LeRobot dataset folder (with "
                           f"{INFO})")
    info = _info(root)
    version = str(info["codebase_version"])
    major = version.lstrip("v").split(".")[0]
    features: dict[str, dict] = info["features"]
    if ACTION not in features:
        raise ActJepaError(f"{root / INFO}: features have no '{ACTION}'; expected the actions "
                           f"(features: {sorted(features)})")
    vectors = _vector_features(features)
    cameras = [k for k, ft in features.items() if ft.get("dtype") in CAMERA_DTYPES]
    plan = plan_keys(str(root), vectors, cameras, options,
                     {c: c.split(".")[-1] for c in cameras})
    if any(features[c]["dtype"] == "video" for c in plan.cameras) and not info.get("video_path"):
        raise ActJepaError(f"{root / INFO}: video features but no 'video_path' template; "
                           "expected one")
    episodes = _episodes_v2(root, info) if major == "2" else _episodes_v3(root, info)
    if options.max_episodes:
        episodes = episodes[:options.max_episodes]
    reader = _Reader(root, info, plan, options, int(features[ACTION]["shape"][0]))
    out = [reader.episode(meta) for meta in episodes]
    source_line = f"lerobot:{root}:{version}:fps={info['fps']} {plan.describe()}"
    return ImportRead(out, source_line, str(root), plan)


# ---- metadata -------------------------------------------------------------------------------
def _info(root: Path) -> dict[str, Any]:
    path = root / INFO
    if not path.is_file():
        raise ActJepaError(f"{root}: no {INFO}; expected a LeRobot dataset folder (v2.1 or "
                           "v3.0)")
    try:
        info = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ActJepaError(f"{path}: not valid JSON ({err}); expected LeRobot's info.json"
                           ) from None
    if not isinstance(info, dict):
        raise ActJepaError(f"{path}: holds a {type(info).__name__}; expected a JSON object")
    missing = [k for k in ("codebase_version", "fps", "features", "data_path") if k not in info]
    if missing:
        raise ActJepaError(f"{path}: missing {missing}; expected LeRobot's info.json fields")
    if str(info["codebase_version"]) not in SUPPORTED:
        raise ActJepaError(f"{path}: codebase_version {info['codebase_version']!r}; expected "
                           f"one of {list(SUPPORTED)}")
    if not isinstance(info["features"], dict) or not all(
            isinstance(ft, dict) and "dtype" in ft and "shape" in ft
            for ft in info["features"].values()):
        raise ActJepaError(f"{path}: 'features' must map each name to {{dtype, shape, ...}}")
    if not (isinstance(info["fps"], (int, float)) and info["fps"] > 0):
        raise ActJepaError(f"{path}: fps is {info['fps']!r}; expected a positive number")
    return info


def _vector_features(features: dict[str, dict]) -> dict[str, int]:
    """Vector ``observation.*`` features -> width, observation.state first."""
    vectors = {}
    for key, ft in features.items():
        if (key.startswith("observation.") and ft["dtype"] not in CAMERA_DTYPES
                and len(ft["shape"]) == 1):
            vectors[key] = int(ft["shape"][0])
    if STATE in vectors:
        vectors = {STATE: vectors.pop(STATE), **vectors}
    return vectors


def _episodes_v2(root: Path, info: dict) -> list[dict[str, Any]]:
    path = root / EPISODES_V2
    if not path.is_file():
        raise ActJepaError(f"{root}: no {EPISODES_V2}; expected one line per episode in a "
                           f"LeRobot {info['codebase_version']} dataset")
    chunks = int(info.get("chunks_size") or DEFAULT_CHUNKS_SIZE)
    episodes = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            index, length = int(entry["episode_index"]), int(entry["length"])
        except (ValueError, KeyError, TypeError) as err:
            raise ActJepaError(f"{path}:{n}: {err!r}; expected a JSON object with "
                               "episode_index and length") from None
        chunk = index // chunks
        episodes.append({
            "episode_index": index, "length": length,
            "data": info["data_path"].format(episode_chunk=chunk, episode_index=index),
            "video": lambda key, c=chunk, i=index: (
                info["video_path"].format(episode_chunk=c, video_key=key, episode_index=i), 0.0)})
    if not episodes:
        raise ActJepaError(f"{path}: no episodes listed; expected one JSON line per episode")
    return sorted(episodes, key=lambda e: e["episode_index"])


def _episodes_v3(root: Path, info: dict) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    folder = root / EPISODES_V3
    files = sorted(folder.glob("chunk-*/file-*.parquet"))
    if not files:
        raise ActJepaError(f"{root}: no {EPISODES_V3}/chunk-*/file-*.parquet; expected the "
                           "episodes table of a LeRobot v3.0 dataset")
    rows: list[dict[str, Any]] = []
    for path in files:
        rows += _read_parquet(pq, path, "the episodes table").to_pylist()
    needed = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    episodes = []
    for row in rows:
        missing = [k for k in needed if row.get(k) is None]
        if missing:
            raise ActJepaError(f"{folder}: episode row {row.get('episode_index')} lacks "
                               f"{missing}; expected LeRobot v3.0 episode metadata")

        def video(key: str, row: dict = row) -> tuple[str, float]:
            cols = [f"videos/{key}/{k}" for k in ("chunk_index", "file_index", "from_timestamp")]
            if any(row.get(c) is None for c in cols):
                raise ActJepaError(f"{folder}: episode {row['episode_index']} lacks {cols}; "
                                   f"expected where camera {key!r} is stored")
            return (info["video_path"].format(video_key=key, chunk_index=int(row[cols[0]]),
                                              file_index=int(row[cols[1]])),
                    float(row[cols[2]]))

        episodes.append({
            "episode_index": int(row["episode_index"]), "length": int(row["length"]),
            "data": info["data_path"].format(chunk_index=int(row["data/chunk_index"]),
                                             file_index=int(row["data/file_index"])),
            "video": video})
    return sorted(episodes, key=lambda e: e["episode_index"])


def _read_parquet(pq: Any, path: Path, what: str, columns: list[str] | None = None) -> Any:
    if not path.is_file():
        raise ActJepaError(f"{path}: file not found; expected {what}")
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for bad files
        raise ActJepaError(f"{path}: not a readable parquet file ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}); expected {what}"
                           ) from None
    if columns:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ActJepaError(f"{path}: no column(s) {missing}; expected {what} with columns "
                               f"{columns}")
    return table


# ---- frames ---------------------------------------------------------------------------------
class _Reader:
    """Reads episodes, keeping the last data file open (v3 files hold many episodes)."""

    def __init__(self, root: Path, info: dict, plan: KeyPlan, options: ImportOptions,
                 action_dim: int) -> None:
        import pyarrow.parquet as pq

        self.pq, self.root, self.info, self.plan = pq, root, info, plan
        self.options, self.action_dim = options, action_dim
        self.fps = float(info["fps"])
        self.features = info["features"]
        self._table_path: Path | None = None
        self._table: Any = None
        self._episode_column: np.ndarray | None = None

    def _data(self, rel: str) -> tuple[Any, np.ndarray]:
        path = self.root / rel
        if path != self._table_path:
            columns = ["episode_index", ACTION, *(k for k, _ in self.plan.state),
                       *(c for c in self.plan.cameras if self.features[c]["dtype"] == "image")]
            self._table = _read_parquet(self.pq, path, "LeRobot frames", columns)
            self._episode_column = self._table.column("episode_index").to_numpy()
            self._table_path = path
        return self._table, self._episode_column

    def episode(self, meta: dict[str, Any]) -> Episode:
        index = meta["episode_index"]
        path = self.root / meta["data"]
        where = f"{path} (episode {index})"
        table, episode_column = self._data(meta["data"])
        rows = np.flatnonzero(episode_column == index)
        if len(rows) != meta["length"]:
            raise ActJepaError(f"{path}: {len(rows)} rows for episode {index}; expected "
                               f"{meta['length']} (its length in the episode metadata)")
        part = table.take(rows)
        if "frame_index" in part.column_names:
            order = np.argsort(part.column("frame_index").to_numpy(), kind="stable")
            frame_index = part.column("frame_index").to_numpy()[order]
            if not np.array_equal(frame_index, np.arange(len(rows))):
                raise ActJepaError(f"{where}: frame_index is not 0..{len(rows) - 1}; expected "
                                   "every frame of the episode once")
            part = part.take(order)
        steps = len(rows)
        check_length(steps, where)
        actions = vector_rows(_column(part, ACTION, where), f"{where} column '{ACTION}'", steps,
                              self.action_dim)
        obs = {}
        if self.plan.state:
            obs["state"] = np.concatenate([
                vector_rows(_column(part, key, where), f"{where} column '{key}'", steps, width)
                for key, width in self.plan.state], axis=1)
        times = (part.column("timestamp").to_numpy().astype(np.float64)
                 if "timestamp" in part.column_names else np.arange(steps) / self.fps)
        for camera, ours in self.plan.cameras.items():
            if self.features[camera]["dtype"] == "image":
                frames = self._images(part, camera, where)
            else:
                rel, offset = meta["video"](camera)
                frames = frames_at(self.root / rel, offset + times, self.fps,
                                   f"camera {camera!r}, episode {index} ({steps} frames)")
            obs[ours] = fit_frames(frames, self.options.image_size, f"{where} camera {camera}")
        success = None
        if SUCCESS in part.column_names:
            success = bool(np.asarray(part.column(SUCCESS).to_numpy(zero_copy_only=False)).any())
        return Episode(obs=obs, actions=actions, success=success,
                       attrs={"source_episode": index})

    def _images(self, part: Any, camera: str, where: str) -> np.ndarray:
        frames = []
        for i, cell in enumerate(part.column(camera).to_pylist()):
            data = cell.get("bytes") if isinstance(cell, dict) else None
            if not data and isinstance(cell, dict) and cell.get("path"):
                file = self.root / cell["path"]
                data = file.read_bytes() if file.is_file() else None
            image = (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                     if data else None)
            if image is None:
                raise ActJepaError(f"{where}: column '{camera}' row {i} holds no decodable "
                                   "image; expected PNG/JPEG bytes")
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return np.stack(frames)


def _column(part: Any, name: str, where: str) -> np.ndarray:
    """A parquet column as a (rows, K) array: list / fixed-size-list columns flattened."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if name not in part.column_names:
        raise ActJepaError(f"{where}: no column '{name}'; expected it (a feature in info.json)")
    array = part.column(name).combine_chunks()
    if array.null_count:
        raise ActJepaError(f"{where}: column '{name}' has {array.null_count} empty value(s); "
                           "expected one per frame")
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type) \
            or pa.types.is_fixed_size_list(array.type):
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        if len(set(lengths.tolist())) > 1:
            raise ActJepaError(f"{where}: column '{name}' has rows of lengths "
                               f"{sorted(set(lengths.tolist()))}; expected one vector length")
        values = array.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(array), -1)
    return array.to_numpy(zero_copy_only=False)
