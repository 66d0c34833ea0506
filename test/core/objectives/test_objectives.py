"""Each representation objective optimises what it claims to, and nothing else."""
from __future__ import annotations

import pytest
import torch

from actjepa_core.config import TrainConfig, apply_overrides
from actjepa_core.errors import ActJepaError
from actjepa_core.models.world_model import ACTJEPA
from actjepa_core.objectives import OBJECTIVES, build_objective
from actjepa_core.objectives.contrastive import info_nce

STATE, IMAGE, ACTIONS = 6, (16, 16, 3), 2


def config(objective: str, **sets) -> TrainConfig:
    overrides = [f"objective={objective}", "model.latent_dim=16", "model.state_hidden=[32]",
                 "model.image_channels=[8, 16]", "model.predictor_hidden=[16]",
                 "model.action_hidden=[16]"] + [f"{k}={v}" for k, v in sets.items()]
    return apply_overrides(TrainConfig(), overrides)


def batch(n: int = 32, seed: int = 0, image: bool = False):
    """o_t, a_t (K = 1) and o_{t+1} = o_t + a_t's effect: a tiny world with real dynamics."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(n, STATE, generator=g)
    actions = torch.rand(n, 1, ACTIONS, generator=g) * 2 - 1
    effect = torch.zeros(n, STATE)
    effect[:, :ACTIONS] = actions[:, 0]
    obs, next_obs = {"state": state}, {"state": (state + effect)[:, None]}
    if image:
        pixels = torch.rand(n, *IMAGE, generator=g)
        obs["image"], next_obs["image"] = pixels, pixels[:, None]
    return obs, actions, next_obs


def shapes(image: bool = False) -> dict:
    return {"state": (STATE,), **({"image": IMAGE} if image else {})}


def fit(model, data, steps: int = 150, lr: float = 3e-3) -> list[float]:
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = model.loss(*data).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.update_target(0.99)
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_trains_the_shared_encoder_on_state_and_images(name):
    torch.manual_seed(0)
    model = build_objective(config(name), shapes(image=True), ACTIONS)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    loss = model.loss(*batch(image=True)).loss
    assert loss.ndim == 0 and torch.isfinite(loss)
    fit(model, batch(image=True), steps=3)
    after = list(model.encoder.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "encoder never updated"
    assert model.encode(batch(image=True)[0]).shape == (32, 16)


def test_an_unknown_objective_is_refused_naming_the_choices():
    with pytest.raises(ActJepaError, match="objective is 'byol'; expected one of act-jepa"):
        apply_overrides(TrainConfig(), ["objective=byol"])


def test_passive_jepa_never_receives_the_action():
    torch.manual_seed(0)
    model = build_objective(config("passive-jepa"), shapes(), ACTIONS)
    assert isinstance(model, ACTJEPA) and model.action_encoder is None
    obs, actions, next_obs = batch()
    actions.requires_grad_(True)
    loss = model.loss(obs, actions, next_obs).loss
    loss.backward()
    assert actions.grad is None  # the action is not in the graph at all
    other = model.loss(obs, torch.zeros_like(actions), next_obs).loss
    assert torch.equal(loss.detach(), other.detach())


def test_act_jepa_uses_the_action_and_beats_passive_on_action_driven_dynamics():
    """o_{t+1} depends on a_t: a predictor that sees it fits the latent future better."""
    data = batch(n=128)
    finals = {}
    for name in ("act-jepa", "passive-jepa"):
        torch.manual_seed(0)
        model = build_objective(config(name, **{"ema.enabled": "false"}), shapes(), ACTIONS)
        losses = fit(model, data, steps=300)
        with torch.no_grad():  # scale-free: divide by the target latents' spread
            spread = model.encode_target({"state": data[2]["state"][:, 0]}).var(0).sum()
        finals[name] = sum(losses[-20:]) / 20 / float(spread)
    assert finals["act-jepa"] < 0.5 * finals["passive-jepa"], finals


def test_autoencoder_reconstruction_error_falls():
    torch.manual_seed(0)
    model = build_objective(config("autoencoder"), shapes(image=True), ACTIONS)
    data = batch(image=True)
    with torch.no_grad():
        start = model.decoder.error(model.encode(data[0]), data[0]).mean()
    losses = fit(model, data, steps=200)
    assert losses[-1] < 0.5 * float(start)
    decoded = model.decoder(model.encode(data[0]))
    assert decoded["image"].shape == (32, *IMAGE) and decoded["state"].shape == (32, STATE)
    assert 0.0 <= float(decoded["image"].min()) and float(decoded["image"].max()) <= 1.0


def test_action_reconstruction_decodes_the_next_observation_through_the_action():
    torch.manual_seed(0)
    model = build_objective(config("action-reconstruction"), shapes(), ACTIONS)
    data = batch(n=128)
    obs, actions, next_obs = data
    losses = fit(model, data, steps=300)
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():  # the decoded prediction tracks a_t's effect on the next state
        predicted = model.decoder(model.rollout(model.encode(obs), actions)[:, 0])["state"]
        moved = predicted[:, :ACTIONS] - obs["state"][:, :ACTIONS]
    corr = torch.corrcoef(torch.stack([moved.flatten(), actions[:, 0].flatten()]))[0, 1]
    assert corr > 0.8


def test_info_nce_ranks_the_positive_pair_first():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(64, 16, generator=g)
    z2 = z1 + 0.05 * torch.randn(64, 16, generator=g)
    aligned = info_nce(z1, z2, 0.1)
    shuffled = info_nce(z1, z2[torch.randperm(64, generator=g)], 0.1)
    assert aligned < 0.1 < shuffled
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=-1)
    sim = z @ z.T
    sim.fill_diagonal_(-2.0)
    partner = torch.cat([torch.arange(64, 128), torch.arange(64)])
    assert torch.equal(sim.argmax(1), partner)


def test_contrastive_training_lowers_infonce_over_augmented_views():
    torch.manual_seed(0)
    model = build_objective(config("contrastive", **{"contrastive.shift": 2}), shapes(image=True),
                            ACTIONS)
    losses = fit(model, batch(n=64, image=True), steps=80)
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10


def test_raw_objective_is_behavioural_cloning_of_the_action():
    torch.manual_seed(0)
    model = build_objective(config("raw"), shapes(), ACTIONS)
    obs, actions, next_obs = batch(n=64)
    actions = obs["state"][:, None, :ACTIONS].tanh()  # a function of the observation: learnable
    losses = fit(model, (obs, actions, next_obs), steps=300)
    assert losses[-1] < 0.1 * losses[0]
    with torch.no_grad():
        error = (model.head(model.encode(obs)) - actions[:, 0]).pow(2).mean()
        assert float(error) == pytest.approx(float(model.loss(obs, actions, next_obs).loss))
    # the next observation plays no part
    assert float(model.loss(obs, actions, {"state": next_obs["state"] * 0}).loss) == \
        pytest.approx(float(model.loss(obs, actions, next_obs).loss))
