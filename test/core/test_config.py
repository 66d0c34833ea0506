from pathlib import Path

import pytest

from actjepa_core.config import TrainConfig, apply_overrides, load_train_config, save_yaml
from actjepa_core.errors import ActJepaError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_train_yaml_equals_the_dataclass_defaults():
    assert load_train_config(REPO / "config" / "train.yaml") == TrainConfig()


def test_paper_defaults():
    c = TrainConfig()
    assert c.model.latent_dim == 128 and c.model.state_hidden == [256, 256]
    assert max(c.model.predictor_hidden) <= c.model.latent_dim  # the bottleneck
    assert (c.ema.tau_start, c.ema.tau_end) == (0.996, 1.0)
    assert (c.optim.lr, c.optim.batch_size, c.optim.warmup_fraction) == (1e-3, 256, 0.1)


def test_save_and_load_round_trip(tmp_path):
    config = apply_overrides(TrainConfig(), ["model.action_injection=film", "optim.lr=3e-4"])
    save_yaml(config, tmp_path / "c.yaml")
    assert load_train_config(tmp_path / "c.yaml") == config


@pytest.mark.parametrize("text, words", [
    ("optim:\n  lrr: 0.1\n", ["optim.lrr", "expected one of"]),
    ("modle: {}\n", ["modle"]),
    ("optim:\n  steps: many\n", ["optim.steps", "int"]),
    ("model:\n  action_injection: multiply\n", ["model.action_injection", "concat"]),
    ("optim: [1, 2]\n", ["optim", "mapping"]),
    ("optim: {lr: 1\n", ["not valid YAML"]),
])
def test_bad_config_names_file_and_key(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ActJepaError) as err:
        load_train_config(path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ActJepaError, match="config file not found"):
        load_train_config(tmp_path / "nope.yaml")


def test_overrides_reject_unknown_keys_and_parse_values():
    c = apply_overrides(TrainConfig(), ["ema.enabled=false", "model.predictor_hidden=[64, 64]"])
    assert c.ema.enabled is False and c.model.predictor_hidden == [64, 64]
    with pytest.raises(ActJepaError, match="unknown config key 'optim.lrr'"):
        apply_overrides(TrainConfig(), ["optim.lrr=1"])
    with pytest.raises(ActJepaError, match="KEY=VALUE"):
        apply_overrides(TrainConfig(), ["optim.lr"])
