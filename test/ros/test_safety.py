"""The policy node's last gate (actjepa_ros.safety): limits, rate bound, finiteness, freshness."""
from __future__ import annotations

import numpy as np
import pytest

from actjepa_ros.safety import (
    ActionFilter,
    ActionLimits,
    Freshness,
    SafetyError,
    as_limit_vector,
    check_finite,
)


def test_a_scalar_limit_applies_to_every_dimension():
    assert as_limit_vector("action_min", -0.5, 3).tolist() == [-0.5, -0.5, -0.5]
    assert as_limit_vector("action_min", [-0.5], 3).tolist() == [-0.5, -0.5, -0.5]
    assert as_limit_vector("action_min", [1, 2, 3], 3).tolist() == [1, 2, 3]


@pytest.mark.parametrize("low, high, delta, fragment", [
    ([-1, -1], [1, 1, 1], 1.0, "action_min has 2 values; expected 1 or 3"),
    (-1, [1, 0, -2], 1.0, "exceeds action_max"),
    (-1, 1, 0.0, "max_delta"),
    (-1, 1, -1.0, "max_delta"),
    (-np.inf, 1, 1.0, "must be finite"),
    (np.nan, 1, 1.0, "contains NaN"),
])
def test_bad_limits_are_refused_with_the_reason(low, high, delta, fragment):
    with pytest.raises(SafetyError, match=fragment):
        ActionLimits.build(3, low, high, delta)


def test_actions_are_clipped_into_the_limits():
    limits = ActionLimits.build(3, [-1, -0.5, 0], [1, 0.5, 2])
    safe = ActionFilter(limits)([5.0, -5.0, 1.0])
    assert safe.tolist() == [1.0, -0.5, 1.0]


def test_change_per_tick_is_bounded_and_the_first_action_ramps_from_zero():
    limits = ActionLimits.build(2, -1, 1, [0.25, 0.5])
    gate = ActionFilter(limits, start=np.zeros(2))
    out = [gate(np.array([1.0, -1.0])) for _ in range(5)]
    assert out[0].tolist() == [0.25, -0.5]
    assert out[-1].tolist() == [1.0, -1.0]
    steps = np.abs(np.diff(np.vstack([np.zeros(2), *out]), axis=0))
    assert (steps <= np.array([0.25, 0.5]) + 1e-12).all()
    gate.reset()  # back to rest: ramps again
    assert gate(np.array([1.0, 1.0])).tolist() == [0.25, 0.5]


def test_without_a_start_only_the_limits_bound_the_first_action():
    gate = ActionFilter(ActionLimits.build(1, -2, 2, 0.1), start=None)
    assert gate(np.array([1.5])).tolist() == [1.5]
    assert gate(np.array([-1.5])).tolist() == [1.4]


def test_reset_can_ramp_from_a_given_start_such_as_the_current_joint_positions():
    gate = ActionFilter(ActionLimits.build(2, -2, 2, 0.1), start=None)
    gate.reset(np.array([0.5, -0.5]))
    assert gate(np.array([2.0, 2.0])).tolist() == [0.6, -0.4]
    with pytest.raises(SafetyError, match="ramp start"):
        gate.reset(np.array([np.nan, 0.0]))
    with pytest.raises(SafetyError, match="ramp start"):
        gate.reset(np.zeros(3))


def test_tightened_limits_win_over_the_rate_bound():
    gate = ActionFilter(ActionLimits.build(1, -1, 1, 0.1), start=None)
    gate(np.array([1.0]))
    gate.limits = ActionLimits.build(1, -0.2, 0.2, 0.1)
    assert gate(np.array([1.0])).tolist() == [0.2]  # not 0.9: the new box holds at once


@pytest.mark.parametrize("action", [[np.nan, 0.0], [0.0, np.inf], [0.0, -np.inf]])
def test_non_finite_actions_are_refused_and_not_remembered(action):
    gate = ActionFilter(ActionLimits.build(2, -1, 1, 0.5), start=np.zeros(2))
    with pytest.raises(SafetyError, match="not finite"):
        gate(np.array(action))
    assert gate.previous.tolist() == [0.0, 0.0]


def test_wrongly_sized_actions_are_refused():
    gate = ActionFilter(ActionLimits.build(2, -1, 1))
    with pytest.raises(SafetyError, match="3 values; expected 2"):
        gate(np.zeros(3))


def test_published_actions_never_leave_the_limits_whatever_the_policy_says():
    rng = np.random.default_rng(0)
    limits = ActionLimits.build(4, [-1, -0.5, 0, -2], [1, 0.5, 0.1, 2], [0.2, 0.1, 0.05, 1.0])
    gate = ActionFilter(limits, start=np.zeros(4))
    previous = np.zeros(4)
    for _ in range(500):
        out = gate(rng.normal(scale=10.0, size=4))
        assert np.isfinite(out).all()
        assert (out >= limits.low).all() and (out <= limits.high).all()
        assert (np.abs(out - previous) <= limits.max_delta + 1e-12).all()
        previous = out


def test_check_finite_names_the_key():
    check_finite({"state": np.zeros(3), "image": np.zeros((2, 2, 3), np.uint8)})
    with pytest.raises(SafetyError, match="'state' contains NaN"):
        check_finite({"image": np.zeros((2, 2, 3), np.uint8), "state": np.array([0, np.nan])})


def test_freshness_reports_missing_quiet_and_old_stamped_inputs():
    fresh = Freshness(["state", "image"], timeout_s=0.5)
    assert [p.split(":")[0] for p in fresh.problems(10.0)] == ["state", "image"]
    fresh.mark("state", 10.0)
    fresh.mark("image", 10.0)
    assert fresh.problems(10.4) == []
    problems = fresh.problems(10.6)
    assert len(problems) == 2 and "0.600 s ago" in problems[0]
    fresh.forget("image")
    assert fresh.problems(10.1) == ["image: no valid message yet"]
    assert fresh.stamp_problem("image", stamp_s=9.0, now_s=10.0).startswith("image: message "
                                                                             "stamped 1.000 s")
    assert fresh.stamp_problem("image", stamp_s=9.8, now_s=10.0) is None
    assert fresh.stamp_problem("image", stamp_s=0.0, now_s=10.0) is None  # not stamped


def test_freshness_needs_a_positive_timeout():
    with pytest.raises(SafetyError, match="stale_timeout_s"):
        Freshness(["state"], 0.0)
