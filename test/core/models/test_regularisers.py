"""VICReg's variance and covariance terms: zero where latents are spread and decorrelated, and
their gradient spreads a collapsed batch apart."""
import torch

from actjepa_core.config import ModelConfig
from actjepa_core.models import ACTJEPA
from actjepa_core.models.regularisers import covariance_penalty, variance_penalty


def test_penalties_are_zero_for_spread_decorrelated_latents_and_positive_for_collapsed():
    spread = torch.eye(8).repeat(50, 1) * 8  # (400, 8): one-hot rows, std well above 1
    assert variance_penalty(spread) == 0
    independent = torch.randn(20000, 4, generator=torch.Generator().manual_seed(0))
    assert covariance_penalty(independent) < 1e-3
    collapsed = torch.ones(64, 8) + 1e-3 * torch.randn(64, 8)
    assert variance_penalty(collapsed) > 0.9
    correlated = torch.randn(256, 1).repeat(1, 8)
    assert covariance_penalty(correlated) > 1.0


def test_minimising_the_variance_term_spreads_a_collapsed_batch():
    torch.manual_seed(0)
    s = (torch.ones(64, 8) + 1e-3 * torch.randn(64, 8)).requires_grad_()
    optimiser = torch.optim.Adam([s], lr=0.05)
    for _ in range(200):
        optimiser.zero_grad()
        (variance_penalty(s) + 0.04 * covariance_penalty(s)).backward()
        optimiser.step()
    assert s.detach().std(dim=0).min() > 0.5


def test_the_world_models_loss_adds_the_terms_only_when_weighted():
    torch.manual_seed(0)
    shapes, config = {"state": (6,)}, ModelConfig(latent_dim=8, state_hidden=[16],
                                                  action_hidden=[8], predictor_hidden=[8])
    plain = ACTJEPA(shapes, 2, config)
    weighted = ACTJEPA(shapes, 2, config, variance_weight=1.0, covariance_weight=0.04)
    weighted.load_state_dict(plain.state_dict())
    obs, actions = {"state": torch.randn(32, 6)}, torch.randn(32, 1, 2)
    nxt = {"state": torch.randn(32, 1, 6)}
    base, extra = plain.loss(obs, actions, nxt).loss, weighted.loss(obs, actions, nxt).loss
    s = plain.encode(obs)
    expected = variance_penalty(s) + 0.04 * covariance_penalty(s)
    assert torch.allclose(extra - base, expected, atol=1e-5)
