"""policy_node's bounds on what one input message may cost, checked before any conversion.

Any peer on the ROS domain can publish to the node's inputs (DDS authenticates no one without
SROS2; docs/SECURITY.md), and converting a message costs in proportion to its size: an 8 MB array
where 39 values are expected, an image far bigger than the model's, or a small jpeg whose header
declares gigapixels would each stall the control loop or exhaust memory. So every observation and
goal message is first refused by its length alone (``Oversized``), against the bounds kept here in
one place for review. DDS also keeps the buffers of the largest sample a subscription took, so an
input that received a big oversized message gets a fresh subscription once they stop
(``InputLimits.renew_subscriptions``), and the freed memory goes back to the system.
"""
from __future__ import annotations

import ctypes
import time
from typing import Sequence

from actjepa_ros import observations, safety

MAX_JOINTS = 1_000  # a JointState with more entries than this is refused before it is read
MAX_IMAGE_BYTES = 64 * 2**20  # image_resize: bigger frames are refused before decoding
MAX_PIXEL_BYTES = 16  # image_resize false: a frame of the model's size has at most this per pixel
RENEW_AFTER_S = 1.0  # an input quiet of oversized messages this long gets a fresh subscription
RENEW_MIN_BYTES = 2**20  # ... if one of them was at least this big (DDS kept a buffer that big)
RENEW_CHECK_S = 0.25  # period of the renew_subscriptions timer


class Oversized(safety.SafetyError):
    """A message refused by its length alone, before any conversion; ``nbytes``: about how
    big it was."""

    def __init__(self, message: str, nbytes: int) -> None:
        super().__init__(message)
        self.nbytes = nbytes


def release_free_memory() -> None:
    """Give memory already freed back to the system: glibc keeps large freed blocks (such as
    the buffers of a dropped subscription) for reuse, so without this RSS stays at its peak."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


class InputLimits:
    """PolicyNode's length checks and subscription renewal (a mixin: it uses the node's ``p``,
    ``policy``, ``input_subscriptions``, ``owned_subscriptions``, ``renew_due`` and its rclpy
    methods)."""

    def check_length(self, inp: observations.Input, length: int) -> None:
        """Refuse, unread, a message too long for ``inp`` (an 8 MB array where 39 values are
        expected costs a length check, not a conversion)."""
        if inp.name == "state":
            self.check_vector_length(length, inp.size, f"observation '{inp.key}'")
        if inp.name == "joint_states" and length > MAX_JOINTS:
            raise Oversized(f"JointState with {length} entries; expected at most {MAX_JOINTS} "
                            "(refused unread)", 32 * length)
        if inp.transport is not None:
            self.check_image_length(length, self.policy.obs_spec[inp.key]["shape"], "image")

    @staticmethod
    def check_vector_length(length: int, size: int, what: str) -> None:
        if length != size:
            raise Oversized(f"{length} values; expected {size} for {what}"
                            + (" (refused unread)" if length > size else ""), 8 * length)

    def check_image_length(self, length: int, shape: Sequence[int], what: str) -> None:
        height, width = shape[:2]
        limit = (MAX_IMAGE_BYTES if self.p["image_resize"]
                 else max(height * width * MAX_PIXEL_BYTES, 4096))
        if length > limit:
            raise Oversized(f"{what} message of {length} bytes; expected at most {limit} for "
                            f"the model's {width}x{height} input (refused unread)", length)

    def check_declared_size(self, data: bytes, shape: Sequence[int]) -> None:
        """Refuse, before decoding, a jpeg/png whose header declares more pixels than it may
        have (a small file can inflate to gigabytes)."""
        size = safety.declared_size(data)
        if size is None:
            return  # not jpeg/png, or cut short: the decoder refuses it
        width, height = size
        if self.p["image_resize"]:
            if width * height * 3 > MAX_IMAGE_BYTES:
                raise Oversized(f"compressed image declares {width}x{height} pixels; expected at "
                                f"most {MAX_IMAGE_BYTES // 2**20} MB decoded (refused undecoded)",
                                len(data))
        elif (height, width) != (int(shape[0]), int(shape[1])):
            raise safety.SafetyError(f"compressed image declares {width}x{height} pixels; "
                                     f"expected {shape[1]}x{shape[0]} (or enable image_resize)")

    def note_oversized(self, topic: str, err: Exception) -> None:
        """After an oversized message of at least RENEW_MIN_BYTES on ``topic``, renew its
        subscription once such messages have stopped for RENEW_AFTER_S."""
        if isinstance(err, Oversized) and err.nbytes >= RENEW_MIN_BYTES:
            self.renew_due[topic] = time.monotonic() + RENEW_AFTER_S

    def renew_subscriptions(self) -> None:
        """Timer: an input that received an oversized message gets a new subscription once
        such messages stop (RENEW_AFTER_S): DDS keeps the buffers of the largest sample a
        subscription took, so this gives that memory back."""
        now = time.monotonic()
        for topic, due in list(self.renew_due.items()):
            if now < due or topic not in self.input_subscriptions:
                continue
            del self.renew_due[topic]
            old, args = self.input_subscriptions[topic]
            self.owned_subscriptions.remove(old)
            self.destroy_subscription(old)
            new = self.create_subscription(*args)
            self.owned_subscriptions.append(new)
            self.input_subscriptions[topic] = (new, args)
            self.get_logger().info(f"{topic}: subscription renewed after an oversized message "
                                   "(its buffers released)")
            release_free_memory()
