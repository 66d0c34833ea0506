"""A burst of 1,000 messages per second: memory and latency stay flat (RSS and latency
sampled; the long soak is ``slow``).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from policy_faults import (
    Feed,
    answered,
    reconfigure,
    rss_mb,
    wide_state,
)

# ---- a burst: 1,000 messages per second --------------------------------------------------------
BURST_RATE = 1000
BATCH = 10  # messages per 10 ms


def burst(feed: Feed, policy_files: dict, seconds: float) -> dict:
    """Publish the 39-value state at BURST_RATE for ``seconds`` (lock-step: the node tries to
    answer each), sampling the node's RSS every 0.5 s and its ~/latency."""
    reconfigure(feed, checkpoint=str(policy_files["wide"]), joint_states_key="", image_key="",
                input_qos="sensor_data")
    assert answered(feed, lambda: feed.state.publish(wide_state(0.0)))
    pid = feed.node.proc.proc.pid
    count, latencies = len(feed.actions), len(feed.latency)
    rss = [(0.0, rss_mb(pid))]
    msg = wide_state(0.0)
    start = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - start) < seconds:
        while sent < (elapsed + 0.01) * BURST_RATE:
            msg.data[0] = float(sent % 2)
            feed.state.publish(msg)
            sent += 1
        if elapsed - rss[-1][0] >= 0.5:
            rss.append((elapsed, rss_mb(pid)))
        feed.ros.spin_for(0.005)
    feed.ros.spin_for(1.0)
    rss.append((time.monotonic() - start, rss_mb(pid)))
    assert answered(feed, lambda: feed.state.publish(wide_state(0.0)))
    lat = np.array([m.data for m in feed.latency[latencies:]])
    return {"seconds": seconds, "sent": sent, "rate": sent / seconds,
            "answered": len(feed.actions) - count, "rss": rss,
            "latency_ms": {p: float(np.percentile(lat, p)) for p in (50, 99, 100)},
            "alive": feed.node.proc.alive()}


def report(stats: dict) -> str:
    rss = [r for _, r in stats["rss"]]
    lat = stats["latency_ms"]
    return (f"burst {stats['seconds']:.0f} s at {stats['rate']:.0f} msg/s: {stats['answered']} "
            f"answered; RSS {rss[0]:.1f} -> {rss[-1]:.1f} MB (max {max(rss):.1f}); latency "
            f"p50 {lat[50]:.2f} ms, p99 {lat[99]:.2f} ms, max {lat[100]:.2f} ms")


def test_a_burst_of_1000_messages_per_second_keeps_memory_and_latency_flat(feed, policy_files,
                                                                          restore):
    stats = burst(feed, policy_files, seconds=3.0)
    print(report(stats))
    rss = [r for _, r in stats["rss"]]
    assert stats["alive"] and stats["rate"] > 0.8 * BURST_RATE and stats["answered"] > 100
    assert rss[-1] - rss[0] < 30.0 and stats["latency_ms"][99] < 250.0, report(stats)


@pytest.mark.slow
def test_soak_1000_messages_per_second(feed, policy_files, restore):
    """``make test-long``: SOAK_S (default 180) seconds of the burst; after a 10 s warm-up the
    RSS must stay flat."""
    seconds = float(os.environ.get("SOAK_S", "180"))
    stats = burst(feed, policy_files, seconds=seconds)
    print(report(stats))
    warm = [r for t, r in stats["rss"] if t >= 10.0]
    assert stats["alive"] and warm and max(warm) - warm[0] < 5.0, report(stats)
    assert stats["latency_ms"][99] < 50.0, report(stats)


