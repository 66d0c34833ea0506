"""BC policy (Algorithm 2) on a real reach-v3 world model: training, files, input checks, action
chunking with temporal ensembling, the CLI, and closed-loop control of the simulated arm."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from actjepa_core.cli import main
from actjepa_core.config import load_yaml
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.evaluate import evaluate
from actjepa_core.models.encoders import ObservationEncoder
from actjepa_core.policies import BCPolicy, FrozenWorld, load_policy
from actjepa_core.policies.bc import TemporalEnsemble, chunk_targets
from actjepa_core.policies.configs import BCConfig
from actjepa_core.training import checkpoint as ckpt

from demo_data import (
    REACH_EVAL_EPISODES,
    REACH_EVAL_STEPS,
    median_final_distance,
    reaches_closer_than_random,
)

BC_STEPS = 500  # enough for the head to fit ~2,000 reach samples
STATE_DIM = 39
CONFIG_FILE = Path(__file__).resolve().parents[3] / "config" / "policy_bc.yaml"
# the reach policy shipped before the layout and processor refactors (models/reach_bc.pt of
# commit 8fa7b8c, kept as test data): files written then must load and act exactly as they did
SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "data" / "reach_bc_v1.pt"
SHIPPED_ACTIONS = [[0.281191, 0.986348, 0.163148, -0.007026],  # its first three actions on
                   [0.314189, 0.997426, 0.171773, -0.003771],  # reach-v3 episode 0, seed 1,
                   [0.298937, 0.987791, 0.191578, 0.002545]]  # when it was written


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def train_bc(world_checkpoint, demos, config: BCConfig) -> BCPolicy:
    return BCPolicy.build(FrozenWorld.from_checkpoint(world_checkpoint), demos, config)


@pytest.fixture(scope="module")
def bc_policy(reach_world, reach_demos):
    return train_bc(reach_world, reach_demos, BCConfig(steps=BC_STEPS))


@pytest.fixture(scope="module")
def chunk_policy(reach_world, reach_demos):
    return train_bc(reach_world, reach_demos, BCConfig(steps=100, chunk=4, ensemble_decay=0.5))


@pytest.fixture(scope="module")
def standardised_policy(reach_world, reach_demos):
    return train_bc(reach_world, reach_demos, BCConfig(steps=100, standardise=True))


def demo_obs(demos, n=20):
    ep = demos.episodes[0]
    return [{"state": ep.obs["state"][t]} for t in range(min(n, ep.num_steps))]


def test_training_falls_well_below_the_mean_action_baseline(bc_policy):
    fit = bc_policy.fit
    assert fit.steps == BC_STEPS and fit.train_samples > 0 and fit.val_samples > 0
    assert fit.train_mse < 0.2 * fit.mean_action_mse
    assert math.isfinite(fit.val_mse) and fit.val_mse < fit.mean_action_mse


def test_encoder_runs_once_per_demo_and_stays_frozen(reach_world, reach_demos):
    """Latents are cached: encoder passes do not grow with training steps, weights never move."""
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, inputs, output: calls.append(1)
        if isinstance(module, ObservationEncoder) else None)
    try:
        train_bc(reach_world, reach_demos, BCConfig(steps=5))
        short = len(calls)
        calls.clear()
        policy = train_bc(reach_world, reach_demos, BCConfig(steps=60))
    finally:
        hook.remove()
    assert len(calls) == short > 0
    saved = ckpt.load_checkpoint(reach_world)["model"]
    for name, value in policy.model.state_dict().items():
        assert torch.equal(value.cpu(), saved[name]), f"world-model weight {name} changed"
    assert all(not p.requires_grad and p.grad is None for p in policy.model.parameters())


def test_save_load_round_trip_gives_identical_actions(bc_policy, chunk_policy,
                                                      standardised_policy, reach_demos, tmp_path):
    assert float(standardised_policy.head.latent_std.min()) != 1.0  # set from the demos
    for policy in (bc_policy, chunk_policy, standardised_policy):
        path = tmp_path / f"{policy.config.chunk}-{policy.config.standardise}.pt"
        policy.save(path)
        loaded = load_policy(path, policy_type="bc")
        assert isinstance(loaded, BCPolicy) and loaded.config == policy.config
        assert loaded.fit == policy.fit
        policy.reset()
        loaded.reset()
        for obs in demo_obs(reach_demos):
            np.testing.assert_array_equal(policy.act(obs), loaded.act(obs))


def test_act_rejects_bad_observations_naming_the_key(bc_policy):
    good = np.zeros(STATE_DIM, dtype=np.float32)
    with pytest.raises(ActJepaError, match="missing key.*'state'"):
        bc_policy.act({"image": good})
    with pytest.raises(ActJepaError, match="'state' has shape"):
        bc_policy.act({"state": good[:-1]})
    bad = good.copy()
    bad[3] = np.nan
    with pytest.raises(ActJepaError, match="'state' contains NaN"):
        bc_policy.act({"state": bad})


moderate = st.floats(-1e3, 1e3, width=32)
huge = st.floats(width=32, allow_nan=False, allow_infinity=False)  # up to ~3.4e38


@settings(max_examples=60, deadline=None)
@given(state=arrays(np.float32, STATE_DIM, elements=st.one_of(moderate, huge)),
       in_range=st.booleans())
def test_actions_are_finite_and_within_dataset_bounds(bc_policy, state, in_range):
    """Any finite observation gives an in-bounds finite action, or (only when normalisation
    overflows float32) a refusal: never NaN, never out of bounds."""
    if in_range:
        state = np.clip(state, -1e3, 1e3)
    low, high = bc_policy.processor.action_low, bc_policy.processor.action_high
    try:
        action = bc_policy.act({"state": state})
    except ActJepaError as err:
        assert not in_range and "non-finite latent" in str(err)
        return
    assert action.shape == (4,) and action.dtype == np.float32
    assert np.isfinite(action).all() and (action >= low).all() and (action <= high).all()


def test_chunk_targets_stay_inside_each_demo():
    actions = torch.arange(5.0)[:, None]  # (5, 1): demo 0 is rows 0-2, demo 1 rows 3-4
    targets = chunk_targets(actions, [3, 2], chunk=3)[..., 0]
    expected = [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 4], [4, 4, 4]]
    assert targets.tolist() == expected


def test_temporal_ensemble_averages_the_overlapping_predictions():
    """Step t's action averages what steps t-2..t predicted for t, oldest weighted exp(0)."""
    chunks = [torch.tensor([[10.0 * s + j] for j in range(3)]) for s in range(4)]  # (3, 1) each
    plain = TemporalEnsemble(chunk=3, decay=0.0)
    assert [float(plain(c)) for c in chunks] == [0.0, (1 + 10) / 2, (2 + 11 + 20) / 3,
                                                 (12 + 21 + 30) / 3]
    m = 0.5
    weighted = TemporalEnsemble(chunk=3, decay=m)
    outs = [float(weighted(c)) for c in chunks]
    w = np.exp(-m * np.arange(3))
    assert outs[2] == pytest.approx((w @ [2.0, 11.0, 20.0]) / w.sum())
    assert outs[3] == pytest.approx((w @ [12.0, 21.0, 30.0]) / w.sum())
    weighted.reset()
    assert float(weighted(chunks[3])) == 30.0  # a fresh episode: only its own prediction


