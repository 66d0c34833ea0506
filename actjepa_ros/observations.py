"""Which ROS input fills which observation key, and the observation built from their values.

A checkpoint says what observation it takes (keys, shapes, dtypes); the policy node's ``*_key``
parameters say which input fills which key, and ``image_keys``/``image_topics``/
``image_transports`` (parallel lists: ROS parameters cannot be lists of structs) name several
cameras, each filling its own key (scene + wrist is the common real cell). ``plan_inputs``
checks, once at configure, that the two agree (every key filled, images only from cameras, one
camera per image key, vector sizes adding up) so that a
mismatch fails configure with a reason instead of failing every control tick; ``assemble`` then
builds each tick's observation from the inputs' latest values. Pure numpy: no ROS here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from actjepa_core.errors import ActJepaError
from actjepa_ros.conversions import JOINT_STATE_FIELDS

# input name -> (its *_topic parameter, its *_key parameter); vector parts of one key are
# concatenated in this order
INPUTS = {"joint_states": ("joint_states_topic", "joint_states_key"),
          "state": ("state_topic", "state_key"),
          "image": ("image_topic", "image_key")}
VECTOR_INPUTS = ("joint_states", "state")
IMAGE_NDIM = 3  # (H, W, C)
TRANSPORTS = ("raw", "compressed")  # params.IMAGE_TRANSPORTS (no rclpy here)
COMPRESSED_SUFFIX = "/compressed"  # image_transport's "compressed" plugin: <base topic>/compressed


def image_transport_topic(base: str, transport: str) -> str:
    """The topic image_transport publishes ``transport`` on for the base topic ``base``:
    ``camera/image_raw`` -> ``camera/image_raw/compressed``. A base that already ends in
    ``/compressed`` is taken as the transport topic itself (older params files spelled it out)."""
    if transport != "compressed" or base.rstrip("/").endswith(COMPRESSED_SUFFIX):
        return base
    return base.rstrip("/") + COMPRESSED_SUFFIX


@dataclass
class Input:
    """One subscribed topic and the newest valid value it delivered."""

    name: str
    key: str
    topic: str
    size: int | None = None  # vector inputs: values this input must carry
    transport: str | None = None  # cameras: raw or compressed; None for vector inputs
    value: np.ndarray | None = None
    problem: str | None = None  # why the newest message was refused
    count: int = 0  # valid messages so far
    used: int = 0  # ``count`` when the last action was published
    received_s: float = -np.inf  # monotonic arrival time of ``value``


def plan_inputs(p: Mapping[str, Any], spec: Mapping[str, dict],
                note: Callable[[str], None] = lambda _: None) -> dict[str, Input]:
    """The inputs to subscribe for ``spec`` given the node parameters ``p``.

    An input whose key the checkpoint lacks is skipped (``note`` says so), so one params file
    serves state-only and image checkpoints alike; a key no input fills is an error.
    """
    candidates = [Input(name, p[INPUTS[name][1]], p[INPUTS[name][0]])
                  for name in VECTOR_INPUTS if p[INPUTS[name][1]] and p[INPUTS[name][0]]]
    inputs = {}
    for inp in candidates + camera_inputs(p, note):
        if inp.key not in spec:
            note(f"{inp.name} input ('{inp.key}' from {inp.topic}) not used: the checkpoint's "
                 f"observation keys are {sorted(spec)}")
            continue
        inputs[inp.name] = inp
    for key, entry in spec.items():
        users = [i for i in inputs.values() if i.key == key]
        image_like = len(entry["shape"]) == IMAGE_NDIM
        if not users:
            raise ActJepaError(f"observation key '{key}' (shape {entry['shape']}) is filled by "
                               "no input; set joint_states_key, state_key, image_key or "
                               "image_keys")
        names = [u.name for u in users]
        cameras = [u for u in users if u.transport is not None]
        if (len(users) != 1 or not cameras) if image_like else cameras:
            raise ActJepaError(f"observation key '{key}' has shape {entry['shape']}: "
                               f"{'exactly one' if image_like else 'no'} camera input can fill "
                               f"it (got {names})")
        if not image_like:
            _plan_vector(p, key, int(np.prod(entry["shape"])), inputs)
    return inputs


def camera_inputs(p: Mapping[str, Any], note: Callable[[str], None] = lambda _: None
                  ) -> list[Input]:
    """The configured cameras: one per entry of ``image_keys`` (with ``image_topics`` and
    ``image_transports``), or else the single ``image_key``/``image_topic``/``image_transport``
    camera (named "image", as before several cameras existed)."""
    keys = list(p.get("image_keys") or [])
    if not keys:
        key, topic, transport = p["image_key"], p["image_topic"], p.get("image_transport", "raw")
        return ([Input("image", key, image_transport_topic(topic, transport),
                       transport=transport)] if key and topic else [])
    topics = list(p.get("image_topics") or [])
    transports = list(p.get("image_transports") or []) or ["raw"]
    transports = transports * len(keys) if len(transports) == 1 else transports
    _check_cameras(keys, topics, transports)
    if p.get("image_key"):
        note(f"image_keys {keys} set: image_key/image_topic/image_transport not used")
    return [Input(f"image/{key}", key, image_transport_topic(topic, transport),
                  transport=transport) for key, topic, transport in zip(keys, topics, transports)]


def _check_cameras(keys: list[str], topics: list[str], transports: list[str]) -> None:
    """Parallel lists that line up: one topic and one transport per key, no key twice."""
    if len(topics) != len(keys) or len(transports) != len(keys):
        raise ActJepaError(f"image_keys {keys} name {len(keys)} cameras but image_topics "
                           f"{topics} and image_transports {transports} do not give one entry "
                           "each (image_transports: [] = all raw, one value = every camera)")
    bad = [t for t in transports if t not in TRANSPORTS]
    if bad or not all(keys) or not all(topics) or len(set(keys)) != len(keys):
        raise ActJepaError(f"cameras {list(zip(keys, topics, transports))}: expected distinct "
                           f"non-empty keys, non-empty topics and transports among "
                           f"{list(TRANSPORTS)}")


def _plan_vector(p: Mapping[str, Any], key: str, total: int, inputs: dict[str, Input]) -> None:
    """Sizes of the vector inputs filling ``key``: joint states first, the vector the rest."""
    joints = inputs.get("joint_states")
    joints = joints if joints is not None and joints.key == key else None
    vector = inputs.get("state")
    vector = vector if vector is not None and vector.key == key else None
    joint_size = 0
    if joints is not None:
        names, fields = p["joint_names"], p["joint_state_fields"]
        unknown = sorted(set(fields) - set(JOINT_STATE_FIELDS))
        if not names or not fields or unknown:
            raise ActJepaError(f"joint_states_key is '{key}' but joint_names {list(names)} / "
                               f"joint_state_fields {list(fields)} do not name joints and "
                               f"fields ({list(JOINT_STATE_FIELDS)})")
        joints.size = joint_size = len(names) * len(fields)
    if vector is not None:
        vector.size = total - joint_size
    if (vector is not None and vector.size < 1) or (vector is None and joint_size != total):
        raise ActJepaError(f"observation key '{key}' has {total} values but the joint states "
                           f"give {joint_size} (joint_names x joint_state_fields)"
                           + (" and leave nothing for the state vector" if vector else ""))


def ramp_positions(p: Mapping[str, Any], inputs: Mapping[str, Input], dim: int) -> slice | None:
    """ramp_from joint_positions: where the current joint positions sit in the joint input."""
    if p["ramp_from"] != "joint_positions":
        return None
    names, fields = p["joint_names"], p["joint_state_fields"]
    if "joint_states" not in inputs or "position" not in fields or len(names) != dim:
        raise ActJepaError(f"ramp_from joint_positions needs the joint states input in use "
                           f"(joint_states_key), 'position' in joint_state_fields and one joint "
                           f"name per action dimension ({dim}); got joint_names {list(names)}, "
                           f"fields {list(fields)}")
    start = list(fields).index("position") * len(names)
    return slice(start, start + len(names))


def assemble(inputs: Mapping[str, Input], spec: Mapping[str, dict]) -> dict[str, np.ndarray]:
    """The policy's observation from the inputs' latest values, in the spec's dtypes/shapes."""
    obs = {}
    for key, entry in spec.items():
        parts = [i.value for i in inputs.values() if i.key == key]
        value = parts[0] if len(parts) == 1 else np.concatenate(parts)
        obs[key] = np.asarray(value).astype(np.dtype(entry["dtype"]), copy=False).reshape(
            entry["shape"])
    return obs


