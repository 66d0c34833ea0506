"""Episodes file -> a LeRobotDataset v3.0 folder, as LeRobot's ``LeRobotDataset`` and our own
``actjepa import lerobot`` read it (local files; ``lerobot`` itself is not a dependency).

Layout written (one chunk, one file per table; LeRobot's names and path templates)::

    meta/info.json                    codebase_version v3.0, fps, features, path templates
    meta/tasks.parquet                task_index, indexed by the task text (pandas metadata)
    meta/stats.json                   mean/std/min/max/count per feature
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, tasks, where its
                                      frames (dataset_from/to_index) and video segment lie
    data/chunk-000/file-000.parquet   one row per frame
    videos/observation.images.<name>/chunk-000/file-000.mp4   every episode back to back

Mapping (what ``actjepa import lerobot`` maps back): the vector observations, in the file's key
order, are concatenated into ``observation.state`` (float32; ``names`` say which key each
column came from), because LeRobot's policies read one state vector; each camera (uint8
(T, H, W, 3)) becomes ``observation.images.<name>``, ``<name>`` being the key without its
``image_`` prefix (``image`` stays ``image``), so a reimport gives ``image`` / ``image_<name>``
back; the actions become ``action``; a known success becomes ``next.success`` (True on an
episode's last frame). Videos are H.264 in RGB (libx264rgb, qp 0): lossless, and decoded by
PyAV (LeRobot's ``video_backend="pyav"``); ``--no-video`` stores PNG bytes instead.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from actjepa_core.data.episodes import EpisodeSet, is_image_array, read_episodes
from actjepa_core.errors import ActJepaError

VERSION = "v3.0"
CHUNKS_SIZE = 1000  # LeRobot's files per chunk folder
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
STATE, ACTION, SUCCESS = "observation.state", "action", "next.success"
IMAGES = "observation.images."
CODEC, PIX_FMT = "libx264rgb", "rgb24"  # H.264, RGB planes: no colour conversion, qp 0 lossless
CODEC_OPTIONS = {"qp": "0", "preset": "veryfast", "g": "10"}  # a keyframe every 10 frames: seeks
DEFAULT_FPS = 80.0  # the simulator's control rate and `actjepa convert`'s default rate_hz
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


@dataclass
class ExportOptions:
    """The CLI's flags: ``fps`` the episodes' control rate (the file does not record it);
    ``video`` cameras as mp4 (else PNG bytes in the parquet); ``task`` the task text (default:
    the episodes file's source line)."""

    fps: float = DEFAULT_FPS
    video: bool = True
    task: str | None = None

    def __post_init__(self) -> None:
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise ActJepaError(f"--fps is {self.fps}; expected a positive number of frames per "
                               "second")
        if self.task is not None and not self.task.strip():
            raise ActJepaError("--task is empty; expected the task's text")


@dataclass
class ExportResult:
    episodes: int
    frames: int
    features: dict[str, list[int]]
    out: str
    cameras: str

    def summary(self, origin: str) -> str:
        feats = ", ".join(f"{k} {v}" for k, v in self.features.items())
        return (f"exported {self.episodes} episodes ({self.frames} frames; {feats}; cameras as "
                f"{self.cameras}) from {origin} to {self.out} (LeRobot {VERSION})")


@dataclass
class _Layout:
    """Which episodes-file keys become which LeRobot features."""

    vectors: list[str] = field(default_factory=list)
    cameras: dict[str, str] = field(default_factory=dict)  # our key -> LeRobot feature
    state_names: list[str] = field(default_factory=list)


def export_lerobot(episodes_path: str, out: str, options: ExportOptions) -> ExportResult:
    """Read ``episodes_path`` whole, then write the LeRobot folder ``out`` atomically."""
    final = Path(out)
    if final.exists():
        raise ActJepaError(f"{final}: already exists; expected a new folder for the dataset")
    data = read_episodes(episodes_path)
    layout = _plan(data)
    task = options.task or data.source or Path(episodes_path).stem
    with _atomic_dir(final) as root:
        columns, ends = _frames(data, layout, options)
        if options.video:
            for key, feature in layout.cameras.items():
                _write_video(root / VIDEO_PATH.format(video_key=feature, chunk_index=0,
                                                      file_index=0),
                             [ep.obs[key] for ep in data.episodes], options.fps)
        else:
            for key, feature in layout.cameras.items():
                columns[feature] = _png_cells(data, key)
        _write_parquet(root / DATA_PATH.format(chunk_index=0, file_index=0), columns)
        _write_tasks(root / "meta/tasks.parquet", task)
        _write_episodes_table(root / EPISODES_PATH, ends, layout, task, options)
        features = _features(data, layout, options, SUCCESS in columns)
        _write_json(root / "meta/info.json", _info(features, ends, options))
        _write_json(root / "meta/stats.json", _stats(columns, data, layout))
    shapes = {k: list(ft["shape"]) for k, ft in features.items() if k not in INDEX_COLUMNS}
    return ExportResult(len(data.episodes), int(ends[-1]), shapes, str(final),
                        f"{CODEC} mp4 (lossless)" if options.video else "PNG images")


# ---- planning -------------------------------------------------------------------------------
def _plan(data: EpisodeSet) -> _Layout:
    layout = _Layout()
    first = data.episodes[0]
    for key in data.obs_keys:
        arr = np.asarray(first.obs[key])
        if is_image_array(arr):
            if arr.ndim != 4 or arr.shape[-1] != 3:
                raise ActJepaError(f"{data.path}: obs '{key}' has frames of shape "
                                   f"{arr.shape[1:]}; expected RGB (H, W, 3) for a LeRobot camera")
            name = key[len("image_"):] if key.startswith("image_") else key
            layout.cameras[key] = IMAGES + name
        else:
            width = int(np.prod(arr.shape[1:]))
            layout.vectors.append(key)
            layout.state_names += [key] if width == 1 else [f"{key}.{i}" for i in range(width)]
    return layout


def _state(obs: dict[str, np.ndarray], layout: _Layout) -> np.ndarray:
    steps = len(obs[layout.vectors[0]])
    return np.concatenate([np.asarray(obs[k]).reshape(steps, -1) for k in layout.vectors],
                          axis=1).astype(np.float32)


# ---- frames ---------------------------------------------------------------------------------
def _frames(data: EpisodeSet, layout: _Layout, options: ExportOptions
            ) -> tuple[dict[str, Any], np.ndarray]:
    """The data table's columns (numpy arrays) and each episode's end index."""
    lengths = np.array([ep.num_steps for ep in data.episodes], np.int64)
    ends = np.cumsum(lengths)
    frame_index = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
    columns: dict[str, Any] = {}
    if layout.vectors:
        columns[STATE] = np.concatenate([_state(ep.obs, layout) for ep in data.episodes])
    columns[ACTION] = np.concatenate([np.asarray(ep.actions, np.float32)
                                      for ep in data.episodes])
    if all(ep.success is not None for ep in data.episodes):
        columns[SUCCESS] = np.concatenate([
            (np.arange(ep.num_steps) == ep.num_steps - 1) & bool(ep.success)
            for ep in data.episodes])
    columns["timestamp"] = (frame_index / options.fps).astype(np.float32)
    columns["frame_index"] = frame_index
    columns["episode_index"] = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    columns["index"] = np.arange(int(ends[-1]), dtype=np.int64)
    columns["task_index"] = np.zeros(int(ends[-1]), np.int64)
    return columns, ends


def _png_cells(data: EpisodeSet, key: str) -> list[dict[str, Any]]:
    cells = []
    for e, ep in enumerate(data.episodes):
        for i, frame in enumerate(np.asarray(ep.obs[key])):
            ok, png = cv2.imencode(".png", np.ascontiguousarray(frame[:, :, ::-1]))
            if not ok:
                raise ActJepaError(f"{data.path}: episode {e} obs '{key}' frame {i} could not "
                                   "be PNG-encoded")
            cells.append({"bytes": png.tobytes(), "path": f"episode_{e:06d}_frame_{i:06d}.png"})
    return cells


def _write_video(path: Path, episodes: list[np.ndarray], fps: float) -> None:
    """All episodes' frames back to back, frame n at n / fps seconds (pts = n, time base
    1/fps), so episode e starts at its from_timestamp exactly."""
    import av  # the `data` extra

    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1_000_000)
    height, width = episodes[0].shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=rate, options=dict(CODEC_OPTIONS))
        stream.width, stream.height, stream.pix_fmt = width, height, PIX_FMT
        stream.codec_context.time_base = 1 / rate
        n = 0
        for frames in episodes:
            for frame in np.asarray(frames):
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                picture.pts, picture.time_base = n, 1 / rate
                container.mux(stream.encode(picture))
                n += 1
        container.mux(stream.encode())


