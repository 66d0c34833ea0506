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
"""
from __future__ import annotations

import datetime as _dt
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
        arr = np.asarray(ep.obs[key])
        if arr.shape[0] != actions.shape[0]:
            raise ActJepaError(f"{where}/obs/{key} has {arr.shape[0]} rows but actions has "
                               f"{actions.shape[0]}; expected one observation per action")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ActJepaError(f"{where}/obs/{key} contains NaN or Inf; expected finite values")


def write_episodes(path: str | Path, episodes: Iterable[Episode], source: str,
                   obs_keys: Sequence[str] | None = None) -> int:
    """Validate and write ``episodes`` atomically; returns the number written."""
    episodes = list(episodes)
    if not episodes:
        raise ActJepaError(f"{path}: no episodes to write")
    keys = list(obs_keys) if obs_keys is not None else sorted(episodes[0].obs)
    action_dim = int(np.asarray(episodes[0].actions).shape[1])
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            data.attrs.update(obs_keys=keys, action_dim=action_dim, source=source,
                              created=_dt.datetime.now(_dt.timezone.utc).isoformat(),
                              version=FORMAT_VERSION)
            for i, ep in enumerate(episodes):
                validate_episode(ep, f"episode {i}", keys, action_dim)
                demo = data.create_group(f"demo_{i}")
                for key in keys:
                    arr = np.asarray(ep.obs[key])
                    demo.create_dataset(f"obs/{key}", data=arr,
                                        compression="gzip" if arr.dtype == np.uint8 else None)
                demo.create_dataset("actions", data=np.asarray(ep.actions, dtype=np.float32))
                demo.attrs["num_samples"] = ep.num_steps
                if ep.success is not None:
                    demo.attrs["success"] = bool(ep.success)
                for k, v in ep.attrs.items():
                    demo.attrs[k] = v
    return len(episodes)


def read_episodes(path: str | Path, obs_keys: Sequence[str] | None = None) -> EpisodeSet:
    """Read and validate an episodes file. Every problem is one ActJepaError naming file and key."""
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
        episodes = [_read_demo(data[name], f"{path}:/data/{name}", keys, action_dim)
                    for name in names]
        return EpisodeSet(episodes, keys, action_dim, str(data.attrs.get("source", "")), str(path))


def _read_demo(group: h5py.Group, where: str, keys: Sequence[str], action_dim: int) -> Episode:
    if "actions" not in group:
        raise ActJepaError(f"{where} has no 'actions' dataset")
    if "obs" not in group:
        raise ActJepaError(f"{where} has no 'obs' group")
    obs = {k: group["obs"][k][()] for k in keys if k in group["obs"]}
    success = group.attrs.get("success")
    ep = Episode(obs=obs, actions=group["actions"][()].astype(np.float32),
                 success=None if success is None else bool(success))
    validate_episode(ep, where, keys, action_dim)
    return ep
