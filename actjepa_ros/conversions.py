"""ROS messages <-> numpy: the only place that knows message layouts.

Inputs (JointState, Image, CompressedImage, Float64MultiArray) become the numpy arrays an
``actjepa_core`` policy takes; numpy actions become the three command messages robot stacks
listen to (a ros2_control forward controller's Float64MultiArray, MoveIt Servo's TwistStamped, a
JointTrajectory). Every malformed message raises ``ConversionError`` naming what was wrong, so the
node can refuse to act on it and say why.

Images take one numpy path (rgb8/bgr8/rgba8/bgra8/mono8 raw, jpeg/png compressed, via OpenCV) on
every machine, so a decoded picture is byte-identical with or without a ROS install; cv_bridge,
where importable, only widens the set of raw encodings (bayer, yuv422, ...) beyond that path.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import cv2
import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from actjepa_core.errors import ActJepaError

try:  # only on ROS installs (no wheel exists): widens the raw encodings we accept
    from cv_bridge import CvBridge
except ImportError:  # the numpy path below covers the encodings cameras and Gazebo publish
    CvBridge = None

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
TWIST_FIELDS = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")
NS_PER_S = 1_000_000_000


class ConversionError(ActJepaError):
    """A message that cannot become the array the policy needs (names the field and why)."""


# ---- inputs ---------------------------------------------------------------------------------
def joint_state_vector(msg: JointState, joint_names: Sequence[str],
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


def multi_array_vector(msg: Float64MultiArray) -> np.ndarray:
    """Float64MultiArray -> flat float64 vector (its layout is informative only)."""
    return np.asarray(msg.data, dtype=np.float64).reshape(-1)


def image_to_rgb(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> uint8 (H, W, 3) RGB; rows may be padded (``step`` > width * bpp)."""
    encoding = msg.encoding.lower()
    if encoding not in _RAW_ENCODINGS:
        return _bridge_to_rgb(msg)
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


def _bridge_to_rgb(msg: Image) -> np.ndarray:
    if CvBridge is None:
        raise ConversionError(f"image encoding {msg.encoding!r} is not supported; expected one "
                              f"of {list(NUMPY_ENCODINGS)} (or install cv_bridge for more)")
    try:
        rgb = CvBridge().imgmsg_to_cv2(msg, desired_encoding="rgb8")
    except Exception as err:  # cv_bridge raises its own CvBridgeError and cv2 errors
        raise ConversionError(f"image encoding {msg.encoding!r}: cv_bridge could not convert it "
                              f"to rgb8 ({err})") from err
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
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


# ---- outputs --------------------------------------------------------------------------------
def rgb_to_image(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """uint8 (H, W, 3) RGB -> sensor_msgs/Image rgb8 (what the simulated camera publishes)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != RGB_CHANNELS:
        raise ConversionError(f"image array has shape {rgb.shape}; expected (H, W, 3)")
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = rgb.shape[0], rgb.shape[1]
    msg.encoding, msg.is_bigendian, msg.step = "rgb8", 0, rgb.shape[1] * RGB_CHANNELS
    msg.data = rgb.tobytes()
    return msg


def to_float64_multi_array(values: np.ndarray, label: str = "") -> Float64MultiArray:
    """Vector -> Float64MultiArray (forward_command_controller's command type)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(flat), stride=len(flat))]
    msg.data = flat.tolist()
    return msg


def to_twist_stamped(action: np.ndarray, fields: Sequence[str], stamp: Time,
                     frame_id: str) -> TwistStamped:
    """Action -> TwistStamped: action[i] goes to twist field ``fields[i]`` ('' = not sent).

    The mapping is explicit because an action's dimensions are whatever the demonstrations
    recorded (e.g. Meta-World: hand dx, dy, dz, then a gripper effort no twist can carry).
    """
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    check_twist_fields(fields, len(action))
    msg = TwistStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    for value, field in zip(action, fields):
        if field:
            part, axis = field.split(".")
            setattr(getattr(msg.twist, part), axis, float(value))
    return msg


def check_twist_fields(fields: Sequence[str], action_dim: int) -> None:
    """One entry per action dimension, each a twist field or '', no field used twice."""
    if len(fields) != action_dim:
        raise ConversionError(f"twist_fields has {len(fields)} entries; expected one per action "
                              f"dimension ({action_dim}), '' for a dimension not sent")
    bad = [f for f in fields if f and f not in TWIST_FIELDS]
    used = [f for f in fields if f]
    if bad or len(set(used)) != len(used):
        raise ConversionError(f"twist_fields {list(fields)}: each entry must be '' or one of "
                              f"{list(TWIST_FIELDS)}, none repeated")


def default_twist_fields(action_dim: int) -> list[str]:
    """linear.x, .y, .z, angular.x, .y, .z for the first six dimensions; later ones unsent."""
    return [TWIST_FIELDS[i] if i < len(TWIST_FIELDS) else "" for i in range(action_dim)]


def to_joint_trajectory(action: np.ndarray, joint_names: Sequence[str], stamp: Time,
                        time_from_start_s: float) -> JointTrajectory:
    """Action -> a one-point JointTrajectory: the action as joint positions, reached in
    ``time_from_start_s`` (one control period is the natural choice)."""
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    if len(joint_names) != len(action):
        raise ConversionError(f"trajectory has {len(joint_names)} joint names for a "
                              f"{len(action)}-d action; expected one name per dimension")
    msg = JointTrajectory()
    msg.header.stamp = stamp
    msg.joint_names = list(joint_names)
    nanoseconds = int(round(time_from_start_s * NS_PER_S))
    point = JointTrajectoryPoint(positions=action.tolist())
    point.time_from_start = Duration(sec=nanoseconds // NS_PER_S,
                                     nanosec=nanoseconds % NS_PER_S)
    msg.points = [point]
    return msg


def action_message_factory(kind: str, dim: int, stamp: Callable[[], Time],
                           twist_fields: Sequence[str] = (), frame_id: str = "",
                           joint_names: Sequence[str] = (), time_from_start_s: float = 0.0
                           ) -> tuple[Callable[[np.ndarray], Any], type]:
    """(action -> message, message type) for an output kind, checked once for ``dim``:
    ``float64_multi_array``, ``twist_stamped`` (``twist_fields``, [] = the default mapping) or
    ``joint_trajectory`` (``joint_names``, one per dimension). ``stamp()`` gives header times."""
    if kind == "float64_multi_array":
        return (lambda a: to_float64_multi_array(a, "action")), Float64MultiArray
    if kind == "twist_stamped":
        fields = list(twist_fields) or default_twist_fields(dim)
        check_twist_fields(fields, dim)
        return (lambda a: to_twist_stamped(a, fields, stamp(), frame_id)), TwistStamped
    if kind == "joint_trajectory":
        names = list(joint_names)
        if len(names) != dim:
            raise ConversionError(f"joint_trajectory output needs {dim} joint names (one per "
                                  f"action dimension); got {names}")
        return (lambda a: to_joint_trajectory(a, names, stamp(), time_from_start_s)
                ), JointTrajectory
    raise ConversionError(f"output type {kind!r}; expected float64_multi_array, twist_stamped "
                          "or joint_trajectory")
