"""Input streams that stop, resume and drift apart: freshness judged at every use, commands
stop with a stopped stream and resume with its return, a lagging camera never paired with fresh
joint states, the node killed and restarted commands nothing stale and ramps from rest.
"""
from __future__ import annotations

import signal
import time

import numpy as np

from actjepa_ros import safety

from policy_faults import (
    ACTION_DIM,
    LIMIT,
    LOW,
    MARGIN_S,
    MAX_DELTA,
    RATE_HZ,
    REPLY_TIMEOUT_S,
    STALE_S,
    Feed,
    answered,
    reconfigure,
)


# ---- streams that stop, resume, drift apart ---------------------------------------------------
def test_freshness_judges_a_stamp_at_every_use_not_only_at_arrival():
    """The rule under the drift test: a picture that arrived 0.2 s old is stale 0.1 s later
    with a 0.3 s timeout, however recently it arrived; unstamped inputs go by arrival; a stamp
    beyond the timeout in the future is refused (the clocks disagree)."""
    fresh = safety.Freshness(["joints", "image"], STALE_S)
    fresh.mark("joints", 10.0, 100.0)
    fresh.mark("image", 10.0, 99.8)
    assert fresh.problems(10.05, 100.05) == []
    (line,) = fresh.problems(10.15, 100.15)
    assert line.startswith("image: newest valid message stamped 0.350 s ago"), line
    assert fresh.problems(10.15) == []  # without header stamps: arrival only
    fresh.mark("joints", 10.2, 100.2)
    fresh.mark("image", 10.2, 0.0)  # not stamped
    assert fresh.problems(10.4, 100.4) == []
    assert "in the future" in fresh.stamp_problem("image", 101.0, 100.0)
    assert fresh.stamp_problem("image", 100.1, 100.0) is None  # a little clock skew is fine


