"""Objective ``bc``: the camera policy trained end to end (head keys joined late, action chunks,
an EMA of the weights, ACT-JEPA as an auxiliary loss)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actjepa_core.config import TrainConfig, apply_overrides
from actjepa_core.data.episodes import Episode
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.transitions import TransitionSet
from actjepa_core.errors import ActJepaError
from actjepa_core.objectives import build_objective, transition_window

IMAGE, JOINTS, ACTIONS, CHUNK = (16, 16, 3), 9, 4, 3


def config(*sets: str) -> TrainConfig:
    return apply_overrides(TrainConfig(), [
        "objective=bc", "bc.head_keys=[joints]", f"bc.chunk={CHUNK}", "model.latent_dim=16",
        "model.image_channels=[8, 16]", "model.predictor_hidden=[16]",
        "model.action_hidden=[16]", "bc.hidden=[32]", *sets])


def model(*sets: str):
    torch.manual_seed(0)
    return build_objective(config(*sets), {"image": IMAGE, "joints": (JOINTS,)}, ACTIONS)


def batch(n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    obs = {"image": torch.rand(n, *IMAGE, generator=g), "joints": torch.randn(n, JOINTS,
                                                                              generator=g)}
    actions = torch.rand(n, CHUNK, ACTIONS, generator=g) * 2 - 1  # (B, K, A)
    next_obs = {"image": torch.rand(n, 1, *IMAGE, generator=g),
                "joints": torch.randn(n, 1, JOINTS, generator=g)}
    return obs, actions, next_obs


def test_head_keys_reach_the_head_and_never_the_encoder():
    m = model()
    obs, _, _ = batch()
    assert m.encoder.keys == ["image"]
    moved = {**obs, "joints": obs["joints"] + 1.0}
    torch.testing.assert_close(m.encode(moved), m.encode(obs))
    assert not torch.allclose(m.act_chunk(moved), m.act_chunk(obs))
    assert m.act_chunk(obs).shape == (8, CHUNK, ACTIONS)


def test_the_loss_is_the_chunk_mse_and_only_the_jepa_term_adds_to_it():
    m, obs_actions = model(), batch()
    obs, actions, next_obs = obs_actions
    want = (m.act_chunk(obs, averaged=False) - actions).pow(2).mean()
    torch.testing.assert_close(m.loss(obs, actions, next_obs).loss, want)
    joint = model("bc.jepa_weight=2.0")
    plain = model()
    plain.load_state_dict({k: v for k, v in joint.state_dict().items()
                           if k in plain.state_dict()})
    latent = joint.latent_loss(joint.encode(obs), actions[:, 0], next_obs)
    torch.testing.assert_close(joint.loss(obs, actions, next_obs).loss,
                               plain.loss(obs, actions, next_obs).loss + 2.0 * latent)
    assert all(not p.requires_grad for p in joint.target_encoder.parameters())


def test_the_deployed_average_starts_at_the_first_weights_and_trails_the_trained_ones():
    m = model("bc.policy_ema=0.9")
    optimizer = torch.optim.Adam(m.trainable_parameters(), lr=1e-2)
    assert all(not p.requires_grad for p in m.averaged.parameters())
    for step in range(20):
        loss = m.loss(*batch(seed=step)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        m.update_target(0.99)
    obs = batch()[0]
    trained, averaged = m.act_chunk(obs, averaged=False), m.act_chunk(obs)
    assert not torch.allclose(trained, averaged)
    assert int(m.averaged_steps) == 20
    assert model().averaged is None  # policy_ema 0: the trained weights are deployed


def test_windows_carry_the_chunk_and_hold_at_the_demo_end():
    """Every step but a demo's last starts a window; targets past the end repeat its last
    action; without the latent loss no next observation is gathered."""
    steps, pad_end, next_steps = transition_window(config())
    assert (steps, pad_end, next_steps) == (CHUNK, True, 0)
    assert transition_window(config("bc.jepa_weight=1.0"))[2] == 1
    episodes = [Episode(obs={"joints": np.zeros((n, JOINTS), np.float32)},
                        actions=np.arange(n * ACTIONS, dtype=np.float32).reshape(n, ACTIONS))
                for n in (5, 4)]
    keys = ["joints"]
    data = TransitionSet(episodes, keys, Normaliser.fit(episodes, keys), steps,
                         pad_end=pad_end, next_steps=next_steps)
    assert len(data) == 4 + 3
    b = data.batch(torch.arange(len(data)))
    assert b.next_obs == {}
    raw = data.processor.episode_actions(episodes)  # (9, A), normalised
    torch.testing.assert_close(b.actions[3], raw[[3, 4, 4]])  # demo 0 ends at row 4
    torch.testing.assert_close(b.actions[4], raw[[5, 6, 7]])  # demo 1 starts at row 5
    torch.testing.assert_close(b.actions[6], raw[[7, 8, 8]])


def test_head_keys_must_be_vector_keys_of_the_data():
    with pytest.raises(ActJepaError, match=r"bc.head_keys \['wrist'\] are not observation"):
        build_objective(config("bc.head_keys=[wrist]"), {"image": IMAGE, "joints": (JOINTS,)},
                        ACTIONS)
    with pytest.raises(ActJepaError, match="every observation key is a head key"):
        build_objective(config(), {"joints": (JOINTS,)}, ACTIONS)
    with pytest.raises(ActJepaError, match="bc.jepa_weight"):
        config("bc.jepa_weight=-1")