def test_chunked_policy_ensembles_across_steps_and_reset_clears(chunk_policy):
    latent = torch.randn(1, chunk_policy.head.net[0].in_features)
    chunk = chunk_policy.head(latent)[0]  # (4, A)
    chunk_policy.reset()
    first = chunk_policy.act_latent(latent)
    second = chunk_policy.act_latent(latent)
    w = torch.exp(-0.5 * torch.arange(2.0))
    torch.testing.assert_close(first, chunk[0])
    torch.testing.assert_close(second, (w[0] * chunk[1] + w[1] * chunk[0]) / w.sum())
    chunk_policy.reset()
    torch.testing.assert_close(chunk_policy.act_latent(latent), chunk[0])


def test_policy_of_another_format_version_is_refused(bc_policy, tmp_path):
    path = tmp_path / "bc.pt"
    bc_policy.save(path)
    content = torch.load(path, weights_only=True)
    content["format_version"] = ckpt.FORMAT_VERSION + 1
    torch.save(content, path)
    with pytest.raises(ActJepaError, match="format version"):
        load_policy(path)


def test_config_file_holds_the_defaults():
    assert load_yaml(BCConfig, CONFIG_FILE) == BCConfig()


def test_cli_trains_and_writes_a_bc_policy(reach_world, reach_demos_path, tmp_path, capsys):
    out = tmp_path / "policies" / "bc.pt"
    assert main(["train-policy", "bc", "--encoder", str(reach_world), "--data",
                 str(reach_demos_path), "--out", str(out), "--config", str(CONFIG_FILE),
                 "--steps", "20", "--chunk", "2"]) == 0
    assert "train MSE" in capsys.readouterr().out
    policy = load_policy(out, policy_type="bc")
    assert policy.config.chunk == 2 and policy.fit.steps == 20
    assert main(["train-policy", "bc", "--encoder", str(reach_demos_path), "--data",
                 str(reach_demos_path), "--out", str(tmp_path / "x.pt")]) == 2
    assert "not a readable actjepa checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_bc_controls_the_arm_better_than_random(bc_policy, reach_random):
    result = evaluate(bc_policy, "reach-v3", REACH_EVAL_EPISODES, seed=1,
                      max_steps=REACH_EVAL_STEPS, progress=False)
    assert reach_random.successes <= 1, "uniform random actions should (almost) never reach"
    assert reaches_closer_than_random(result, reach_random), (
        median_final_distance(result), median_final_distance(reach_random))


