"""The episodes file (HDF5, robomimic-style): the one format every producer writes and training
reads.

```
/data                     attrs: obs_keys, action_dim, source, created, version
/data/demo_<i>/obs/<key>  [T, ...]  observation at each control tick
/data/demo_<i>/actions    [T, A]    action applied at that tick
/data/demo_<i>            attrs: num_samples, success (if known)
```
Writers (`actjepa collect`, `actjepa convert`) go through `write_episodes`; readers through
`read_episodes`, which validates everything once so later code can trust the arrays.

Images (uint8 ``[T, H, W, C]``) are written in chunks of a few whole frames, gzip-compressed with a
Fletcher-32 checksum per chunk, so a reader can fetch any run of steps by decompressing only the
chunks it spans (the streaming loader, data/streaming.py) and a damaged chunk is detected and
named instead of decoding to garbage. ``read_episodes(..., stream_keys=[...])`` leaves those keys
on disk as ``LazyFrames``: metadata only, rows read on demand.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from actjepa_core.atomic import atomic_path
from actjepa_core.errors import ActJepaError

FORMAT_VERSION = 1
MIN_STEPS = 2  # one transition needs two observations
_DEMO_NAME = re.compile(r"^demo_(\d+)$")
IMAGE_CHUNK_BYTES = 512 * 1024  # target size of one image chunk (before compression)
IMAGE_CHUNK_ROWS = 16  # at most this many frames per chunk (64x64x3: 16 frames = 192 KiB)
GZIP_LEVEL = 4
CHUNK_CACHE_BYTES = 8 * 1024 * 1024  # HDF5 chunk cache per open dataset in a reading process


def image_chunk_rows(shape: Sequence[int]) -> int:
    """Frames per HDF5 chunk for a (T, ...) uint8 image dataset: whole frames, ~512 KiB."""
    frame = int(np.prod(shape[1:]))
    return max(1, min(IMAGE_CHUNK_ROWS, int(shape[0]), IMAGE_CHUNK_BYTES // max(frame, 1)))


def is_image_array(arr) -> bool:
    """uint8 arrays with per-step shape (H, W, C) or (H, W): stored chunked by frame."""
    return np.dtype(arr.dtype) == np.uint8 and len(arr.shape) >= 3


class LazyFrames:
    """Rows of one (T, ...) HDF5 dataset, read on demand (``read(start, stop)``), through one file
    handle per process: a DataLoader worker opens its own on first use, never the parent's.

    Holds only metadata, so an episodes file larger than memory opens instantly; ``np.asarray``
    reads the whole dataset (one demo's images), which is what in-memory code expects.
    """

    def __init__(self, path: str, name: str, shape: tuple[int, ...], dtype: np.dtype,
                 chunk_rows: int, where: str):
        self.path, self.name, self.where = path, name, where
        self.shape, self.dtype, self.chunk_rows = tuple(shape), np.dtype(dtype), chunk_rows

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop); a damaged chunk is an ActJepaError naming demo, key and rows."""
        try:
            return open_h5(self.path)[self.name][start:stop]
        except (OSError, RuntimeError, KeyError) as err:
            raise ActJepaError(f"{self.where}: rows {start}-{stop - 1} unreadable (a corrupt or "
                               f"truncated chunk: {first_line(err)})") from None

    def __array__(self, dtype=None, copy=None):
        arr = self.read(0, self.shape[0])
        return arr if dtype is None else arr.astype(dtype)

    def __getitem__(self, index):
        if isinstance(index, slice) and index.step in (None, 1):
            start, stop, _ = index.indices(self.shape[0])
            return self.read(start, max(start, stop))
        return np.asarray(self)[index]

    def __getstate__(self) -> dict:  # pickles to workers as metadata only
        return dict(self.__dict__)


_HANDLES: dict[tuple[int, str], h5py.File] = {}


def open_h5(path: str) -> h5py.File:
    """This process's read-only handle on ``path`` (opened on first use, kept open). Keyed by
    process id: a forked worker never reuses its parent's HDF5 handle."""
    key = (os.getpid(), str(path))
    handle = _HANDLES.get(key)
    if handle is None or not handle.id.valid:
        handle = _HANDLES[key] = h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
    return handle


def first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


@dataclass
class Episode:
    """One demonstration: ``obs[key]`` is ``(T, ...)``, ``actions`` is ``(T, A)``."""

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    success: bool | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])


