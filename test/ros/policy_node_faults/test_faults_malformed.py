"""Malformed messages (hypothesis fuzz) of every input type and of MPC goals, subgoals and goal
images, and oversized goals: never acted on, one line saying why, the goal kept.
"""
from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from std_srvs.srv import Trigger

from actjepa_ros.policy_goals import MAX_SUBGOALS
from actjepa_ros.policy_input_limits import MAX_JOINTS

from policy_faults import (
    HIGH,
    IMAGE,
    JOINTS,
    LOW,
    NODE,
    OVERSIZED,
    REPLY_TIMEOUT_S,
    WIDE_STATE,
    Feed,
    answered,
    observation,
    png,
    reconfigure,
    rss_mb,
    wide_state,
)

# ---- fuzz: malformed messages of every input type ----------------------------------------------
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
finite = st.floats(-3.0, 3.0, allow_nan=False)
bad_float = st.sampled_from([float("nan"), float("inf"), float("-inf")])
extra_names = st.lists(st.text(alphabet="abxyz_", min_size=1, max_size=6), max_size=3)
FAR_S = st.floats(1.5, 1e6)  # beyond the 1.0 s stale timeout, either way


class Quiet:
    """A drawn message whose repr stays short in hypothesis' reports."""

    def __init__(self, msg) -> None:
        self.msg = msg

    def __repr__(self) -> str:
        sizes = {f: len(getattr(self.msg, f)) for f in ("name", "position", "data")
                 if hasattr(self.msg, f)}
        extra = {f: getattr(self.msg, f) for f in ("height", "width", "step", "encoding",
                                                     "format") if hasattr(self.msg, f)}
        return f"<{type(self.msg).__name__} lengths {sizes} {extra}>"


def stamp_at(feed: Feed, age_s: float) -> Time:
    return feed.stamp(age_s)


@st.composite
def bad_joint_states(draw, feed: Feed):
    kind = draw(st.sampled_from(["missing", "lengths", "nonfinite", "stale", "future",
                                 "oversized"]))
    names = list(JOINTS) + draw(extra_names)
    positions = draw(st.lists(finite, min_size=len(names), max_size=len(names)))
    age = 0.0
    if kind == "missing":
        drop = set(draw(st.lists(st.sampled_from(JOINTS), min_size=1, max_size=4)))
        kept = [i for i, n in enumerate(names) if n not in drop]
        names, positions = [names[i] for i in kept], [positions[i] for i in kept]
    elif kind == "lengths":
        cut = draw(st.integers(0, len(names) - 1))
        positions = positions[:cut] + draw(st.lists(finite, max_size=1)) * (cut == 0)
        if len(positions) == len(names):
            positions = positions[:-1]
    elif kind == "nonfinite":
        positions[draw(st.integers(0, len(JOINTS) - 1))] = draw(bad_float)
    elif kind == "stale":
        age = draw(FAR_S)
    elif kind == "future":
        age = -draw(FAR_S)
    else:
        extra = draw(st.integers(MAX_JOINTS - len(names) + 1, MAX_JOINTS + 200))
        names += [f"x{i}" for i in range(extra)]
        positions += [0.0] * extra
    msg = JointState(name=names, position=positions)
    msg.header.stamp = stamp_at(feed, age)
    return kind, Quiet(msg)


@st.composite
def bad_vectors(draw):
    kind = draw(st.sampled_from(["length", "nonfinite", "oversized"]))
    if kind == "length":
        size = draw(st.integers(0, 80).filter(lambda n: n != WIDE_STATE))
        return kind, Quiet(Float64MultiArray(data=draw(st.lists(finite, min_size=size,
                                                                max_size=size))))
    if kind == "nonfinite":
        data = draw(st.lists(finite, min_size=WIDE_STATE, max_size=WIDE_STATE))
        data[draw(st.integers(0, WIDE_STATE - 1))] = draw(bad_float)
        return kind, Quiet(Float64MultiArray(data=data))
    # under 1 MiB: a bigger one renews the subscription (test_an_oversized_input_...)
    return kind, Quiet(Float64MultiArray(data=[0.0] * draw(st.integers(10_000, 100_000))))


IMAGE_FAULTS = ("encoding", "bytes", "step", "empty", "size", "oversized", "stale", "future")