# ---- tables ---------------------------------------------------------------------------------
def _arrow(values: Any) -> Any:
    """A numpy column -> pyarrow: (N, K) as fixed-size lists (datasets' Sequence(length=K))."""
    import pyarrow as pa

    if isinstance(values, list):
        return pa.array(values, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    if values.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    return pa.array(values)


def _write_parquet(path: Path, columns: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: _arrow(v) for k, v in columns.items()}), path)


def _write_tasks(path: Path, task: str) -> None:
    """LeRobot reads tasks with pandas (``pd.read_parquet``) and looks a task up by the index:
    the task text is the index column, declared in the pandas schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"task_index": pa.array([0], pa.int64()), "task": pa.array([task])})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode",
                     "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0"}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)


def _write_episodes_table(path: Path, ends: np.ndarray, layout: _Layout, task: str,
                          options: ExportOptions) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    starts = np.r_[0, ends[:-1]]
    rows = []
    for e, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
        row = {"episode_index": e, "tasks": [task], "length": end - start,
               "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": start, "dataset_to_index": end}
        for feature in layout.cameras.values() if options.video else ():
            row.update({f"videos/{feature}/chunk_index": 0, f"videos/{feature}/file_index": 0,
                        f"videos/{feature}/from_timestamp": start / options.fps,
                        f"videos/{feature}/to_timestamp": end / options.fps})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


# ---- metadata -------------------------------------------------------------------------------
def _features(data: EpisodeSet, layout: _Layout, options: ExportOptions, success: bool
              ) -> dict[str, dict]:
    features: dict[str, dict] = {}
    if layout.vectors:
        features[STATE] = {"dtype": "float32", "shape": [len(layout.state_names)],
                           "names": layout.state_names}
    for key, feature in layout.cameras.items():
        h, w = np.asarray(data.episodes[0].obs[key]).shape[1:3]
        features[feature] = {"dtype": "video" if options.video else "image",
                             "shape": [int(h), int(w), 3],
                             "names": ["height", "width", "channels"]}
        if options.video:
            features[feature]["info"] = {
                "video.height": int(h), "video.width": int(w), "video.codec": "h264",
                "video.pix_fmt": "gbrp", "video.is_depth_map": False,
                "video.fps": _fps_value(options.fps), "video.channels": 3, "has_audio": False}
    features[ACTION] = {"dtype": "float32", "shape": [data.action_dim],
                        "names": [f"action.{i}" for i in range(data.action_dim)]}
    if success:
        features[SUCCESS] = {"dtype": "bool", "shape": [1], "names": None}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for name in INDEX_COLUMNS[1:]:
        features[name] = {"dtype": "int64", "shape": [1], "names": None}
    return features


def _fps_value(fps: float) -> int | float:
    return int(fps) if float(fps).is_integer() else float(fps)


def _info(features: dict[str, dict], ends: np.ndarray, options: ExportOptions) -> dict:
    episodes = len(ends)
    return {
        "codebase_version": VERSION, "robot_type": None, "total_episodes": episodes,
        "total_frames": int(ends[-1]), "total_tasks": 1, "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
        "fps": _fps_value(options.fps), "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH, "video_path": VIDEO_PATH if options.video else None,
        "features": features}


def _stats(columns: dict[str, Any], data: EpisodeSet, layout: _Layout) -> dict[str, dict]:
    """LeRobot's stats: per vector feature over all frames; per camera per channel, in [0, 1]
    and shaped (3, 1, 1), as its normalisation expects."""
    stats = {}
    for name, values in columns.items():
        if isinstance(values, list):
            continue
        arr = np.asarray(values, np.float64).reshape(len(values), -1)
        stats[name] = {"mean": arr.mean(0).tolist(), "std": arr.std(0).tolist(),
                       "min": arr.min(0).tolist(), "max": arr.max(0).tolist(),
                       "count": [len(arr)]}
    for key, feature in layout.cameras.items():
        pixels = np.concatenate([np.asarray(ep.obs[key]).reshape(-1, 3)
                                 for ep in data.episodes]).astype(np.float64) / 255.0
        stats[feature] = {stat: [[[float(v)]] for v in fn(pixels, axis=0)] for stat, fn in
                          (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))}
        stats[feature]["count"] = [int(sum(ep.num_steps for ep in data.episodes))]
    return stats


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4) + "\n")


@contextmanager
def _atomic_dir(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final``, renamed onto it only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
