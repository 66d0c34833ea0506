"""Which message types may fill which role, and the function that decodes each topic's messages.

Roles: an observation vector (JointState reordered by joint name, Float64MultiArray), an
observation image (Image, CompressedImage; resized to ``image_size``), the action (a recorded
command, or joint positions for ``joint_delta``), and episode markers / success flags (Bool,
Empty). A topic whose type cannot fill its role is a ``BagError`` naming topic, type and the
types that would do; the decoding itself is ``actjepa_core.data.messages``, shared with the nodes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from actjepa_core.bags.config import ConvertConfig
from actjepa_core.bags.reader import BagError
from actjepa_core.data.messages import (
    ConversionError,
    compressed_to_rgb,
    fit_image,
    image_to_rgb,
    joint_state_vector,
    multi_array_vector,
    trajectory_positions,
    twist_vector,
)

Decoder = Callable[[Any], np.ndarray]
JOINT_STATE = "sensor_msgs/msg/JointState"
MULTI_ARRAYS = ("std_msgs/msg/Float64MultiArray", "std_msgs/msg/Float32MultiArray")
IMAGES = {"sensor_msgs/msg/Image": image_to_rgb,
          "sensor_msgs/msg/CompressedImage": compressed_to_rgb}
TWISTS = ("geometry_msgs/msg/TwistStamped", "geometry_msgs/msg/Twist")
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
BOOL, EMPTY = "std_msgs/msg/Bool", "std_msgs/msg/Empty"
VECTOR_TYPES = (JOINT_STATE, *MULTI_ARRAYS)
ACTION_TYPES = (*MULTI_ARRAYS, *TWISTS, TRAJECTORY, JOINT_STATE)
MARKER_TYPES = (BOOL, EMPTY)


@dataclass
class Decoders:
    """Per observation key: (topic, decoder) parts; the action decoder; which keys are images."""

    observations: dict[str, list[tuple[str, Decoder]]]
    images: set[str]
    action: Decoder


def decoders_for(types: dict[str, str], config: ConvertConfig, path: Path) -> Decoders:
    """The decoders for a bag whose configured topics have ``types`` ({topic: type})."""
    observations, images = {}, set()
    for key, topics in config.observations.items():
        kinds = {t: types[t] for t in topics}
        image_topics = [t for t, kind in kinds.items() if kind in IMAGES]
        if image_topics:
            if len(topics) != 1:
                raise BagError(f"{path}: observation '{key}' mixes image topic {image_topics[0]} "
                               f"with {[t for t in topics if t not in image_topics]}; an image "
                               "key takes exactly one Image or CompressedImage topic")
            images.add(key)
            observations[key] = [(topics[0], _image_decoder(kinds[topics[0]], config))]
            continue
        observations[key] = [(t, _vector_decoder(t, kind, config, path))
                             for t, kind in kinds.items()]
    return Decoders(observations, images, _action_decoder(types, config, path))


def check_marker(topic: str, msgtype: str, path: Path, allowed: tuple[str, ...]) -> None:
    if msgtype not in allowed:
        raise BagError(f"{path}: {topic} has type {msgtype}; expected {' or '.join(allowed)}")


def _vector_decoder(topic: str, msgtype: str, config: ConvertConfig, path: Path) -> Decoder:
    if msgtype == JOINT_STATE:
        _need_joints(config.joint_names, topic, "joint_names", path)
        names, fields = list(config.joint_names), list(config.joint_state_fields)
        return lambda msg: joint_state_vector(msg, names, fields)
    if msgtype in MULTI_ARRAYS:
        return multi_array_vector
    raise BagError(f"{path}: {topic} has type {msgtype}; an observation topic must be one of "
                   f"{[*VECTOR_TYPES, *IMAGES]}")


def _image_decoder(msgtype: str, config: ConvertConfig) -> Decoder:
    decode, size, resize = IMAGES[msgtype], config.image_size, config.image_resize

    def frame(msg: Any) -> np.ndarray:
        try:
            rgb = decode(msg)
            return fit_image(rgb, (size, size), resize) if size else rgb
        except (cv2.error, MemoryError) as err:  # OpenCV's own failures: one line, not a trace
            text = " ".join(str(err).split())[-160:]
            raise ConversionError(f"image could not be decoded ({type(err).__name__}: {text}); "
                                  "expected a jpeg, png or raw frame") from None

    return frame


def _action_decoder(types: dict[str, str], config: ConvertConfig, path: Path) -> Decoder:
    topic = config.action.topic
    msgtype = types[topic]
    joints = config.action_joints()
    if config.action.source == "joint_delta":
        if msgtype != JOINT_STATE:
            raise BagError(f"{path}: action.source joint_delta needs a {JOINT_STATE} topic; "
                           f"{topic} has type {msgtype}")
        _need_joints(joints, topic, "action.joint_names or joint_names", path)
        return lambda msg: joint_state_vector(msg, joints, ("position",))
    if msgtype in MULTI_ARRAYS:
        return multi_array_vector
    if msgtype in TWISTS:
        return twist_vector
    if msgtype == TRAJECTORY:
        return lambda msg: trajectory_positions(msg, joints)
    if msgtype == JOINT_STATE:  # a position command sent as JointState
        _need_joints(joints, topic, "action.joint_names or joint_names", path)
        return lambda msg: joint_state_vector(msg, joints, ("position",))
    raise BagError(f"{path}: action topic {topic} has type {msgtype}; expected one of "
                   f"{list(ACTION_TYPES)} (or action.source joint_delta without a command)")


def _need_joints(names: list[str], topic: str, key: str, path: Path) -> None:
    if not names:
        raise BagError(f"{path}: {topic} is a JointState topic but {key} is empty; expected the "
                       "joint names, in the order the model should see them")
