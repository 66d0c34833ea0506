"""Latent nearest-neighbour policy (Algorithm 3) on a real reach-v3 world model: exact retrieval,
k > 1 weighting, the blocked search, files, input checks, the CLI and closed-loop control."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from actjepa_core.bench.policy_speed import nn_query_benchmark
from actjepa_core.cli import main
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.evaluate import evaluate
from actjepa_core.policies import FrozenWorld, NearestNeighbourPolicy, load_policy
from actjepa_core.policies.configs import NNConfig
from actjepa_core.policies.nearest import blend, nearest

from demo_data import (
    REACH_EVAL_EPISODES,
    REACH_EVAL_STEPS,
    median_final_distance,
    reaches_closer_than_random,
)

STATE_DIM = 39


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build_nn(world_checkpoint, demos, config: NNConfig | None = None) -> NearestNeighbourPolicy:
    return NearestNeighbourPolicy.build(FrozenWorld.from_checkpoint(world_checkpoint), demos,
                                        config)


@pytest.fixture(scope="module")
def nn_policy(reach_world, reach_demos):
    return build_nn(reach_world, reach_demos)


def test_memory_holds_every_demo_observation(nn_policy, reach_demos):
    rows = sum(ep.num_steps for ep in reach_demos.episodes)
    assert nn_policy.memory.shape == (rows, 128) and nn_policy.actions.shape == (rows, 4)
    assert nn_policy.memory.dtype == torch.float32
    assert nn_policy.memory_bytes == rows * (128 + 4) * 4
    with pytest.raises(ActJepaError, match=r"expected \(M, 128\) and \(M, 4\)"):
        nn_policy.remember(torch.zeros(2, 5), torch.zeros(2, 4))


def test_k1_returns_the_demo_action_for_a_demo_observation(nn_policy, reach_demos):
    offset = 0
    for ep in reach_demos.episodes[:3]:
        for t in range(0, ep.num_steps, 7):
            latent = nn_policy.encode({"state": ep.obs["state"][t]})
            _, rows = nn_policy.neighbours(latent)
            # its own memory row, or a row whose latent is identical (a demo standing still)
            assert torch.equal(nn_policy.memory[rows[0, 0]], nn_policy.memory[offset + t])
            action = nn_policy.act({"state": ep.obs["state"][t]})
            np.testing.assert_allclose(action, ep.actions[t], atol=1e-5)
        offset += ep.num_steps


def test_blocked_search_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    memory, queries = torch.randn(1000, 16, generator=gen), torch.randn(5, 16, generator=gen)
    exact = torch.cdist(queries.double(), memory.double())  # (5, 1000)
    want_d, want_rows = exact.topk(3, dim=1, largest=False)
    for block in (7, 128, 5000):  # many blocks, a few, one
        d, rows = nearest(memory.T.contiguous(), queries, k=3, block=block)
        assert torch.equal(rows, want_rows)
        torch.testing.assert_close(d, want_d.float())


def test_k_greater_than_one_weights_neighbours_by_inverse_distance(reach_world, reach_demos):
    query = torch.zeros(1, 128)
    memory = torch.zeros(4, 128)
    memory[:, 0] = torch.tensor([1.0, 2.0, 4.0, 100.0])  # distances 1, 2, 4 (and a far one)
    actions = torch.tensor([[0.6], [0.0], [-0.6], [1.0]]).repeat(1, 4)  # (4, A)
    policy = build_nn(reach_world, reach_demos.episodes[:1], NNConfig(k=3))
    policy.remember(memory, actions)
    w = np.array([1 / 1, 1 / 2, 1 / 4])  # eps (1e-6) is negligible at these distances
    expected = (w @ [0.6, 0.0, -0.6]) / w.sum()
    torch.testing.assert_close(policy.act_latent(query), torch.full((4,), expected),
                               rtol=1e-5, atol=1e-5)
    uniform = blend(torch.tensor([[1.0, 2.0, 4.0]]), actions[None, :3], NNConfig(k=3,
                                                                             weighting="uniform"))
    torch.testing.assert_close(uniform[0], torch.zeros(4), atol=1e-6, rtol=0)
    policy.remember(memory[:1], actions[:1])  # an exact hit dominates: 1 / eps
    torch.testing.assert_close(policy.act_latent(memory[:1]), actions[0])


def test_save_load_round_trip_gives_identical_actions(nn_policy, reach_demos, tmp_path):
    path = tmp_path / "nn.pt"
    nn_policy.save(path)
    loaded = load_policy(path, policy_type="nn")
    assert isinstance(loaded, NearestNeighbourPolicy) and loaded.config == nn_policy.config
    assert loaded.memory.dtype == torch.float32 and torch.equal(loaded.memory, nn_policy.memory)
    ep = reach_demos.episodes[1]
    for t in range(ep.num_steps):
        obs = {"state": ep.obs["state"][t] + np.float32(0.01)}  # off-memory queries too
        np.testing.assert_array_equal(nn_policy.act(obs), loaded.act(obs))


def test_loading_as_another_policy_type_names_both(nn_policy, tmp_path):
    path = tmp_path / "nn.pt"
    nn_policy.save(path)
    with pytest.raises(ActJepaError, match="'nn' policy; expected 'bc'"):
        load_policy(path, policy_type="bc")


def test_act_rejects_bad_observations_naming_the_key(nn_policy):
    with pytest.raises(ActJepaError, match="missing key.*'state'"):
        nn_policy.act({})
    with pytest.raises(ActJepaError, match="'state' has shape"):
        nn_policy.act({"state": np.zeros((1, STATE_DIM), dtype=np.float32)})
    with pytest.raises(ActJepaError, match="'state' contains NaN"):
        nn_policy.act({"state": np.full(STATE_DIM, np.inf, dtype=np.float32)})


@settings(max_examples=60, deadline=None)
@given(state=arrays(np.float32, STATE_DIM, elements=st.one_of(
    st.floats(-1e3, 1e3, width=32), st.floats(width=32, allow_nan=False, allow_infinity=False))),
    k=st.sampled_from([1, 3]))
def test_actions_are_finite_and_within_dataset_bounds(nn_policy, state, k):
    nn_policy.config.k = k
    low, high = nn_policy.processor.action_low, nn_policy.processor.action_high
    try:
        action = nn_policy.act({"state": state})
    except ActJepaError as err:  # only when normalisation overflows float32
        assert np.abs(state).max() > 1e3 and "non-finite latent" in str(err)
        return
    finally:
        nn_policy.config.k = 1
    assert np.isfinite(action).all() and (action >= low).all() and (action <= high).all()


def test_cli_builds_an_nn_policy(reach_world, reach_demos_path, tmp_path, capsys):
    out = tmp_path / "nn.pt"
    assert main(["train-policy", "nn", "--encoder", str(reach_world), "--data",
                 str(reach_demos_path), "--out", str(out), "--k", "3"]) == 0
    assert "nn memory" in capsys.readouterr().out
    assert load_policy(out, policy_type="nn").config.k == 3
    assert main(["train-policy", "nn", "--encoder", str(reach_world), "--data",
                 str(reach_demos_path), "--out", str(out), "--k", "0"]) == 2
    assert "k must be >= 1" in capsys.readouterr().err


def test_query_benchmark_reports_each_size():
    result = nn_query_benchmark((1000, 3000), repeats=5)
    assert set(result) == {1000, 3000}
    assert all(0 < r["median_ms"] <= r["p99_ms"] for r in result.values())


def test_nn_controls_the_arm_better_than_random(nn_policy, reach_random):
    result = evaluate(nn_policy, "reach-v3", REACH_EVAL_EPISODES, seed=1,
                      max_steps=REACH_EVAL_STEPS, progress=False)
    assert reach_random.successes <= 1, "uniform random actions should (almost) never reach"
    assert reaches_closer_than_random(result, reach_random), (
        median_final_distance(result), median_final_distance(reach_random))