@st.composite
def bad_images(draw, feed: Feed, kinds: tuple[str, ...] = IMAGE_FAULTS):
    kind = draw(st.sampled_from(kinds))
    h, w = IMAGE[:2]
    msg = Image(height=h, width=w, encoding="rgb8", step=w * 3, data=bytes(h * w * 3))
    if kind == "encoding":
        msg.encoding = draw(st.sampled_from(["yuv422", "bayer_rggb8", "16UC1", "rgb16", "",
                                             "jpeg", "8UC3x"]))
    elif kind == "bytes":
        msg.data = bytes(draw(st.integers(0, h * w * 3 * 2).filter(lambda n: n != h * w * 3)))
    elif kind == "step":
        msg.step = draw(st.integers(0, w * 3 - 1))
        msg.data = bytes(msg.step * h)
    elif kind == "empty":
        msg.height, msg.width = draw(st.sampled_from([(0, w), (h, 0), (0, 0)]))
        msg.step, msg.data = msg.width * 3, b""
    elif kind == "size":
        msg.height, msg.width = draw(st.tuples(st.integers(1, 40), st.integers(1, 40)).filter(
            lambda s: s != (h, w)))
        msg.step, msg.data = msg.width * 3, bytes(msg.width * 3 * msg.height)
    elif kind == "oversized":
        msg.height = msg.width = draw(st.integers(40, 300))
        msg.step, msg.data = msg.width * 3, bytes(msg.width * 3 * msg.height)
    msg.header.stamp = stamp_at(feed, {"stale": draw(FAR_S), "future": -draw(FAR_S)}.get(
        kind, 0.0))
    return kind, Quiet(msg)


@st.composite
def bad_compressed(draw, feed: Feed):
    kind = draw(st.sampled_from(["random", "truncated", "empty", "depth", "size"]))
    good = png(observation(LOW)["image"])
    fmt, data = "rgb8; png compressed bgr8", good
    if kind == "random":
        data = draw(st.binary(min_size=1, max_size=2000))
    elif kind == "truncated":
        data = good[:draw(st.integers(0, len(good) - 13))]  # without the IEND chunk at least
    elif kind == "empty":
        data = b""
    elif kind == "depth":
        fmt = "16UC1; compressedDepth png"
    else:
        side = draw(st.integers(1, 40).filter(lambda n: n != IMAGE[0]))
        data = png(np.zeros((side, side, 3), np.uint8))
    msg = CompressedImage(format=fmt, data=data)
    msg.header.stamp = stamp_at(feed, 0.0)
    return kind, Quiet(msg)


# one input at a time (a policy that takes only it): lock-step answers each good message with
# exactly one action, so "no action from the bad one" is a count, whatever the timing
SINGLE_INPUT = {
    "joints": ("joints", {"joint_states_key": "state", "state_key": "", "image_key": ""}),
    "state": ("wide", {"joint_states_key": "", "image_key": ""}),
    "image": ("image", {"joint_states_key": "", "state_key": "", "image_key": "image"}),
    "compressed": ("image", {"joint_states_key": "", "state_key": "", "image_key": "image",
                             "image_transport": "compressed"}),
}


def single_input(feed: Feed, policy_files: dict, which: str):
    """Reconfigure the node for ``which`` alone; returns (publisher, good message maker)."""
    policy, changes = SINGLE_INPUT[which]
    reconfigure(feed, checkpoint=str(policy_files[policy]), **changes)
    publisher, good = {
        "joints": (feed.joints, lambda: feed.joints_msg(LOW)),
        "state": (feed.state, lambda: wide_state(0.0)),
        "image": (feed.image, lambda: feed.image_msg(LOW)),
        "compressed": (feed.compressed, lambda: feed.compressed_msg(LOW)),
    }[which]
    assert answered(feed, lambda: publisher.publish(good()))
    return publisher, good


def refused(feed: Feed, publisher, good, kinds: dict, kind: str, msg) -> None:
    """The bad message gives no action; the good one after it exactly one."""
    kinds[kind] = kinds.get(kind, 0) + 1
    count = len(feed.actions)
    publisher.publish(msg.msg)
    feed.ros.spin_for(0.3)
    assert len(feed.actions) == count, f"an action from a bad {kind} message"
    publisher.publish(good())
    assert feed.ros.spin_until(lambda: len(feed.actions) > count, REPLY_TIMEOUT_S), \
        (kind, feed.node.log()[-2000:])
    feed.ros.spin_for(0.05)
    assert len(feed.actions) == count + 1, f"an action from a bad {kind} message"


