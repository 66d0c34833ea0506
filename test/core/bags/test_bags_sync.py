"""Streams -> control ticks: which state pairs with which command whatever the latency, header
stamps, episodes cut at gaps, stale streams and marker topics, and success flags."""
from __future__ import annotations

import numpy as np
import pytest

from actjepa_core.bags import convert_bags

from bag_factory import (
    ACTION,
    ACTION_DIM,
    ARRIVAL,
    JOINTS,
    PERIOD,
    STATE,
    T0,
    Msgs,
    action_of,
    arm_records,
    assert_state_action_pairs,
    config,
    config_file,
    run_convert,
    step_of_state,
    write_bag,
)


# ---- pairing and timing ----------------------------------------------------------------------
@pytest.mark.parametrize("latency", [0.1, 0.5, 0.9])
def test_each_state_pairs_with_the_command_that_reacted_to_it_whatever_its_latency(tmp_path,
                                                                                   latency):
    """A simulator that renders before publishing delivers step k's state late, just before
    the command for it; the pairing must not slip by one."""
    msgs = Msgs()
    records = [(topic, t if topic == ACTION else t - ARRIVAL + round(latency * PERIOD), msg)
               for topic, t, msg in arm_records(msgs, 30)]
    bag = write_bag(tmp_path / "bag", records)
    (episode,) = convert_bags([bag], config()).episodes
    assert episode.num_steps >= 27
    assert_state_action_pairs(episode)
    if latency > 0.5:  # the latest command at the next tick is one too far: not the default
        (late,) = convert_bags([bag], config(action={"at": "next_tick"})).episodes
        k = step_of_state(late.obs["state"][0])
        np.testing.assert_array_equal(late.actions[0], np.float32(action_of(k + 2)))


def test_action_at_tick_takes_the_latest_command_instead(tmp_path):
    bag = write_bag(tmp_path / "bag", arm_records(Msgs(), 20))
    (episode,) = convert_bags([bag], config(action={"at": "tick"})).episodes
    for row, action in zip(episode.obs["state"], episode.actions):
        np.testing.assert_array_equal(action, np.float32(action_of(step_of_state(row))))


def test_header_stamps_can_time_the_streams(tmp_path):
    """Joint states stamped at the step but received late (a slow link) line up by header."""
    msgs = Msgs()
    records = []
    for k in range(20):
        t = T0 + k * PERIOD
        records.append(("/cmd", t, msgs.twist(t, action_of(k).tolist() + [0.0, 0.0])))
        records.append(("/joint_states", t + 3 * PERIOD, msgs.joints(t + ARRIVAL, JOINTS,
                                                                     [k, 2 * k, 3 * k])))
    bag = write_bag(tmp_path / "bag", records)
    conf = config(observations={"q": ["/joint_states"]}, joint_names=JOINTS,
                  action={"topic": "/cmd"}, time_source="header")
    (episode,) = convert_bags([bag], conf).episodes
    for q, action in zip(episode.obs["q"], episode.actions):
        assert action.shape == (6,)  # TwistStamped: linear then angular
        np.testing.assert_array_equal(action[:ACTION_DIM], np.float32(action_of(q[0] + 1)))
    late = convert_bags([bag], config(observations={"q": ["/joint_states"]}, joint_names=JOINTS,
                                      action={"topic": "/cmd"})).episodes[0]
    assert late.actions[0, 0] - late.obs["q"][0, 0] == pytest.approx(4.0)  # receive: 3 off


# ---- episodes ---------------------------------------------------------------------------------
def test_gaps_split_episodes_and_stale_streams_drop_ticks(tmp_path, capsys):
    msgs = Msgs()
    records = arm_records(msgs, 20) + arm_records(msgs, 20, T0 + 3 * 10**9, first_step=100)
    records = [r for r in records if not (r[0] == STATE and T0 + 8 * PERIOD < r[1] < T0 + 16
                                          * PERIOD)]  # a camera-like hiccup in episode 0
    bag = write_bag(tmp_path / "bag", records)
    # 15 ms: a tick normally sees a state P/2 = 6 ms old; a missing one makes it >= 19 ms
    conf = config(episodes={"split": "gap", "gap_s": 1.0}, max_age_s=0.015)
    result = convert_bags([bag], conf)
    assert len(result.episodes) == 3  # episode 0 cut at the hiccup, episode 1 whole
    for episode in result.episodes:
        assert_state_action_pairs(episode)
    assert [e.attrs["bag_episode"] for e in result.episodes] == [0, 0, 1]
    assert result.bags[0].dropped[f"stale {STATE}"] > 0 and not result.skipped
    code, stdout, _ = run_convert(capsys, bag, "--config", config_file(tmp_path, conf), "--out",
                                  tmp_path / "o.hdf5")
    assert code == 0 and f"dropped (stale {STATE}:" in stdout


@pytest.mark.parametrize("marker", ["bool", "empty"])
def test_marker_topics_split_episodes(tmp_path, marker):
    msgs = Msgs()
    records = arm_records(msgs, 60)
    if marker == "bool":  # recorded 5..25 and 35..55
        records += [("/marker", T0 + s * PERIOD + ARRIVAL * 2, msgs.bool(on))
                    for s, on in ((5, True), (25, False), (35, True), (55, False))]
    else:  # boundaries at 20 and 40: three episodes
        records += [("/marker", T0 + s * PERIOD + ARRIVAL * 2, msgs.empty()) for s in (20, 40)]
    bag = write_bag(tmp_path / "bag", records)
    result = convert_bags([bag], config(episodes={"split": "marker", "marker_topic": "/marker"}))
    assert len(result.episodes) == (2 if marker == "bool" else 3)
    for episode in result.episodes:
        assert_state_action_pairs(episode)
        assert 15 <= episode.num_steps <= 20
    if marker == "bool":
        assert {step_of_state(e.obs["state"][0]) for e in result.episodes} == {6, 36}


def test_success_comes_from_a_bool_topic(tmp_path):
    msgs = Msgs()
    records = arm_records(msgs, 10) + [("/ok", T0 + k * PERIOD + ARRIVAL, msgs.bool(k == 6))
                                       for k in range(10)]
    bag = write_bag(tmp_path / "bag", records)
    assert convert_bags([bag], config(success_topic="/ok")).episodes[0].success is True
    assert convert_bags([bag], config(success_topic="/other")).episodes[0].success is None
