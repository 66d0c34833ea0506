"""What each message type becomes: joint states reordered by name, images and compressed images
decoded and resized, twists, joint trajectories and joint deltas as actions."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from actjepa_core.bags import convert_bags

from bag_factory import (
    ARRIVAL,
    JOINTS,
    PERIOD,
    PICTURE,
    STATE,
    STATE_DIM,
    T0,
    Msgs,
    arm_records,
    config,
    step_of_state,
    write_bag,
)


# ---- observations -----------------------------------------------------------------------------
def test_joint_states_are_reordered_by_name_with_velocities(tmp_path):
    msgs, rng = Msgs(), np.random.default_rng(1)
    records = arm_records(msgs, 20)
    for k in range(20):
        order = rng.permutation(JOINTS + ["gripper"])
        values = {n: 10.0 * k + i for i, n in enumerate(JOINTS + ["gripper"])}
        records.append(("/joint_states", T0 + k * PERIOD + ARRIVAL, msgs.joints(
            0, order, [values[n] for n in order], [-values[n] for n in order])))
    bag = write_bag(tmp_path / "bag", records)
    conf = config(observations={"state": [STATE], "joints": ["/joint_states"]},
                  joint_names=["j2", "j0"], joint_state_fields=["position", "velocity"])
    (episode,) = convert_bags([bag], conf).episodes
    for state, joints in zip(episode.obs["state"], episode.obs["joints"]):
        k = step_of_state(state)
        np.testing.assert_array_equal(joints, [10 * k + 2, 10 * k, -(10 * k + 2), -10 * k])
    both = convert_bags([bag], config(observations={"state": ["/joint_states", STATE]},
                                      joint_names=["j1"])).episodes[0]
    assert both.obs["state"].shape[1] == 1 + STATE_DIM  # joint values first, then the vector
    for row in both.obs["state"]:
        assert row[0] == 10 * step_of_state(row[1:]) + 1


@pytest.mark.parametrize("kind", ["rgb8", "bgr8", "mono8", "png", "jpeg"])
def test_images_and_compressed_images_are_decoded_and_resized(tmp_path, kind):
    msgs = Msgs()
    records = arm_records(msgs, 12)
    for k in range(12):
        t = T0 + k * PERIOD + ARRIVAL
        frame = np.roll(PICTURE, k, axis=1)
        msg = (msgs.compressed(t, frame, kind) if kind in ("png", "jpeg")
               else msgs.image(t, frame, kind))
        records.append(("/camera/image_raw", t, msg))
    bag = write_bag(tmp_path / "bag", records)
    conf = config(observations={"state": [STATE], "image": ["/camera/image_raw"]}, image_size=16)
    (episode,) = convert_bags([bag], conf).episodes
    images = episode.obs["image"]
    assert images.shape == (10, 16, 16, 3) and images.dtype == np.uint8
    for state, image in zip(episode.obs["state"], images):
        frame = np.roll(PICTURE, step_of_state(state), axis=1)
        if kind == "mono8":
            frame = np.repeat(frame[:, :, :1], 3, axis=2)
        expected = cv2.resize(frame, (16, 16), interpolation=cv2.INTER_AREA)
        tolerance = 40 if kind == "jpeg" else 0
        assert np.abs(image.astype(int) - expected).mean() <= tolerance


# ---- actions ----------------------------------------------------------------------------------
def test_joint_trajectory_commands_and_joint_deltas(tmp_path):
    msgs = Msgs()
    records = []
    for k in range(15):
        t = T0 + k * PERIOD
        records.append(("/traj", t, msgs.trajectory(t, ["j1", "j0", "j2"], [k + 0.5, k, k + 1])))
        records.append(("/joint_states", t + ARRIVAL, msgs.joints(t, JOINTS, [k, k ** 2, 0])))
    bag = write_bag(tmp_path / "bag", records)
    base = {"observations": {"q": ["/joint_states"]}, "joint_names": JOINTS}
    (episode,) = convert_bags([bag], config(**base, action={"topic": "/traj"})).episodes
    for q, action in zip(episode.obs["q"], episode.actions):
        k = q[0] + 1  # the next command
        np.testing.assert_array_equal(action, [k, k + 0.5, k + 1])
    (episode,) = convert_bags([bag], config(**base, action={
        "topic": "/joint_states", "source": "joint_delta", "joint_names": ["j1"]})).episodes
    for q, action in zip(episode.obs["q"], episode.actions):
        assert action[0] == (q[0] + 1) ** 2 - q[0] ** 2