def no_traceback(feed: Feed, kinds: dict) -> None:
    log = feed.node.log()
    assert feed.node.proc.alive() and "Traceback" not in log, log[-3000:]
    print(f"fuzz cases by kind: {dict(sorted(kinds.items()))}")


STRATEGIES = {"joints": lambda feed: bad_joint_states(feed), "state": lambda feed: bad_vectors(),
              "image": lambda feed: bad_images(feed),
              "compressed": lambda feed: bad_compressed(feed)}


@pytest.mark.parametrize("which", list(STRATEGIES))
def test_fuzz_malformed_messages_of_every_input_type_never_act(feed, policy_files, restore,
                                                              which):
    """JointState (missing joints, unequal lengths, NaN/Inf, stale or future stamps, too many
    entries), Float64MultiArray (wrong length, NaN/Inf, far too long), Image (unknown encoding,
    sizes that disagree with the data, empty, another size, too big, stamps), CompressedImage
    (random bytes, truncated, empty, a depth image, another size): never an action from one,
    never a traceback, the next good message acted on."""
    publisher, good = single_input(feed, policy_files, which)
    kinds: dict = {}

    @FUZZ
    @given(st.data())
    def case(data):
        kind, msg = data.draw(STRATEGIES[which](feed), label="message kind")
        refused(feed, publisher, good, kinds, f"{which}:{kind}", msg)

    case()
    no_traceback(feed, kinds)


# ---- MPC goals: malformed and oversized goal messages ------------------------------------------
GOAL_TOPICS = {"goal": "/fault/goal", "subgoals": "/fault/subgoals",
               "goal_image": "/fault/goal_image"}
PLAN_TOPIC = f"{NODE}/plan"
GOAL_THROTTLE_S = 0.01  # the smallest warn_throttle_s: every refused goal message logs its line
REFUSAL = re.compile(r"(goal|subgoals) refused on ")


class Goals:
    """The node with a small MPC policy in lock-step and one kind of goal input. After ~/reset
    the MPC is deterministic, so ``probe`` (reset, one observation -> the action and the planned
    cost) tells which goal is in force: a bad goal message must leave it unchanged."""

    def __init__(self, feed: Feed, policy_files: dict, which: str) -> None:
        self.feed, ros = feed, feed.ros
        if which == "goal_image":
            reconfigure(feed, checkpoint=str(policy_files["mpc_image"]), joint_states_key="",
                        state_key="", image_key="image", goal_image_topic=GOAL_TOPICS[which],
                        warn_throttle_s=GOAL_THROTTLE_S)
            self.observe = lambda: feed.image.publish(feed.image_msg(LOW))
        else:
            reconfigure(feed, checkpoint=str(policy_files["mpc"]), joint_states_key="",
                        image_key="", goal_topic=GOAL_TOPICS["goal"],
                        subgoals_topic=GOAL_TOPICS["subgoals"], warn_throttle_s=GOAL_THROTTLE_S)
            self.observe = lambda: feed.state.publish(wide_state(0.0))
        self.publisher = ros.publisher(Image if which == "goal_image" else Float64MultiArray,
                                       GOAL_TOPICS[which])
        self.plans = ros.collect(Float64MultiArray, PLAN_TOPIC)

    def set(self, msg, line: str, publisher=None) -> None:
        """Publish a good goal message until the node logs ``line`` (a renewed or new
        subscription must be discovered first)."""
        log, publisher = self.feed.node.log, publisher or self.publisher
        count = log().count(line)
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            publisher.publish(msg)
            if self.feed.ros.spin_until(lambda: log().count(line) > count, 0.25):
                return
        raise AssertionError(f"no '{line}': {log()[-2000:]}")

    def probe(self) -> tuple[list[float], list[float]]:
        """~/reset, then one observation: (the action, [subgoal index, planned cost])."""
        ros, feed = self.feed.ros, self.feed
        assert ros.call(Trigger, f"{NODE}/reset", Trigger.Request()).success
        actions, plans = len(feed.actions), len(self.plans)
        assert answered(feed, self.observe), feed.node.log()[-2000:]
        assert ros.spin_until(lambda: len(self.plans) > plans, REPLY_TIMEOUT_S)
        ros.spin_for(0.2)  # a second observation sent before the answer: its action lands now
        return feed.actions[actions][1].tolist(), list(self.plans[plans].data)

    def refused(self, msg, kind: str, publisher=None) -> str:
        """Publish a bad goal message: exactly one log line says why, no action, no traceback;
        returns that line."""
        log, feed = self.feed.node.log, self.feed
        start, actions = len(log()), len(feed.actions)
        (publisher or self.publisher).publish(msg)
        assert feed.ros.spin_until(lambda: REFUSAL.search(log()[start:]), REPLY_TIMEOUT_S), \
            (kind, log()[-2000:])
        feed.ros.spin_for(0.05)
        lines = log()[start:].splitlines()
        refusals = [line for line in lines if REFUSAL.search(line)]
        assert len(refusals) == 1, (kind, lines)  # one line per message
        assert all(line.startswith("[") for line in lines), (kind, lines)  # one-line records
        assert len(feed.actions) == actions, f"an action from a bad {kind} goal"
        return refusals[0]


