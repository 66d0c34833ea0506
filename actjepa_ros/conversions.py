"""ROS messages <-> numpy: the only place that knows message layouts.

Inputs (JointState, Image, CompressedImage, Float64MultiArray) become the numpy arrays an
``actjepa_core`` policy takes; numpy actions become the three command messages robot stacks
listen to (a ros2_control forward controller's Float64MultiArray, MoveIt Servo's TwistStamped, a
JointTrajectory). Every malformed message raises ``ConversionError`` naming what was wrong, so the
node can refuse to act on it and say why.

The input decoders live in ``actjepa_core.data.messages`` (they read fields by name, so ``actjepa
convert`` decodes recorded messages with the same code); this module re-exports them. Raw
images go through cv_bridge where it can be imported (ROS installs: every encoding it knows,
bayer, yuv422, 16-bit ...), and through the numpy path otherwise (rgb8/bgr8/rgba8/bgra8/mono8,
the encodings cameras and Gazebo publish) or when cv_bridge fails on one of those; for those
encodings both give identical arrays (test_conversions checks it where cv_bridge exists), so a
decoded picture is the same with or without a ROS install, live or from a bag. Compressed images
(jpeg/png) are decoded by OpenCV on every machine.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from actjepa_core.data import messages
from actjepa_core.data.messages import (  # noqa: F401  (re-exported: the nodes' one import)
    JOINT_STATE_FIELDS,
    NUMPY_ENCODINGS,
    RGB_CHANNELS,
    ConversionError,
    compressed_to_rgb,
    fit_image,
    joint_state_vector,
    multi_array_vector,
)
from actjepa_core.units import NS_PER_S

try:  # only on ROS installs (no wheel exists in the package registry)
    from cv_bridge import CvBridge
except ImportError:  # the numpy path covers the encodings cameras and Gazebo publish
    CvBridge = None
_bridges: list[Any] = []  # the one CvBridge, made on first use

TWIST_FIELDS = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")


# ---- inputs (beyond actjepa_core.data.messages) --------------------------------------------------
def image_to_rgb(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> uint8 (H, W, 3) RGB: cv_bridge where importable, else the numpy path.

    A message whose size fields disagree with its data is judged by the numpy path's checks
    (which name the inconsistency) before cv_bridge sees it.
    """
    if CvBridge is None or not _sizes_consistent(msg):
        return messages.image_to_rgb(msg, _bridge_to_rgb if CvBridge is not None else None)
    try:
        return _bridge_to_rgb(msg)
    except ConversionError:
        if msg.encoding.lower() in NUMPY_ENCODINGS:
            return messages.image_to_rgb(msg)  # the fallback the numpy encodings always have
        raise


def _sizes_consistent(msg: Image) -> bool:
    return msg.height >= 1 and msg.width >= 1 and len(msg.data) == msg.step * msg.height


def _bridge_to_rgb(msg: Image) -> np.ndarray:
    if not _bridges:
        _bridges.append(CvBridge())
    try:
        rgb = _bridges[0].imgmsg_to_cv2(msg, desired_encoding="rgb8")
    except Exception as err:  # cv_bridge raises its own CvBridgeError and cv2 errors
        raise ConversionError(f"image encoding {msg.encoding!r}: cv_bridge could not convert it "
                              f"to rgb8 ({err})") from err
    return np.ascontiguousarray(rgb, dtype=np.uint8)


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


def twist_to_hand(msg: TwistStamped, scale: float, frame_id: str) -> np.ndarray:
    """TwistStamped -> a hand velocity command (3,) = ``scale`` x twist.linear, not yet clipped.

    Refused (``ConversionError``): a twist in a frame other than ``frame_id`` (an empty
    header.frame_id means the command frame, as MoveIt Servo reads it), non-finite values, or an
    angular part: a hand that cannot turn (Meta-World's Sawyer) would silently do something else
    than asked.
    """
    frame = msg.header.frame_id
    if frame and frame_id and frame != frame_id:
        raise ConversionError(f"twist in frame {frame!r}; expected {frame_id!r} (or '')")
    linear, angular = msg.twist.linear, msg.twist.angular
    hand = np.array([linear.x, linear.y, linear.z], dtype=np.float64)
    turn = np.array([angular.x, angular.y, angular.z], dtype=np.float64)
    if not (np.isfinite(hand).all() and np.isfinite(turn).all()):
        raise ConversionError(f"twist {hand.tolist()} / {turn.tolist()} contains NaN or Inf")
    if turn.any():
        raise ConversionError(f"twist has angular velocity {turn.tolist()}; expected 0 (the "
                              "hand keeps its orientation)")
    return hand * scale


def default_twist_fields(action_dim: int) -> list[str]:
    """linear.x, .y, .z, angular.x, .y, .z for the first six dimensions; later ones unsent."""
    return [TWIST_FIELDS[i] if i < len(TWIST_FIELDS) else "" for i in range(action_dim)]


def gripper_twist_fields(output_type: str, gripper_topic: str, twist_fields: Sequence[str],
                         dim: int) -> list[str]:
    """``twist_fields`` checked against a gripper output: with ``gripper_topic`` the last action
    dimension is the gripper's, so no twist field may carry it too (a gripper effort sent as a
    rotation would turn the hand); [] then means linear xyz for the others."""
    fields = list(twist_fields)
    if not gripper_topic:
        return fields
    if output_type != "twist_stamped":
        raise ConversionError(f"gripper_topic {gripper_topic!r} is set but output_type is "
                              f"{output_type!r}; expected twist_stamped (the other outputs carry "
                              "every action dimension), or gripper_topic ''")
    if not fields:
        return default_twist_fields(dim - 1) + [""]
    if len(fields) == dim and fields[-1]:
        raise ConversionError(f"twist_fields {fields} send the last action dimension as "
                              f"{fields[-1]}, but it goes to gripper_topic; expected '' there")
    return fields


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
                           joint_names: Sequence[str] = (), time_from_start_s: float = 0.0,
                           twist_scale: float = 1.0
                           ) -> tuple[Callable[[np.ndarray], Any], type]:
    """(action -> message, message type) for an output kind, checked once for ``dim``:
    ``float64_multi_array``, ``twist_stamped`` (``twist_fields``, [] = the default mapping;
    each field ``twist_scale`` x its action value) or ``joint_trajectory`` (``joint_names``, one
    per dimension). ``stamp()`` gives header times."""
    if kind == "float64_multi_array":
        return (lambda a: to_float64_multi_array(a, "action")), Float64MultiArray
    if kind == "twist_stamped":
        fields = list(twist_fields) or default_twist_fields(dim)
        check_twist_fields(fields, dim)
        return (lambda a: to_twist_stamped(np.asarray(a, np.float64) * twist_scale, fields,
                                           stamp(), frame_id)), TwistStamped
    if kind == "joint_trajectory":
        names = list(joint_names)
        if len(names) != dim:
            raise ConversionError(f"joint_trajectory output needs {dim} joint names (one per "
                                  f"action dimension); got {names}")
        return (lambda a: to_joint_trajectory(a, names, stamp(), time_from_start_s)
                ), JointTrajectory
    raise ConversionError(f"output type {kind!r}; expected float64_multi_array, twist_stamped "
                          "or joint_trajectory")
