"""Input planning and observation assembly for the policy node (actjepa_ros.observations)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from actjepa_core.errors import ActJepaError
from actjepa_ros.observations import assemble, lerobot_features, plan_inputs, ramp_positions
from actjepa_ros.params import POLICY_PARAMS

DEFAULTS = {s.name: (list(s.default) if isinstance(s.default, (list, tuple)) else s.default)
            for s in POLICY_PARAMS}
STATE_SPEC = {"state": {"shape": [39], "dtype": "float32"}}
JOINT_IMAGE_SPEC = {"state": {"shape": [10], "dtype": "float32"},
                    "image": {"shape": [8, 8, 3], "dtype": "uint8"}}


def params(**changes):
    return {**DEFAULTS, **changes}


def test_the_defaults_fill_a_state_checkpoint_from_the_vector_and_skip_the_camera():
    notes = []
    inputs = plan_inputs(params(), STATE_SPEC, notes.append)
    assert list(inputs) == ["state"] and inputs["state"].size == 39
    assert inputs["state"].topic == "sim_node/state"
    assert len(notes) == 1 and "image input" in notes[0] and "not used" in notes[0]


def test_joint_states_and_vector_share_a_key_joints_first():
    p = params(joint_states_key="state", joint_names=["a", "b", "c"],
               joint_state_fields=["position", "velocity"])
    inputs = plan_inputs(p, JOINT_IMAGE_SPEC)
    assert (inputs["joint_states"].size, inputs["state"].size) == (6, 4)
    inputs["joint_states"].value = np.arange(6.0)
    inputs["state"].value = np.arange(6.0, 10.0)
    inputs["image"].value = np.zeros((8, 8, 3), np.uint8)
    obs = assemble(inputs, JOINT_IMAGE_SPEC)
    assert obs["state"].dtype == np.float32 and obs["state"].tolist() == list(range(10))
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (8, 8, 3)


@pytest.mark.parametrize("changes, fragment", [
    (dict(state_key="", image_key="image"), "'state' (shape [10]) is filled by no input"),
    (dict(joint_states_key="state", joint_names=[f"j{i}" for i in range(10)],
          state_key="image"), "'image' has shape [8, 8, 3]: exactly one camera input"),
    (dict(image_key="state"), "'state' has shape [10]: no camera input"),
    (dict(joint_states_key="state", joint_names=[]), "do not name joints"),
    (dict(joint_states_key="state", joint_names=["a"], joint_state_fields=["torque"]),
     "do not name joints"),
    (dict(joint_states_key="state", joint_names=[f"j{i}" for i in range(10)]),
     "leave nothing for the state vector"),
    (dict(joint_states_key="state", state_key="", joint_names=["a", "b"]),
     "has 10 values but the joint states give 2"),
])
def test_inputs_that_cannot_fill_the_checkpoint_are_refused_with_the_reason(changes, fragment):
    with pytest.raises(ActJepaError, match=re.escape(fragment)):
        plan_inputs(params(**changes), JOINT_IMAGE_SPEC)


TWO_CAMERA_SPEC = {"scene": {"shape": [8, 8, 3], "dtype": "uint8"},
                   "wrist": {"shape": [8, 8, 3], "dtype": "uint8"},
                   "state": {"shape": [39], "dtype": "float32"}}
CAMERAS = dict(image_keys=["scene", "wrist"], image_topics=["scene/image_raw", "wrist/image_raw"])


def test_several_cameras_each_fill_their_key_from_their_transport_topic():
    notes = []
    inputs = plan_inputs(params(**CAMERAS, image_transports=["raw", "compressed"]),
                         TWO_CAMERA_SPEC, notes.append)
    assert list(inputs) == ["state", "image/scene", "image/wrist"]
    assert [(i.key, i.topic, i.transport) for i in list(inputs.values())[1:]] == [
        ("scene", "scene/image_raw", "raw"), ("wrist", "wrist/image_raw/compressed", "compressed")]
    assert any("image_key/image_topic/image_transport not used" in n for n in notes)
    one = plan_inputs(params(**CAMERAS, image_transports=["compressed"]), TWO_CAMERA_SPEC)
    assert {i.transport for i in one.values() if i.transport} == {"compressed"}
    raw = plan_inputs(params(**CAMERAS), TWO_CAMERA_SPEC)  # [] = all raw
    assert {i.transport for i in raw.values() if i.transport} == {"raw"}


@pytest.mark.parametrize("changes, fragment", [
    (dict(image_topics=["scene/image_raw"]), "name 2 cameras but image_topics"),
    (dict(image_transports=["raw", "raw", "raw"]), "do not give one entry each"),
    (dict(image_transports=["raw", "theora"]), "transports among ['raw', 'compressed']"),
    (dict(image_keys=["scene", "scene"]), "expected distinct non-empty keys"),
    (dict(image_keys=["scene", "front"]), "'wrist' (shape [8, 8, 3]) is filled by no input"),
])
def test_camera_lists_that_do_not_line_up_are_refused_with_the_reason(changes, fragment):
    with pytest.raises(ActJepaError, match=re.escape(fragment)):
        plan_inputs(params(**{**CAMERAS, **changes}), TWO_CAMERA_SPEC)


def test_ramp_positions_points_at_the_joint_positions():
    p = params(joint_states_key="state", joint_names=["a", "b", "c", "d"],
               joint_state_fields=["velocity", "position"], ramp_from="joint_positions")
    inputs = plan_inputs(p, JOINT_IMAGE_SPEC)
    assert ramp_positions(p, inputs, 4) == slice(4, 8)
    assert ramp_positions(params(ramp_from="zero"), inputs, 4) is None
    with pytest.raises(ActJepaError, match="one joint name per action dimension"):
        ramp_positions(p, inputs, 3)
    with pytest.raises(ActJepaError, match="joint states input in use"):
        ramp_positions(p, plan_inputs(params(), STATE_SPEC), 4)


def test_subgoal_messages_become_rows_of_the_state_size():
    from actjepa_ros.observations import subgoal_rows

    rows = subgoal_rows(np.arange(6.0), 3)
    assert [r.tolist() for r in rows] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert rows[0].dtype == np.float32
    for bad, words in ((np.arange(5.0), "5 values; expected a positive multiple of the state "
                                         "size 3"),
                       (np.zeros(0), "0 values"), (np.array([0, 1, np.nan]), "NaN")):
        with pytest.raises(ActJepaError, match=words):
            subgoal_rows(bad, 3)


def test_the_lerobot_table_pairs_features_with_keys_and_refuses_ragged_or_repeated_lists():
    assert lerobot_features(params()) == {"observation.state": "joints",
                                          "observation.images.image": "image"}
    table = lerobot_features(params(lerobot_features=["observation.images.wrist"],
                                    lerobot_keys=["image_wrist"]))
    assert table == {"observation.images.wrist": "image_wrist"}
    with pytest.raises(ActJepaError, match="one observation key per LeRobot feature"):
        lerobot_features(params(lerobot_keys=["joints"]))
    with pytest.raises(ActJepaError, match="names a feature twice"):
        lerobot_features(params(lerobot_features=["observation.state"] * 2,
                                lerobot_keys=["joints", "state"]))