def vector(values, dims: list[tuple[int, int]] = ()) -> Float64MultiArray:
    msg = Float64MultiArray(data=[float(v) for v in values])
    msg.layout.dim = [MultiArrayDimension(label=f"d{i}", size=size, stride=stride)
                      for i, (size, stride) in enumerate(dims)]
    return msg


GOOD_GOAL = [1.0] * WIDE_STATE
huge = st.floats(1e39, 1e308) | st.floats(-1e308, -1e39)  # finite, but not in float32


@st.composite
def bad_goals(draw):
    kind = draw(st.sampled_from(["length", "empty", "nonfinite", "float32", "oversized"]))
    if kind in ("length", "empty"):
        size = 0 if kind == "empty" else draw(st.integers(1, 80).filter(
            lambda n: n != WIDE_STATE))
        return kind, Quiet(vector(draw(st.lists(finite, min_size=size, max_size=size))))
    if kind == "oversized":  # under 1 MiB (a bigger one renews the subscription: the size test)
        return kind, Quiet(vector([0.0] * draw(st.integers(10_000, 100_000))))
    data = draw(st.lists(finite, min_size=WIDE_STATE, max_size=WIDE_STATE))
    data[draw(st.integers(0, WIDE_STATE - 1))] = draw(bad_float if kind == "nonfinite" else huge)
    return kind, Quiet(vector(data))


