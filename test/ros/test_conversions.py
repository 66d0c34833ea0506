"""Messages <-> numpy (actjepa_ros.conversions) on real ROS message classes, without DDS."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray

from actjepa_ros import conversions as conv
from actjepa_ros.conversions import ConversionError

RNG = np.random.default_rng(0)
PICTURE = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)  # H=6, W=5, RGB
STAMP = Time(sec=12, nanosec=345)


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    rows = np.hstack([rows, np.zeros((height, pad), np.uint8)])
    return Image(height=height, width=width, encoding=encoding, step=rows.shape[1],
                 data=rows.tobytes())


# ---- JointState -------------------------------------------------------------------------------
def test_joint_states_are_reordered_by_name():
    msg = JointState(name=["c", "a", "b", "extra"], position=[3.0, 1.0, 2.0, 9.0],
                     velocity=[30.0, 10.0, 20.0, 90.0])
    assert conv.joint_state_vector(msg, ["a", "b", "c"]).tolist() == [1.0, 2.0, 3.0]
    both = conv.joint_state_vector(msg, ["b", "a"], ("position", "velocity"))
    assert both.tolist() == [2.0, 1.0, 20.0, 10.0]


def test_a_missing_joint_is_an_error_naming_it():
    msg = JointState(name=["a", "b"], position=[1.0, 2.0])
    with pytest.raises(ConversionError, match=r"lacks joint\(s\) \['c'\]"):
        conv.joint_state_vector(msg, ["a", "c"])


def test_a_field_shorter_than_the_names_is_an_error():
    msg = JointState(name=["a", "b"], position=[1.0, 2.0], velocity=[0.5])
    with pytest.raises(ConversionError, match="2 names but 1 velocity values"):
        conv.joint_state_vector(msg, ["a"], ("position", "velocity"))
    with pytest.raises(ConversionError, match="field"):
        conv.joint_state_vector(msg, ["a"], ("torque",))


def test_multi_array_becomes_a_flat_vector():
    msg = Float64MultiArray(data=[1.0, 2.5, -3.0])
    assert conv.multi_array_vector(msg).tolist() == [1.0, 2.5, -3.0]


# ---- raw images -------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding, stored", [
    ("rgb8", PICTURE),
    ("bgr8", PICTURE[:, :, ::-1]),
    ("rgba8", np.dstack([PICTURE, np.full(PICTURE.shape[:2], 255, np.uint8)])),
    ("bgra8", np.dstack([PICTURE[:, :, ::-1], np.zeros(PICTURE.shape[:2], np.uint8)])),
])
def test_colour_encodings_decode_to_the_same_rgb(encoding, stored):
    rgb = conv.image_to_rgb(raw_image(np.ascontiguousarray(stored), encoding))
    assert rgb.dtype == np.uint8 and rgb.shape == PICTURE.shape
    np.testing.assert_array_equal(rgb, PICTURE)


def test_mono8_is_replicated_to_three_channels():
    grey = PICTURE[:, :, 0].copy()
    rgb = conv.image_to_rgb(raw_image(grey[:, :, None], "mono8"))
    np.testing.assert_array_equal(rgb, np.repeat(grey[:, :, None], 3, axis=2))


def test_padded_rows_are_skipped():
    rgb = conv.image_to_rgb(raw_image(PICTURE, "rgb8", pad=7))
    np.testing.assert_array_equal(rgb, PICTURE)


def test_unknown_encoding_is_an_error_naming_it():
    msg = raw_image(PICTURE, "rgb8")
    msg.encoding = "yuv422"
    if conv.CvBridge is None:  # on ROS installs cv_bridge converts it (or says why not)
        with pytest.raises(ConversionError, match="'yuv422' is not supported"):
            conv.image_to_rgb(msg)


@pytest.mark.parametrize("change, fragment", [
    (dict(height=7), "carries 90 bytes; expected 105"),
    (dict(step=10), "step 10; expected"),
    (dict(width=0), "width, height >= 1"),
])
def test_inconsistent_image_sizes_are_errors(change, fragment):
    msg = raw_image(PICTURE, "rgb8")
    for field, value in change.items():
        setattr(msg, field, value)
    with pytest.raises(ConversionError, match=fragment):
        conv.image_to_rgb(msg)


def test_fit_image_resizes_or_refuses():
    big = np.zeros((64, 48, 3), np.uint8)
    big[:32] = 200
    small = conv.fit_image(big, (16, 12, 3))
    assert small.shape == (16, 12, 3) and small[:8].min() == 200 and small[8:].max() == 0
    assert conv.fit_image(PICTURE, PICTURE.shape) is PICTURE  # right size: untouched
    assert conv.fit_image(PICTURE, (12, 10, 3)).shape == (12, 10, 3)  # upscaled
    with pytest.raises(ConversionError, match="image is 48x64; expected 12x16"):
        conv.fit_image(big, (16, 12, 3), resize=False)


def test_rgb_to_image_round_trips():
    msg = conv.rgb_to_image(PICTURE, STAMP, "camera")
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 6, 5, 15)
    assert msg.header.stamp == STAMP and msg.header.frame_id == "camera"
    np.testing.assert_array_equal(conv.image_to_rgb(msg), PICTURE)
    with pytest.raises(ConversionError, match=r"expected \(H, W, 3\)"):
        conv.rgb_to_image(PICTURE[:, :, 0], STAMP, "camera")


# ---- compressed images ------------------------------------------------------------------------
def test_png_decodes_exactly_and_jpeg_closely():
    bgr = np.ascontiguousarray(PICTURE[:, :, ::-1])
    png = CompressedImage(format="rgb8; png compressed bgr8",
                          data=cv2.imencode(".png", bgr)[1].tobytes())
    np.testing.assert_array_equal(conv.compressed_to_rgb(png), PICTURE)
    smooth = np.zeros((32, 32, 3), np.uint8)
    smooth[:, :, 0] = 200  # red
    jpeg = CompressedImage(format="jpeg", data=cv2.imencode(
        ".jpg", smooth[:, :, ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
    rgb = conv.compressed_to_rgb(jpeg)
    assert rgb.shape == (32, 32, 3)
    assert np.abs(rgb.astype(int) - smooth).max() <= 4  # lossy, but red stays red


def test_compressed_rgb_order_is_respected():
    png = CompressedImage(format="rgb8; png compressed rgb8",
                          data=cv2.imencode(".png", PICTURE)[1].tobytes())
    np.testing.assert_array_equal(conv.compressed_to_rgb(png), PICTURE)


@pytest.mark.parametrize("fmt, data, fragment", [
    ("jpeg", b"not a jpeg at all", "could not be decoded"),
    ("png", b"", "could not be decoded"),
    ("16UC1; compressedDepth png", b"\x89PNG", "depth image"),
])
def test_undecodable_compressed_images_are_errors(fmt, data, fragment):
    with pytest.raises(ConversionError, match=fragment):
        conv.compressed_to_rgb(CompressedImage(format=fmt, data=data))


# ---- outputs ----------------------------------------------------------------------------------
ACTION = np.array([0.1, -0.2, 0.3, 0.9], np.float32)


def test_float64_multi_array_carries_the_action():
    msg = conv.to_float64_multi_array(ACTION, "action")
    assert list(msg.data) == pytest.approx(ACTION.tolist())
    assert msg.layout.dim[0].size == 4 and msg.layout.dim[0].label == "action"


def test_twist_stamped_maps_dimensions_to_fields():
    msg = conv.to_twist_stamped(ACTION, ["linear.x", "linear.y", "linear.z", ""], STAMP, "base")
    assert (msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z) == pytest.approx(
        (0.1, -0.2, 0.3))
    assert (msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z) == (0.0, 0.0, 0.0)
    assert msg.header.frame_id == "base" and msg.header.stamp == STAMP
    default = conv.default_twist_fields(7)
    assert default == ["linear.x", "linear.y", "linear.z", "angular.x", "angular.y",
                       "angular.z", ""]


@pytest.mark.parametrize("fields, fragment", [
    (["linear.x"], "has 1 entries; expected one per action dimension"),
    (["linear.x", "linear.x", "", ""], "none repeated"),
    (["linear.w", "", "", ""], "one of"),
])
def test_bad_twist_mappings_are_errors(fields, fragment):
    with pytest.raises(ConversionError, match=fragment):
        conv.to_twist_stamped(ACTION, fields, STAMP, "base")


def test_joint_trajectory_is_one_point_reached_in_the_given_time():
    names = ["a", "b", "c", "d"]
    msg = conv.to_joint_trajectory(ACTION, names, STAMP, 1.25)
    assert msg.joint_names == names and len(msg.points) == 1
    assert list(msg.points[0].positions) == pytest.approx(ACTION.tolist())
    assert (msg.points[0].time_from_start.sec, msg.points[0].time_from_start.nanosec) == (
        1, 250_000_000)
    with pytest.raises(ConversionError, match="3 joint names for a 4-d action"):
        conv.to_joint_trajectory(ACTION, names[:3], STAMP, 0.1)


@pytest.mark.parametrize("kind, extra, msg_type", [
    ("float64_multi_array", {}, Float64MultiArray),
    ("twist_stamped", dict(twist_fields=["linear.z", "", "linear.x", "angular.z"]), None),
    ("joint_trajectory", dict(joint_names=["a", "b", "c", "d"], time_from_start_s=0.05), None),
])
def test_action_message_factory_builds_each_output_kind(kind, extra, msg_type):
    from geometry_msgs.msg import TwistStamped
    from trajectory_msgs.msg import JointTrajectory

    build, made_type = conv.action_message_factory(kind, 4, stamp=lambda: STAMP, **extra)
    msg = build(ACTION)
    expected = msg_type or {"twist_stamped": TwistStamped,
                            "joint_trajectory": JointTrajectory}[kind]
    assert made_type is expected and isinstance(msg, expected)
    if kind == "twist_stamped":
        assert (msg.twist.linear.z, msg.twist.linear.x) == pytest.approx((0.1, 0.3))
        assert msg.twist.angular.z == pytest.approx(0.9) and msg.header.stamp == STAMP


@pytest.mark.parametrize("kind, extra, fragment", [
    ("joint_trajectory", dict(joint_names=["a"]), "needs 4 joint names"),
    ("twist_stamped", dict(twist_fields=["linear.x"]), "one per action dimension"),
    ("velocity", {}, "expected float64_multi_array"),
])
def test_action_message_factory_refuses_what_cannot_be_built(kind, extra, fragment):
    with pytest.raises(ConversionError, match=fragment):
        conv.action_message_factory(kind, 4, stamp=lambda: STAMP, **extra)


def test_a_twist_becomes_a_scaled_hand_command_in_its_frame():
    msg = conv.to_twist_stamped(np.array([0.5, -0.25, 2.0]), conv.default_twist_fields(3),
                                Time(), "base")
    np.testing.assert_array_equal(conv.twist_to_hand(msg, 2.0, "base"), [1.0, -0.5, 4.0])
    msg.header.frame_id = ""  # the command frame, as MoveIt Servo reads it
    np.testing.assert_array_equal(conv.twist_to_hand(msg, 1.0, "base"), [0.5, -0.25, 2.0])


@pytest.mark.parametrize("frame, angular, linear, fragment", [
    ("tool0", 0.0, 0.1, "twist in frame 'tool0'; expected 'base'"),
    ("base", 0.3, 0.1, "angular velocity [0.0, 0.0, 0.3]; expected 0"),
    ("base", 0.0, float("nan"), "contains NaN or Inf"),
])
def test_twists_the_hand_cannot_follow_are_errors(frame, angular, linear, fragment):
    msg = conv.to_twist_stamped(np.array([linear, 0.0, 0.0, angular]),
                                ["linear.x", "", "", "angular.z"], Time(), frame)
    with pytest.raises(ConversionError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        conv.twist_to_hand(msg, 1.0, "base")


def test_with_a_gripper_topic_the_last_dimension_is_not_a_twist_field():
    assert conv.gripper_twist_fields("twist_stamped", "gripper", [], 4) == [
        "linear.x", "linear.y", "linear.z", ""]
    assert conv.gripper_twist_fields("twist_stamped", "", [], 4) == []  # the usual default
    with pytest.raises(ConversionError, match="expected twist_stamped"):
        conv.gripper_twist_fields("float64_multi_array", "gripper", [], 4)
    with pytest.raises(ConversionError, match="goes to gripper_topic; expected '' there"):
        conv.gripper_twist_fields("twist_stamped", "gripper",
                                  ["linear.x", "linear.y", "linear.z", "angular.x"], 4)