class Stream:
    """Inputs published at RATE_HZ (the camera at half that); what was sent, when."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.images: list[tuple[float, float]] = []  # (monotonic publish, stamp as monotonic)
        self.last: dict[str, float] = {}

    def run(self, seconds: float, joints: bool = True, image: bool = True,
            image_age=lambda t: 0.0) -> None:
        feed, period = self.feed, 1.0 / RATE_HZ
        start = time.monotonic()
        tick = 0
        while (now := time.monotonic()) - start < seconds:
            if joints:
                feed.joints.publish(feed.joints_msg())
                feed.state.publish(feed.state_msg())
                self.last["joints"] = now
            if image and tick % 2 == 0:
                age = image_age(now - start)
                feed.image.publish(feed.image_msg(LOW, age))
                self.images.append((time.monotonic(), time.monotonic() - age))
                self.last["image"] = now
            tick += 1
            feed.ros.spin_until(lambda: False, max(0.0, start + tick * period - time.monotonic()))

    def newest_picture_age(self, at: float) -> float:
        """How old, at ``at``, the newest picture published before it was (the least any
        picture the node could have used was)."""
        stamps = [stamp for sent, stamp in self.images if sent <= at]
        return at - max(stamps) if stamps else float("inf")


def actions_between(feed: Feed, start: float, stop: float = float("inf")) -> list[float]:
    return [t for t, _ in feed.actions if start <= t <= stop]


def test_a_stream_that_stops_stops_the_commands_and_its_return_resumes_them(feed, restore):
    """realtime: every input stops -> the commands stop within stale_timeout_s; the camera
    alone stops -> the same; one new observation -> commanding again at once."""
    reconfigure(feed, mode="realtime", stale_timeout_s=STALE_S)
    stream = Stream(feed)
    delays, resumes = [], []
    for camera_only in (False, True):
        began = time.monotonic()
        stream.run(1.0)
        assert len(actions_between(feed, began)) >= 10, feed.node.log()[-2000:]
        stopped = time.monotonic()
        stream.run(1.0, joints=camera_only, image=False)  # the camera (and maybe all) stops
        last = max(actions_between(feed, began), default=began)
        delays.append(last - stream.last["image"])
        assert delays[-1] <= STALE_S + MARGIN_S, (camera_only, delays)
        assert not actions_between(feed, stopped + STALE_S + MARGIN_S), camera_only
        resumed = time.monotonic()
        count = len(feed.actions)
        feed.send(LOW)
        assert feed.ros.spin_until(lambda n=count: len(feed.actions) > n, REPLY_TIMEOUT_S)
        resumes.append(feed.actions[count][0] - resumed)
        stream.run(0.3)
    assert "last valid message" in feed.node.log() and "commanding again" in feed.node.log()
    print(f"stream stop -> last command after {[f'{d * 1000:.0f}' for d in delays]} ms "
          f"(stale_timeout_s {STALE_S}); resumed after {[f'{r * 1000:.0f}' for r in resumes]} ms")
    assert max(resumes) < 1.0


def test_a_camera_falling_behind_is_never_paired_with_fresh_joint_states(feed, restore):
    """realtime, header stamps checked: the camera's pictures fall further and further behind
    the joint states (0 -> 0.6 s old), then one 0.2 s old picture arrives and the camera stops
    while the joint states go on. No command is ever built on a picture older than
    stale_timeout_s (was: up to 0.5 s old, judged only on arrival)."""
    reconfigure(feed, mode="realtime", stale_timeout_s=STALE_S)
    stream = Stream(feed)
    began = time.monotonic()
    stream.run(2.0, image_age=lambda t: 0.3 * t)
    drifting = actions_between(feed, began)
    feed.image.publish(feed.image_msg(LOW, 0.2))  # one last picture, already 0.2 s old
    stream.images.append((time.monotonic(), time.monotonic() - 0.2))
    last_picture = time.monotonic()
    stream.run(0.8, image=False)
    feed.ros.spin_for(0.2)
    after_last = actions_between(feed, last_picture)
    ages = [stream.newest_picture_age(t) for t in actions_between(feed, began)]
    assert drifting and after_last, "commands while the pictures were fresh enough"
    assert max(ages) <= STALE_S + MARGIN_S, max(ages)
    assert max(after_last) - last_picture <= STALE_S - 0.2 + MARGIN_S
    assert "stamped" in feed.node.log()
    print(f"drifting camera: {len(drifting)} commands, oldest picture used "
          f"{max(ages) * 1000:.0f} ms (timeout {STALE_S * 1000:.0f} ms); last command "
          f"{(max(after_last) - last_picture) * 1000:.0f} ms after a 200 ms old last picture")


def test_killed_and_restarted_it_commands_nothing_stale_and_ramps_from_rest(feed, node,
                                                                           restore):
    """kill -9 while commanding, start again: nothing is published before new inputs arrive
    (no stale observation or command survives), and the first command ramps from rest
    (max_delta from zero, not the 0.5 the arm was last sent)."""
    reconfigure(feed, mode="realtime", stale_timeout_s=STALE_S)
    stream = Stream(feed)
    began = time.monotonic()
    stream.run(0.6)
    assert actions_between(feed, began)
    np.testing.assert_allclose(feed.actions[-1][1], [LIMIT] * ACTION_DIM)
    node.proc.proc.send_signal(signal.SIGKILL)
    assert node.proc.proc.wait(REPLY_TIMEOUT_S) == -signal.SIGKILL
    node.proc.stop()
    feed.ros.spin_for(0.5)  # what the killed node sent before it died is taken in
    sent_before = len(feed.actions)
    node.proc = node.start()  # its own params: lock-step
    feed.wait_active()
    feed.ros.spin_for(1.0)
    assert len(feed.actions) == sent_before, "a command before any new input"
    # until the new node's subscriptions are matched (the dead one's linger in DDS until their
    # lease runs out, so the publishers' subscription counts cannot tell), inputs may be lost
    assert answered(feed, lambda: feed.send(LOW)), node.log()[-2000:]
    np.testing.assert_allclose(feed.actions[sent_before][1], [MAX_DELTA] * ACTION_DIM)


