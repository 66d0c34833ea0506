"""The LeRobot adapter (policies/lerobot.py) where lerobot is not installed (.venv): the package
still imports, and a folder is refused with one line that says what is missing. Serving and
evaluating a real LeRobot policy is tested in .venv-peers (test/peers/)."""
from __future__ import annotations

import importlib.util

import pytest

from actjepa_core.errors import ActJepaError
from actjepa_core.policies import Policy
from actjepa_core.policies.lerobot import (
    CONFIG,
    POSTPROCESSOR,
    PREPROCESSOR,
    WEIGHTS,
    LeRobotPolicy,
    load_lerobot_policy,
)

FEATURES = {"observation.state": "joints", "observation.images.image": "image"}


def test_it_is_a_policy_but_not_a_train_policy_type():
    assert issubclass(LeRobotPolicy, Policy)
    assert "lerobot" not in Policy.registry  # `actjepa train-policy lerobot` does not exist


def test_a_folder_without_the_saved_files_is_refused_naming_them(tmp_path):
    (tmp_path / CONFIG).write_text("{}")
    with pytest.raises(ActJepaError) as err:
        load_lerobot_policy(tmp_path, FEATURES)
    text = str(err.value)
    assert "\n" not in text and str(tmp_path) in text
    assert all(name in text for name in (WEIGHTS, PREPROCESSOR, POSTPROCESSOR))
    with pytest.raises(ActJepaError, match="not a folder"):
        load_lerobot_policy(tmp_path / "missing", FEATURES)


@pytest.mark.skipif(importlib.util.find_spec("lerobot") is not None,
                    reason="lerobot is installed here")
def test_without_lerobot_one_line_says_how_to_get_it(tmp_path):
    for name in (CONFIG, WEIGHTS, PREPROCESSOR, POSTPROCESSOR):
        (tmp_path / name).write_text("{}")
    with pytest.raises(ActJepaError) as err:
        load_lerobot_policy(tmp_path, FEATURES)
    text = str(err.value)
    assert "\n" not in text and "lerobot package" in text and "make peers" in text