@dataclass
class EpisodeSet:
    episodes: list[Episode]
    obs_keys: list[str]
    action_dim: int
    source: str
    path: str = ""

    def obs_spec(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Per-key (shape of one observation, dtype name), as stored in checkpoints."""
        first = self.episodes[0]
        return {k: (tuple(first.obs[k].shape[1:]), str(first.obs[k].dtype)) for k in self.obs_keys}


def validate_episode(ep: Episode, where: str, obs_keys: Sequence[str], action_dim: int) -> None:
    """Raise ActJepaError naming ``where`` if the episode breaks the format's rules."""
    actions = np.asarray(ep.actions)
    if actions.ndim != 2 or actions.shape[1] != action_dim:
        raise ActJepaError(f"{where}/actions has shape {actions.shape}; expected (T, {action_dim})")
    if actions.shape[0] < MIN_STEPS:
        raise ActJepaError(f"{where} has {actions.shape[0]} step(s); expected at least {MIN_STEPS} "
                           "to form one transition")
    if not np.isfinite(actions).all():
        raise ActJepaError(f"{where}/actions contains NaN or Inf; expected finite values")
    missing = [k for k in obs_keys if k not in ep.obs]
    if missing:
        raise ActJepaError(f"{where}/obs is missing key(s) {missing}; expected {list(obs_keys)}")
    for key in obs_keys:
        arr = ep.obs[key]
        if not isinstance(arr, LazyFrames):  # lazy frames are uint8: shape is all to check
            arr = np.asarray(arr)
        if arr.shape[0] != actions.shape[0]:
            raise ActJepaError(f"{where}/obs/{key} has {arr.shape[0]} rows but actions has "
                               f"{actions.shape[0]}; expected one observation per action")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ActJepaError(f"{where}/obs/{key} contains NaN or Inf; expected finite values")


def write_episodes(path: str | Path, episodes: Iterable[Episode], source: str,
                   obs_keys: Sequence[str] | None = None) -> int:
    """Validate and write ``episodes`` atomically, one at a time (an iterator of episodes is
    never held in memory at once); returns the number written."""
    episodes = iter(episodes)
    first = next(episodes, None)
    if first is None:
        raise ActJepaError(f"{path}: no episodes to write")
    keys = list(obs_keys) if obs_keys is not None else sorted(first.obs)
    action_dim = int(np.asarray(first.actions).shape[1])
    count = 0
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            data.attrs.update(obs_keys=keys, action_dim=action_dim, source=source,
                              created=_dt.datetime.now(_dt.timezone.utc).isoformat(),
                              version=FORMAT_VERSION)
            for i, ep in enumerate(_chain(first, episodes)):
                validate_episode(ep, f"episode {i}", keys, action_dim)
                demo = data.create_group(f"demo_{i}")
                for key in keys:
                    write_obs(demo, key, ep.obs[key])
                demo.create_dataset("actions", data=np.asarray(ep.actions, dtype=np.float32))
                demo.attrs["num_samples"] = ep.num_steps
                if ep.success is not None:
                    demo.attrs["success"] = bool(ep.success)
                for k, v in ep.attrs.items():
                    demo.attrs[k] = v
                count += 1
    return count


def _chain(first: Episode, rest: Iterable[Episode]):
    yield first
    yield from rest


def write_obs(demo: h5py.Group, key: str, values: "np.ndarray | LazyFrames") -> None:
    """Images: chunks of whole frames, gzip + Fletcher-32; other uint8: gzip; floats: plain.
    ``LazyFrames`` (frames left on disk, or spilled from a bag) are copied a chunk of frames at a
    time, so writing a long recording needs the memory of one chunk."""
    if isinstance(values, LazyFrames):
        _write_frames(demo, key, values)
        return
    arr = np.asarray(values)
    if is_image_array(arr):
        demo.create_dataset(f"obs/{key}", data=arr, chunks=(image_chunk_rows(arr.shape),
                                                            *arr.shape[1:]),
                            compression="gzip", compression_opts=GZIP_LEVEL, fletcher32=True)
    else:
        demo.create_dataset(f"obs/{key}", data=arr,
                            compression="gzip" if arr.dtype == np.uint8 else None)


def _write_frames(demo: h5py.Group, key: str, frames: LazyFrames) -> None:
    """The layout ``write_obs`` gives an image array, filled one chunk of frames at a time."""
    rows = image_chunk_rows(frames.shape)
    dataset = demo.create_dataset(f"obs/{key}", shape=frames.shape, dtype=frames.dtype,
                                  chunks=(rows, *frames.shape[1:]), compression="gzip",
                                  compression_opts=GZIP_LEVEL, fletcher32=True)
    for start in range(0, len(frames), rows):
        stop = min(len(frames), start + rows)
        dataset[start:stop] = frames.read(start, stop)


def read_episodes(path: str | Path, obs_keys: Sequence[str] | None = None,
                  stream_keys: Sequence[str] = ()) -> EpisodeSet:
    """Read and validate an episodes file. Every problem is one ActJepaError naming file and key.

    Image keys in ``stream_keys`` are not read: they become ``LazyFrames`` (data/streaming.py
    reads them chunk by chunk while training)."""
    path = Path(path)
    if not path.is_file():
        raise ActJepaError(f"{path}: episodes file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ActJepaError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        if "data" not in f:
            raise ActJepaError(f"{path}: no /data group; expected an episodes file "
                               "(see `actjepa collect` / `actjepa convert`)")
        data = f["data"]
        for attr in ("obs_keys", "action_dim"):
            if attr not in data.attrs:
                raise ActJepaError(f"{path}: /data is missing attribute '{attr}'")
        version = int(data.attrs.get("version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise ActJepaError(f"{path}: episodes format version {version}; this actjepa reads "
                               f"up to {FORMAT_VERSION}")
        file_keys = [str(k) for k in np.atleast_1d(data.attrs["obs_keys"])]
        keys = list(obs_keys) if obs_keys else file_keys
        unknown = [k for k in keys if k not in file_keys]
        if unknown:
            raise ActJepaError(f"{path}: observation key(s) {unknown} not in the file; it has "
                               f"{file_keys}")
        action_dim = int(data.attrs["action_dim"])
        names = sorted((n for n in data if _DEMO_NAME.match(n)),
                       key=lambda n: int(_DEMO_NAME.match(n).group(1)))
        if not names:
            raise ActJepaError(f"{path}: /data holds no demo_<i> groups")
        episodes = [_read_demo(data[name], f"{path}:/data/{name}", keys, action_dim,
                               set(stream_keys)) for name in names]
        return EpisodeSet(episodes, keys, action_dim, str(data.attrs.get("source", "")), str(path))


def _read_demo(group: h5py.Group, where: str, keys: Sequence[str], action_dim: int,
               stream_keys: set[str]) -> Episode:
    if "actions" not in group:
        raise ActJepaError(f"{where} has no 'actions' dataset")
    if "obs" not in group:
        raise ActJepaError(f"{where} has no 'obs' group")
    obs = {}
    for k in keys:
        if k not in group["obs"]:
            continue
        ds = group["obs"][k]
        if k in stream_keys and is_image_array(ds):
            obs[k] = LazyFrames(os.path.abspath(group.file.filename), ds.name, ds.shape, ds.dtype,
                                ds.chunks[0] if ds.chunks else IMAGE_CHUNK_ROWS, f"{where}/obs/{k}")
        else:
            obs[k] = _read_all(ds, f"{where}/obs/{k}")
    success = group.attrs.get("success")
    actions = _read_all(group["actions"], f"{where}/actions").astype(np.float32)
    ep = Episode(obs=obs, actions=actions,
                 success=None if success is None else bool(success))
    validate_episode(ep, where, keys, action_dim)
    return ep


def _read_all(ds: h5py.Dataset, where: str) -> np.ndarray:
    try:
        return ds[()]
    except (OSError, RuntimeError) as err:
        raise ActJepaError(f"{where}: unreadable (a corrupt or truncated chunk: "
                           f"{first_line(err)})") from None