def test_chunked_policy_names_its_variant_for_results_tables(reach_world, reach_demos):
    plain = train_bc(reach_world, reach_demos, BCConfig(steps=5))
    chunked = train_bc(reach_world, reach_demos, BCConfig(steps=5, chunk=4))
    assert plain.variant == "" and chunked.variant == "chunk 4"


@pytest.mark.sim
def test_the_shipped_policy_file_acts_as_it_did_when_written():
    """models/reach_bc.pt predates the FrozenWorld/registry code: same file, same actions."""
    from actjepa_core.sim.arm import SimArm

    policy = load_policy(SHIPPED_POLICY)
    arm = SimArm("reach-v3", seed=1)
    obs, actions = arm.reset(0), []
    for _ in SHIPPED_ACTIONS:
        actions.append(policy.act(obs))
        obs, _ = arm.step(actions[-1])
    arm.close()
    np.testing.assert_allclose(actions, SHIPPED_ACTIONS, atol=2e-6)


def test_a_standardised_head_reads_latents_whose_variation_is_tiny():
    """Latents that carry the action but vary by ~0.005 (a JEPA near collapse): the head on the
    latents as they are barely fits in the budget; standardised first, it fits."""
    from actjepa_core.policies.bc import BCHead, fit_head, mse

    generator = torch.Generator().manual_seed(0)
    signal = torch.randn((2000, 8), generator=generator)  # (N, 8)
    targets = torch.tanh(signal @ torch.randn((8, 4), generator=generator))[:, None]  # (N, 1, A)
    latents = 5.0 + 0.005 * signal  # an offset and a tiny spread, as a collapsing encoder gives
    errors = {}
    for standardise in (False, True):
        config = BCConfig(steps=300, standardise=standardise)
        torch.manual_seed(0)
        head = BCHead(8, 4, config)
        if standardise:
            head.standardise_from(latents)
        fit_head(head, latents, targets, config)
        errors[standardise] = mse(head, latents, targets)
    baseline = float((targets - targets.mean(0)).pow(2).mean())
    assert errors[True] < 0.1 * baseline and errors[False] > 3 * errors[True], errors


def with_proprio(demos):
    """The reach demos with a "proprio" key (hand xyz and gripper: sim.proprio_of)."""
    from dataclasses import replace

    from actjepa_core.sim.arm import proprio_of

    return [replace(ep, obs={**ep.obs, "proprio": proprio_of(ep.obs["state"])})
            for ep in demos.episodes]


def test_a_head_vector_is_read_beside_the_latent_and_travels_with_the_file(
        reach_world, reach_demos, tmp_path):
    """BCConfig.vector: the head reads the encoder's latent and the standardised "proprio"
    vector; the policy asks for that key, refuses an observation without it, and acts on it."""
    demos = with_proprio(reach_demos)
    policy = train_bc(reach_world, demos, BCConfig(steps=100, vector="proprio"))
    assert policy.obs_spec["proprio"] == {"shape": [4], "dtype": "float32"}
    assert "proprio" not in policy.world.spec  # the encoder never sees it
    ep = demos[0]
    obs = {"state": ep.obs["state"][0], "proprio": ep.obs["proprio"][0]}
    assert policy.encode(obs).shape == (1, policy.world.latent_dim + 4)
    action = policy.act(obs)
    moved = policy.act({**obs, "proprio": obs["proprio"] + np.float32(0.2)})
    assert np.abs(moved - action).max() > 1e-4  # the head reads the vector
    with pytest.raises(ActJepaError, match="missing key 'proprio'; the bc head reads it"):
        policy.act({"state": obs["state"]})
    with pytest.raises(ActJepaError, match=r"'proprio' has shape \(3,\); expected \(4,\)"):
        policy.act({**obs, "proprio": obs["proprio"][:3]})
    policy.save(tmp_path / "bc.pt")
    loaded = load_policy(tmp_path / "bc.pt")
    assert loaded.obs_spec == policy.obs_spec
    np.testing.assert_array_equal(loaded.act(obs), action)
    with pytest.raises(ActJepaError, match="bc vector 'state' is already an input of the encoder"):
        train_bc(reach_world, demos, BCConfig(steps=10, vector="state"))
    with pytest.raises(ActJepaError, match="demo 0 has no vector observation 'proprio'"):
        train_bc(reach_world, reach_demos, BCConfig(steps=10, vector="proprio"))


def test_a_head_vector_policy_drives_the_simulated_arm_with_its_proprioception(
        reach_world, reach_demos):
    """evaluate() gives the policy the simulator's "proprio" (SimArm(proprio=True))."""
    policy = train_bc(reach_world, with_proprio(reach_demos), BCConfig(steps=100,
                                                                        vector="proprio"))
    result = evaluate(policy, "reach-v3", episodes=1, max_steps=5, progress=False)
    assert result.episodes == 1 and result.records[0].length == 5
