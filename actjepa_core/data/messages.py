"""ROS message fields -> numpy: one decoding path for live messages and recorded ones.

The functions read messages by field name only (``msg.name``, ``msg.position``, ``msg.encoding``,
``msg.data``, ...), so an rclpy message in a node and a message that ``rosbags`` deserialized from
a bag decode through the very same code: a frame converted offline for training is byte-identical
to the frame the policy node sees live. No ROS import here (``actjepa_ros.conversions`` adds the
ROS-only extras, such as cv_bridge for exotic encodings, on top).

Every malformed message raises ``ConversionError`` naming the field and what was expected.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import cv2
import numpy as np

from actjepa_core.errors import ActJepaError

RGB_CHANNELS = 3
JOINT_STATE_FIELDS = ("position", "velocity", "effort")
# Raw 8-bit encodings handled in numpy: channels per pixel and the permutation to RGB
# (None: grey, replicated to three channels).
_RAW_ENCODINGS: dict[str, tuple[int, tuple[int, ...] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, None),
}
NUMPY_ENCODINGS = tuple(_RAW_ENCODINGS)
COMPRESSED_DEPTH = "compresseddepth"  # image_transport's depth format: 16/32-bit, not a picture
TWIST_PARTS = ("linear", "angular")
AXES = ("x", "y", "z")


class ConversionError(ActJepaError):
    """A message that cannot become the array the policy needs (names the field and why)."""


# ---- vectors --------------------------------------------------------------------------------
def joint_state_vector(msg: Any, joint_names: Sequence[str],
                       fields: Sequence[str] = ("position",)) -> np.ndarray:
    """JointState -> float64 vector: each field's values in ``joint_names`` order, concatenated.

    Drivers publish joints in their own order (and sometimes split across several messages), so
    values are picked by name; a configured joint that is absent, or a field array shorter than
    ``msg.name``, makes the message unusable rather than silently shifting values.
    """
    unknown = [f for f in fields if f not in JOINT_STATE_FIELDS]
    if unknown:
        raise ConversionError(f"joint state field(s) {unknown}; expected some of "
                              f"{list(JOINT_STATE_FIELDS)}")
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [n for n in joint_names if n not in index]
    if missing:
        raise ConversionError(f"JointState lacks joint(s) {missing}; it has {list(msg.name)}")
    parts = []
    for field in fields:
        values = np.asarray(getattr(msg, field), dtype=np.float64)
        if len(values) != len(msg.name):
            raise ConversionError(f"JointState has {len(msg.name)} names but {len(values)} "
                                  f"{field} values; expected one per name")
        parts.append(values[[index[n] for n in joint_names]])
    return np.concatenate(parts) if parts else np.zeros(0)


def multi_array_vector(msg: Any) -> np.ndarray:
    """Float64MultiArray -> flat float64 vector (its layout is informative only)."""
    return np.asarray(msg.data, dtype=np.float64).reshape(-1)


def twist_vector(msg: Any) -> np.ndarray:
    """Twist or TwistStamped -> [linear x, y, z, angular x, y, z] (MoveIt Servo's command)."""
    twist = getattr(msg, "twist", msg)
    return np.array([getattr(getattr(twist, part), axis) for part in TWIST_PARTS for axis in AXES],
                    dtype=np.float64)


def trajectory_positions(msg: Any, joint_names: Sequence[str] = ()) -> np.ndarray:
    """JointTrajectory -> its first point's positions, in ``joint_names`` order ([] = as sent).

    A joint trajectory controller drives toward the first point first, so that point is the
    command in effect when the message arrives.
    """
    if not len(msg.points):
        raise ConversionError("JointTrajectory has no points; expected at least one")
    positions = np.asarray(msg.points[0].positions, dtype=np.float64)
    names = list(msg.joint_names)
    if len(positions) != len(names):
        raise ConversionError(f"JointTrajectory has {len(names)} joint names but its first point "
                              f"has {len(positions)} positions; expected one per name")
    if not joint_names:
        return positions
    missing = [n for n in joint_names if n not in names]
    if missing:
        raise ConversionError(f"JointTrajectory lacks joint(s) {missing}; it has {names}")
    return positions[[names.index(n) for n in joint_names]]


# ---- images ---------------------------------------------------------------------------------
def image_to_rgb(msg: Any, fallback: Callable[[Any], np.ndarray] | None = None) -> np.ndarray:
    """sensor_msgs/Image -> uint8 (H, W, 3) RGB; rows may be padded (``step`` > width * bpp).

    Encodings outside ``NUMPY_ENCODINGS`` go to ``fallback`` (cv_bridge on ROS installs), or are
    refused when there is none.
    """
    encoding = msg.encoding.lower()
    if encoding not in _RAW_ENCODINGS:
        if fallback is not None:
            return fallback(msg)
        raise ConversionError(f"image encoding {msg.encoding!r} is not supported; expected one "
                              f"of {list(NUMPY_ENCODINGS)} (or install cv_bridge for more)")
    channels, order = _RAW_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels
    if height < 1 or width < 1 or step < row_bytes:
        raise ConversionError(f"image {width}x{height} {encoding} has step {step}; expected "
                              f"width, height >= 1 and step >= {row_bytes}")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size != step * height:
        raise ConversionError(f"image {width}x{height} {encoding} (step {step}) carries "
                              f"{data.size} bytes; expected {step * height}")
    pixels = data.reshape(height, step)[:, :row_bytes].reshape(height, width, channels)
    if order is None:
        return np.ascontiguousarray(np.repeat(pixels, RGB_CHANNELS, axis=2))
    return np.ascontiguousarray(pixels[:, :, list(order)])


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png: image_transport's ``compressed``) -> RGB uint8.

    image_transport writes ``format`` as e.g. ``"rgb8; jpeg compressed bgr8"``: the part after
    ``compressed`` is the channel order inside the file (OpenCV decodes to that order as is).
    """
    fmt = msg.format.lower()
    if COMPRESSED_DEPTH in fmt.replace(" ", ""):
        raise ConversionError(f"compressed image format {msg.format!r} is a depth image; "
                              "expected a colour jpeg or png")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if decoded is None:
        raise ConversionError(f"compressed image ({msg.format!r}, {data.size} bytes) could not "
                              "be decoded; expected jpeg or png data")
    if "compressed rgb8" in fmt:  # the file's channels are already RGB
        return np.ascontiguousarray(decoded)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def fit_image(rgb: np.ndarray, shape: Sequence[int], resize: bool = True) -> np.ndarray:
    """Bring an RGB frame to the model's (H, W, 3): resized if allowed, else it must match.

    Area interpolation when shrinking (what the camera's pixels average to), linear when growing.
    """
    height, width = int(shape[0]), int(shape[1])
    if rgb.shape[:2] == (height, width):
        return rgb
    if not resize:
        raise ConversionError(f"image is {rgb.shape[1]}x{rgb.shape[0]}; expected "
                              f"{width}x{height} (or enable image_resize)")
    shrink = rgb.shape[0] * rgb.shape[1] > height * width
    return cv2.resize(rgb, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
