"""An oversized input (an 8 MB array where 39 values are expected, a small png that would
decode to hundreds of MB) is refused by its length or declared size, before converting or
decoding, and the memory DDS held for it is given back.
"""
from __future__ import annotations

from sensor_msgs.msg import CompressedImage

from policy_faults import (
    LOW,
    OVERSIZED,
    REPLY_TIMEOUT_S,
    WIDE_STATE,
    answered,
    reconfigure,
    rss_mb,
    wide_state,
)

# ---- oversized input ------------------------------------------------------------------------
OVERSIZED_MESSAGES = 10


def test_an_oversized_input_is_refused_unread_and_memory_returns(feed, policy_files, restore):
    """An 8 MB Float64MultiArray where 39 values are expected: refused by its length before
    any conversion (one line), no action, and the node's memory back to its baseline."""
    reconfigure(feed, checkpoint=str(policy_files["wide"]), joint_states_key="", image_key="")
    pid = feed.node.proc.proc.pid
    count = len(feed.actions)
    for _ in range(20):  # warm: the normal path's buffers exist before the baseline
        feed.state.publish(wide_state(0.0))
        feed.ros.spin_for(0.02)
    assert feed.ros.spin_until(lambda: len(feed.actions) >= count + 20, REPLY_TIMEOUT_S)
    feed.ros.spin_for(1.0)
    baseline = rss_mb(pid)
    count = len(feed.actions)
    big = wide_state(0.0, OVERSIZED)
    peak = baseline
    for _ in range(OVERSIZED_MESSAGES):
        feed.state.publish(big)
        feed.ros.spin_for(0.2)
        peak = max(peak, rss_mb(pid))
    assert feed.ros.spin_until(
        lambda: f"{OVERSIZED} values; expected {WIDE_STATE}" in feed.node.log(), REPLY_TIMEOUT_S)
    assert feed.ros.spin_until(lambda: "subscription renewed" in feed.node.log(),
                               REPLY_TIMEOUT_S), feed.node.log()[-2000:]
    feed.ros.spin_for(1.0)
    after = rss_mb(pid)
    assert len(feed.actions) == count, "an action from an oversized input"
    assert answered(feed, lambda: feed.state.publish(wide_state(0.0)))
    print(f"oversized input: RSS baseline {baseline:.1f} MB, peak {peak:.1f} MB, "
          f"after {after:.1f} MB")
    assert after - baseline < 4.0, (baseline, peak, after)


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG of ``width`` x ``height`` black pixels: a few hundred KB that decode to
    width * height * 3 bytes."""
    import struct
    import zlib

    packer = zlib.compressobj(9)
    row = bytes(1 + width * 3)  # filter byte + pixels
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


BOMB_SIDE = 8000  # 8000 x 8000 x 3 = 192 MB decoded, from about 190 KB


def test_a_compressed_image_that_inflates_to_hundreds_of_mb_is_refused_undecoded(
        feed, policy_files, restore):
    """A 190 KB PNG declaring 8000x8000 pixels (192 MB decoded; image_resize on, so a smaller
    one would be accepted and resized): refused by its header before decoding, no action, no
    memory spike (was: decoded in about 1.2 s into 192 MB, resized, acted on)."""
    reconfigure(feed, checkpoint=str(policy_files["image"]), joint_states_key="", state_key="",
                image_key="image", image_transport="compressed", image_resize=True)
    feed.transport = "compressed"
    try:
        good = lambda: feed.compressed_msg(LOW)  # noqa: E731
        assert answered(feed, lambda: feed.compressed.publish(good()))
        bomb = CompressedImage(format="rgb8; png compressed bgr8", data=png_bomb(BOMB_SIDE,
                                                                                BOMB_SIDE))
        pid = feed.node.proc.proc.pid
        feed.ros.spin_for(0.5)
        baseline = peak = rss_mb(pid)
        count = len(feed.actions)
        for _ in range(3):
            bomb.header.stamp = feed.stamp()
            feed.compressed.publish(bomb)
            for _ in range(5):
                feed.ros.spin_for(0.1)
                peak = max(peak, rss_mb(pid))
        assert f"declares {BOMB_SIDE}x{BOMB_SIDE} pixels" in feed.node.log()
        assert len(feed.actions) == count, "an action from a decompression bomb"
        assert answered(feed, lambda: feed.compressed.publish(good()))
    finally:
        feed.transport = "raw"
    print(f"png bomb ({len(bomb.data) // 1024} KB -> {BOMB_SIDE}x{BOMB_SIDE}): RSS baseline "
          f"{baseline:.1f} MB, peak {peak:.1f} MB")
    assert peak - baseline < 20.0, (baseline, peak)