@st.composite
def bad_subgoals(draw):
    kind = draw(st.sampled_from(["empty", "ragged", "nonfinite", "float32", "rows", "layout"]))
    k = WIDE_STATE
    if kind == "empty":
        return kind, Quiet(vector([]))
    if kind == "ragged":  # not a whole number of rows
        size = draw(st.integers(1, 6 * k).filter(lambda n: n % k))
        return kind, Quiet(vector(draw(st.lists(finite, min_size=size, max_size=size))))
    if kind == "rows":  # whole rows, too many of them
        return kind, Quiet(vector([0.0] * k * draw(st.integers(MAX_SUBGOALS + 1, 2000))))
    rows = draw(st.integers(1, 4))
    data = draw(st.lists(finite, min_size=rows * k, max_size=rows * k))
    if kind == "layout":  # M x K' (K' not the state size) though the count is whole rows
        width = draw(st.sampled_from([d for d in range(1, rows * k + 1)
                                      if (rows * k) % d == 0 and d != k]))
        height = draw(st.sampled_from([rows * k // width, rows * k // width + 1]))
        return kind, Quiet(vector(data, [(height, height * width), (width, width)]))
    data[draw(st.integers(0, rows * k - 1))] = draw(bad_float if kind == "nonfinite" else huge)
    return kind, Quiet(vector(data))


@st.composite
def bad_goal_images(draw, feed: Feed):
    # stamps do not matter for a goal (a target, not a measurement): not among the faults
    return draw(bad_images(feed, ("encoding", "bytes", "step", "empty", "size", "oversized")))


GOAL_INPUTS = {  # which: (bad message strategy, a good message, the line it logs)
    "goal": (lambda feed: bad_goals(), lambda: vector(GOOD_GOAL), "new goal set"),
    "subgoals": (lambda feed: bad_subgoals(),
                 lambda: vector([0.5] * WIDE_STATE + GOOD_GOAL), "2 subgoals set"),
    "goal_image": (lambda feed: bad_goal_images(feed), lambda: Image(
        height=IMAGE[0], width=IMAGE[1], encoding="rgb8", step=IMAGE[1] * 3,
        data=observation(HIGH)["image"].tobytes()), "new goal set"),
}


@pytest.mark.parametrize("which", list(GOAL_INPUTS))
def test_fuzz_malformed_goals_never_act_and_never_change_the_goal(feed, policy_files, restore,
                                                                  which):
    """MPC goal (wrong length, empty, NaN/Inf, beyond float32, 10k-100k values), subgoals
    (empty, not whole rows, NaN/Inf, beyond float32, more than MAX_SUBGOALS rows, a layout whose
    rows are not the state size) and goal image (unknown encoding, sizes that disagree with the
    data, empty, another size, too big): each refused with exactly one log line, never an
    action from it, never a traceback, and the goal in force unchanged (after ~/reset the same
    observation gives the very same action and planned cost)."""
    goals = Goals(feed, policy_files, which)
    strategy, good, line = GOAL_INPUTS[which]
    goals.set(good(), line)
    reference = goals.probe()
    kinds: dict = {}

    @FUZZ
    @given(st.data())
    def case(data):
        kind, msg = data.draw(strategy(feed), label="message kind")
        kinds[f"{which}:{kind}"] = kinds.get(f"{which}:{kind}", 0) + 1
        refusal = goals.refused(msg.msg, kind)
        assert "keeping the previous goal" in refusal, refusal
        assert goals.probe() == reference, f"a bad {kind} message changed the goal"

    case()
    no_traceback(feed, kinds)


def test_an_oversized_goal_or_subgoals_is_refused_unread_and_the_goal_kept(feed, policy_files,
                                                                          restore):
    """8 MB goals (1,000,000 values where 39 are expected) and 8 MB subgoals (25,641 whole rows,
    more than MAX_SUBGOALS): refused by their length before any conversion, one line each; no
    action (before any good goal: none at all); the goal in force unchanged, the node answering
    at once (was: the subgoals converted and encoded one by one for seconds, then taken as the
    goal), and its memory back to the baseline once the goal subscription is renewed."""
    goals = Goals(feed, policy_files, "goal")
    subgoals = feed.ros.publisher(Float64MultiArray, GOAL_TOPICS["subgoals"])
    big = vector([0.0] * OVERSIZED)
    line = goals.refused(big, "oversized, before any goal")
    assert f"{OVERSIZED} values; expected {WIDE_STATE} for goal 'state' (refused unread); " \
           "no goal yet: not commanding" in line, line
    count = len(feed.actions)
    for _ in range(3):
        goals.observe()
        feed.ros.spin_for(0.2)
    assert len(feed.actions) == count and "MPC policy has no goal" in feed.node.log()

    goals.set(vector(GOOD_GOAL), "new goal set")
    reference = goals.probe()
    goals.set(vector([-1.0] * WIDE_STATE), "new goal set")  # another goal: the probe sees it
    assert goals.probe() != reference, "the probe cannot tell goals apart"
    goals.set(vector(GOOD_GOAL), "new goal set")
    assert goals.probe() == reference

    pid = feed.node.proc.proc.pid
    feed.ros.spin_for(1.0)
    baseline = peak = rss_mb(pid)
    renewed = feed.node.log().count("subscription renewed")
    for _ in range(3):
        goals.refused(big, "oversized goal")
        peak = max(peak, rss_mb(pid))
    rows = OVERSIZED // WIDE_STATE
    sent = time.monotonic()
    line = goals.refused(vector([0.0] * rows * WIDE_STATE), "oversized subgoals", subgoals)
    assert f"({rows} subgoals of {WIDE_STATE}); expected at most {MAX_SUBGOALS} subgoals " \
           "(refused unread)" in line, line
    assert goals.probe() == reference, "an oversized message changed the goal"
    answer_s = time.monotonic() - sent
    # both subscriptions (goal, subgoals) renewed: the buffers DDS kept for 8 MB samples freed
    assert feed.ros.spin_until(
        lambda: feed.node.log().count("subscription renewed") >= renewed + 2,
        REPLY_TIMEOUT_S), feed.node.log()[-2000:]
    feed.ros.spin_for(1.0)
    after = rss_mb(pid)
    # the largest number of subgoals is still taken
    goals.set(vector([0.5] * WIDE_STATE * (MAX_SUBGOALS - 1) + GOOD_GOAL),
              f"{MAX_SUBGOALS} subgoals set", subgoals)
    print(f"oversized goals: refused unread; after 8 MB of subgoals the goal was unchanged and "
          f"the next observation answered within {answer_s * 1000:.0f} ms; RSS baseline "
          f"{baseline:.1f} MB, peak {peak:.1f} MB, after {after:.1f} MB")
    assert after - baseline < 4.0, (baseline, peak, after)
    assert answer_s < 2.0, answer_s


