"""robomimic HDF5 datasets -> episodes.

The layout (robomimic's "dataset structure" documentation)::

    data                      attrs: total, env_args (JSON: env_name, env_kwargs, ...)
    data/demo_<n>             attrs: num_samples (, model_file)
    data/demo_<n>/actions     (N, A)
    data/demo_<n>/rewards     (N,)        data/demo_<n>/dones  (N,)
    data/demo_<n>/states      (N, S)      simulator states (not observations)
    data/demo_<n>/obs/<key>   (N, ...)    low-dim vectors, or (N, H, W, 3) uint8 camera images
    data/demo_<n>/next_obs/<key>
    mask/<filter>             demo names of a subset (train, valid, 20_percent, ...)

Only demos with an ``obs`` group can be imported: a file of raw simulator ``states`` (what
robomimic's collection scripts write before ``dataset_states_to_obs.py``) is reported as such,
not guessed at. ``dones`` marks task success at the final step; it becomes ``success``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np

from actjepa_core.data.episodes import Episode
from actjepa_core.errors import ActJepaError
from actjepa_core.importers.common import (
    RGB,
    ImportOptions,
    ImportRead,
    check_length,
    fit_frames,
    plan_keys,
    vector_rows,
)

DEMO = re.compile(r"^demo_(\d+)$")
IMAGE_SUFFIX = "_image"  # robomimic's camera keys: agentview_image, robot0_eye_in_hand_image


def read_robomimic(source: str, options: ImportOptions) -> ImportRead:
    path = Path(source)
    if not path.is_file():
        raise ActJepaError(f"{path}: robomimic file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ActJepaError(f"{path}: not a readable HDF5 file ({err}); expected a robomimic "
                           "dataset") from None
    with f:
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise ActJepaError(f"{path}: no /data group; expected a robomimic dataset "
                               "(data/demo_<n>/obs/<key>, actions)")
        data = f["data"]
        names = _demo_names(path, f, data, options.filter)
        if options.max_episodes:
            names = names[:options.max_episodes]
        first = _demo(path, data, names[0])
        vectors, cameras = _observation_kinds(path, names[0], first["obs"])
        plan = plan_keys(str(path), vectors, cameras, options,
                         {c: c.removesuffix(IMAGE_SUFFIX) for c in cameras})
        action_dim = _actions(path, names[0], first).shape[1]
        episodes = [_episode(path, name, _demo(path, data, name), plan, action_dim, options)
                    for name in names]
        env = _env_name(data)
    source_line = (f"robomimic:{path}" + (f":env={env}" if env else "")
                   + (f":filter={options.filter}" if options.filter else "") + " "
                   + plan.describe())
    return ImportRead(episodes, source_line, str(path), plan)


def _demo_names(path: Path, f: h5py.File, data: h5py.Group, filter_key: str | None
                ) -> list[str]:
    names = sorted((n for n in data if DEMO.match(n)), key=lambda n: int(DEMO.match(n)[1]))
    if not names:
        raise ActJepaError(f"{path}: /data holds no demo_<n> groups; expected a robomimic "
                           "dataset")
    if filter_key is None:
        return names
    masks = sorted(f["mask"]) if "mask" in f else []
    if filter_key not in masks:
        raise ActJepaError(f"{path}: no mask/{filter_key}; expected one of the file's filters "
                           f"{masks}" if masks else f"{path}: has no mask/ group, so no filter "
                           f"{filter_key!r}; expected a file with mask/<filter> subsets")
    wanted = [v.decode() if isinstance(v, bytes) else str(v)
              for v in np.atleast_1d(f["mask"][filter_key][()])]
    missing = [n for n in wanted if n not in data]
    if missing:
        raise ActJepaError(f"{path}: mask/{filter_key} names {missing[:3]} which /data does "
                           "not hold; expected names of demo_<n> groups")
    if not wanted:
        raise ActJepaError(f"{path}: mask/{filter_key} is empty; expected demo names")
    return wanted


def _demo(path: Path, data: h5py.Group, name: str) -> h5py.Group:
    demo = data[name]
    where = f"{path}:/data/{name}"
    if "actions" not in demo:
        raise ActJepaError(f"{where} has no 'actions' dataset; expected (N, A) actions")
    if "obs" not in demo:
        hint = (" (it holds simulator 'states' only: extract observations with robomimic's "
                "dataset_states_to_obs.py first)" if "states" in demo else "")
        raise ActJepaError(f"{where} has no 'obs' group{hint}; expected obs/<key> "
                           "observations")
    return demo


def _observation_kinds(path: Path, name: str, obs: h5py.Group
                       ) -> tuple[dict[str, int], list[str]]:
    vectors, cameras = {}, []
    for key in obs:
        shape, dtype = obs[key].shape, obs[key].dtype
        if len(shape) == 4 and shape[-1] == RGB and dtype == np.uint8:
            cameras.append(key)
        elif len(shape) in (1, 2) and dtype.kind in "fiub":
            vectors[key] = 1 if len(shape) == 1 else int(shape[1])
        # anything else (depth maps, segmentation) is not imported
    if not vectors and not cameras:
        raise ActJepaError(f"{path}:/data/{name}/obs has no vector or (N, H, W, 3) uint8 image "
                           f"observation (keys {sorted(obs)})")
    return vectors, cameras


def _actions(path: Path, name: str, demo: h5py.Group) -> np.ndarray:
    actions = demo["actions"][()]
    return vector_rows(actions, f"{path}:/data/{name}/actions", len(actions))


def _episode(path: Path, name: str, demo: h5py.Group, plan, action_dim: int,
             options: ImportOptions) -> Episode:
    where = f"{path}:/data/{name}"
    actions = vector_rows(demo["actions"][()], f"{where}/actions", len(demo["actions"]),
                          action_dim)
    steps = len(actions)
    check_length(steps, where)
    declared = demo.attrs.get("num_samples")
    if declared is not None and int(declared) != steps:
        raise ActJepaError(f"{where} has num_samples {int(declared)} but {steps} actions; "
                           "expected them equal (a truncated file?)")
    obs = {}
    if plan.state:
        parts = []
        for key, width in plan.state:
            if key not in demo["obs"]:
                raise ActJepaError(f"{where}/obs has no '{key}'; expected the keys of the "
                                   "first demo")
            parts.append(vector_rows(demo["obs"][key][()], f"{where}/obs/{key}", steps, width))
        obs["state"] = np.concatenate(parts, axis=1)
    for camera, ours in plan.cameras.items():
        if camera not in demo["obs"]:
            raise ActJepaError(f"{where}/obs has no '{camera}'; expected the keys of the first "
                               "demo")
        frames = demo["obs"][camera][()]
        if len(frames) != steps:
            raise ActJepaError(f"{where}/obs/{camera} has {len(frames)} frames; expected "
                               f"{steps}, one per action")
        obs[ours] = fit_frames(frames, options.image_size, f"{where}/obs/{camera}")
    success = bool(np.asarray(demo["dones"][()]).reshape(-1)[-1]) if "dones" in demo else None
    return Episode(obs=obs, actions=actions, success=success,
                   attrs={"source_demo": name})


def _env_name(data: h5py.Group) -> str:
    raw = data.attrs.get("env_args")
    if raw is None:
        return ""
    try:
        return str(json.loads(raw if isinstance(raw, str) else raw.decode()).get("env_name", ""))
    except (ValueError, AttributeError):
        return ""
