import copy

import pytest
import torch

from actjepa_core.config import ModelConfig
from actjepa_core.models import ACTJEPA, Predictor
from actjepa_core.models.world_model import collapse_metric, latent_distance

SHAPES = {"state": (7,)}


def batch(b=16, k=1, shapes=SHAPES, action_dim=3):
    obs = {key: torch.rand(b, *s) for key, s in shapes.items()}
    nxt = {key: torch.rand(b, k, *s) for key, s in shapes.items()}
    return obs, torch.rand(b, k, action_dim) * 2 - 1, nxt


def test_target_starts_equal_and_gets_no_gradient():
    torch.manual_seed(0)
    model = ACTJEPA(SHAPES, 3, ModelConfig())
    for p, tp in zip(model.encoder.parameters(), model.target_encoder.parameters()):
        assert torch.equal(p, tp) and not tp.requires_grad
    model.loss(*batch()).loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    trainable = {id(p) for p in model.trainable_parameters()}
    for name, p in model.named_parameters():
        if id(p) in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert name.startswith("target_encoder.")


def test_target_changes_only_through_ema():
    torch.manual_seed(0)
    model = ACTJEPA(SHAPES, 3, ModelConfig())
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    for _ in range(3):
        before = copy.deepcopy(model.target_encoder.state_dict())
        out = model.loss(*batch())
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        # the optimizer step alone must not touch the target
        for key, value in model.target_encoder.state_dict().items():
            assert torch.equal(value, before[key])
        tau = 0.9
        model.update_target(tau)
        online = model.encoder.state_dict()
        for key, value in model.target_encoder.state_dict().items():
            torch.testing.assert_close(value, tau * before[key] + (1 - tau) * online[key])


def test_no_ema_ablation_targets_the_online_encoder_without_gradient():
    model = ACTJEPA(SHAPES, 3, ModelConfig(), ema=False)
    assert model.target_encoder is None
    obs, actions, nxt = batch()
    target = model.encode_target({k: v[:, 0] for k, v in nxt.items()})
    assert not target.requires_grad
    torch.testing.assert_close(target, model.encode({k: v[:, 0] for k, v in nxt.items()}))


@pytest.mark.parametrize("injection", ["concat", "add", "film"])
def test_every_action_injection_predicts_d_and_uses_the_action(injection):
    torch.manual_seed(0)
    pred = Predictor(ModelConfig(latent_dim=16, predictor_hidden=[8, 8],
                                 action_injection=injection))
    s, e1, e2 = torch.randn(4, 16), torch.randn(4, 16), torch.randn(4, 16)
    assert pred(s, e1).shape == (4, 16)
    assert not torch.allclose(pred(s, e1), pred(s, e2))  # the action changes the prediction


def test_predictor_hidden_is_a_bottleneck_by_default():
    widths = [m.out_features for m in Predictor(ModelConfig()).modules()
              if isinstance(m, torch.nn.Linear)]
    assert max(widths[:-1]) <= ModelConfig().latent_dim


def test_image_and_multi_key_encoders():
    shapes = {"state": (5,), "image": (32, 32, 3)}
    model = ACTJEPA(shapes, 2, ModelConfig(latent_dim=16, image_channels=[4, 8]))
    obs, actions, nxt = batch(b=3, k=2, shapes=shapes, action_dim=2)
    assert model.encode(obs).shape == (3, 16)
    out = model.loss(obs, actions, nxt)
    assert out.loss.ndim == 0 and out.latent.shape == (3, 16)
    assert model.rollout(model.encode(obs), actions).shape == (3, 2, 16)


def test_a_shared_image_encoder_is_one_cnn_for_every_camera_of_its_size():
    from actjepa_core.models.encoders import ObservationEncoder

    shapes = {"image": (16, 16, 3), "image_wrist": (16, 16, 3), "joints": (9,)}
    config = ModelConfig(latent_dim=8, image_channels=[4])
    own = ObservationEncoder(shapes, config)
    shared = ObservationEncoder(shapes, ModelConfig(latent_dim=8, image_channels=[4],
                                                    shared_image_encoder=True))
    assert shared.encoders["image"] is shared.encoders["image_wrist"]
    assert own.encoders["image"] is not own.encoders["image_wrist"]
    cnn = sum(p.numel() for p in own.encoders["image"].parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(own) - count(shared) == cnn  # one CNN's weights fewer
    obs = {k: torch.rand(2, *s) for k, s in shapes.items()}
    obs["image_wrist"] = obs["image"].flip(1)  # another view: another latent through one CNN
    parts = [shared.encoders[k](obs[k]) for k in ("image", "image_wrist")]
    assert not torch.allclose(*parts) and shared(obs).shape == (2, 8)


def test_keypoints_are_the_expected_position_of_each_map_channel_between_its_cells():
    from actjepa_core.models.encoders import SpatialSoftmax

    pool = SpatialSoftmax(channels=1, height=5, width=5, keypoints=1)
    with torch.no_grad():
        pool.project.weight.fill_(1.0)
        pool.project.bias.zero_()
    maps = torch.full((2, 1, 5, 5), -50.0)
    maps[0, 0, 0, 4] = 50.0  # one peak, top right: (x, y) = (1, -1)
    maps[1, 0, 2, 1:3] = 50.0  # two equal cells side by side: their midpoint, between cells
    assert torch.allclose(pool(maps), torch.tensor([[1.0, -1.0], [-0.25, 0.0]]), atol=1e-4)


def test_a_keypoint_image_encoder_gives_d_from_two_coordinates_per_keypoint():
    from actjepa_core.models.encoders import ImageEncoder

    config = ModelConfig(latent_dim=8, image_channels=[4, 8], image_pool="keypoints",
                         image_keypoints=3)
    encoder = ImageEncoder((16, 16, 3), config)
    assert encoder.head.in_features == 6  # 3 keypoints x (x, y), whatever the map's size
    images = torch.rand(2, 16, 16, 3, requires_grad=True)
    out = encoder(images)
    out.sum().backward()
    assert out.shape == (2, 8) and images.grad.abs().sum() > 0


def test_loss_is_the_seeds_squared_l2_and_its_normalised_variant():
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 0.0]])
    assert latent_distance(a, b).item() == 25.0
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 5.0]])
    assert latent_distance(a, b, normalise=True).item() == pytest.approx(2.0)


def test_collapse_metric_is_zero_for_a_constant_batch():
    assert collapse_metric(torch.ones(8, 4)).item() == 0.0
    assert collapse_metric(torch.randn(512, 4)).item() == pytest.approx(1.0, abs=0.15)


def test_stop_gradient_ablation_lets_gradient_through_the_target_side():
    obs, actions, nxt = batch()
    grads = []
    for stop in (True, False):
        torch.manual_seed(0)
        model = ACTJEPA(SHAPES, 3, ModelConfig(), ema=False, stop_gradient=stop)
        model.loss(obs, actions, nxt).loss.backward()
        grads.append(model.encoder.encoders["state"].net[0].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])
    with pytest.raises(ValueError, match="no-EMA"):
        ACTJEPA(SHAPES, 3, ModelConfig(), ema=True, stop_gradient=False)
