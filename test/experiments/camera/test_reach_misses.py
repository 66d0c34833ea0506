"""reach_misses sorts a miss by where the tool centre came and where it ended."""
from __future__ import annotations

from experiments.camera.reach_misses import MISS_KINDS, NEAR, miss_kind


def test_a_miss_is_short_passed_or_never_near_by_the_tool_centre_s_closest_and_last_distance():
    near, far = NEAR - 0.01, NEAR + 0.2
    assert [miss_kind({"tool_min": near, "tool_end": near}),
            miss_kind({"tool_min": near, "tool_end": far}),
            miss_kind({"tool_min": far, "tool_end": far})] == list(MISS_KINDS)