def lerobot_features(p: Mapping[str, Any]) -> dict[str, str]:
    """policy_type lerobot: the parallel lists lerobot_features / lerobot_keys as one table,
    LeRobot input feature -> our observation key."""
    features, keys = list(p["lerobot_features"]), list(p["lerobot_keys"])
    if len(features) != len(keys) or not features:
        raise ActJepaError(f"lerobot_features {features} and lerobot_keys {keys} must give one "
                           "observation key per LeRobot feature (parallel, non-empty lists)")
    if len(set(features)) != len(features):
        raise ActJepaError(f"lerobot_features {features} names a feature twice; expected each "
                           "once")
    return dict(zip(features, keys))


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32(values: np.ndarray, what: str) -> None:
    """Finite, and still finite once cast to the models' float32 (1e300 is not)."""
    if not np.isfinite(values).all():
        raise ActJepaError(f"{what} contains NaN or Inf; expected finite values")
    if values.size and float(np.abs(values).max()) > FLOAT32_MAX:
        raise ActJepaError(f"{what} has a value of magnitude {float(np.abs(values).max()):.3g}, "
                           f"beyond float32 (at most {FLOAT32_MAX:.3g}); expected finite values")


def goal_vector(values: np.ndarray, size: int) -> np.ndarray:
    """A goal message's values -> float32 (``size``,), or ``ActJepaError`` saying why not."""
    if values.size != size:
        raise ActJepaError(f"goal message has {values.size} values; expected {size}")
    _check_float32(values, "goal message")
    return values.astype(np.float32)


def check_subgoal_layout(dims: list[int], length: int, size: int) -> None:
    """A subgoals message's layout, when it gives one in two dimensions, must be (M, K) with K
    the state size: rows of another width would be cut into wrong subgoals unnoticed."""
    if len(dims) > 2:
        raise ActJepaError(f"subgoals message has a {len(dims)}-d layout {dims}; expected "
                           f"(M, {size}) or a flat array")
    if len(dims) == 2 and (dims[1] != size or dims[0] * dims[1] != length):
        raise ActJepaError(f"subgoals message layout is ({dims[0]}, {dims[1]}) for {length} "
                           f"values; expected (M, {size}) with M x {size} = {length}")


def subgoal_rows(values: np.ndarray, size: int) -> list[np.ndarray]:
    """A flat (M * K,) subgoal message -> M rows of K values (K = the state size)."""
    if values.size == 0 or values.size % size:
        raise ActJepaError(f"subgoals message has {values.size} values; expected a positive "
                           f"multiple of the state size {size} (M subgoals x {size})")
    rows = values.reshape(-1, size)
    _check_float32(rows, "subgoals message")
    return list(rows.astype(np.float32))
