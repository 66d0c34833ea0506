"""Algorithm 1 on real Meta-World push-v3 demos: learning, collapse, checkpoints, resume."""
import math

import pytest
import torch

from actjepa_core.data.transitions import TransitionSet, split_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.training import checkpoint as ckpt
from actjepa_core.training.metrics import read_metrics
from actjepa_core.training.schedules import lr_at, tau_at
from actjepa_core.training.trainer import Trainer, train

from demo_data import small_config

COLLAPSED = 0.05  # a collapse metric below this means the latents barely vary across a batch


def test_default_config_learns_without_collapse(trained_run):
    run_dir, result = trained_run
    rows = read_metrics(run_dir / "metrics.csv")
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"], "training loss must fall"
    assert all(r["collapse"] > COLLAPSED for r in rows), "collapse metric must stay above zero"
    val = [r for r in rows if "val_loss" in r]
    assert len(val) >= 2
    assert all(math.isfinite(r["val_loss"]) and r["val_rel_loss"] < 1 for r in val)
    assert val[-1]["val_collapse"] > COLLAPSED
    assert {"lr", "tau", "transitions_per_s"} <= set(rows[-1])
    assert (run_dir / "last.pt").exists() and (run_dir / "best.pt").exists()
    assert (run_dir / "config.yaml").exists() and any((run_dir / "tb").iterdir())
    assert result.steps == 600


def test_checkpoint_reloads_to_bit_identical_predictions(trained_run, push_demos):
    run_dir, _ = trained_run
    content = ckpt.load_checkpoint(run_dir / "last.pt", kind=ckpt.WORLD_MODEL)
    assert content["format_version"] == ckpt.FORMAT_VERSION
    assert content["obs_spec"] == {"state": {"shape": [39], "dtype": "float32"}}
    model_a, norm, _ = ckpt.load_world_model(run_dir / "last.pt")
    model_b, _, _ = ckpt.load_world_model(run_dir / "last.pt")
    ep = push_demos.episodes[0]
    obs = norm.obs({"state": torch.as_tensor(ep.obs["state"])})
    actions = norm.action(torch.as_tensor(ep.actions))[:, None]  # (T, 1, A)
    with torch.no_grad():
        pred_a = model_a.predict(model_a.encode(obs), actions[:, 0])
        pred_b = model_b.predict(model_b.encode(obs), actions[:, 0])
    assert torch.equal(pred_a, pred_b)
    # and the same as the weights in memory at save time: reload == saved state dict
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, content["model"][key])


def test_checkpoint_rejects_foreign_and_wrong_kind_files(tmp_path, trained_run):
    run_dir, _ = trained_run
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ActJepaError, match="not an actjepa checkpoint"):
        ckpt.load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ActJepaError, match="not a readable actjepa checkpoint"):
        ckpt.load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ActJepaError, match="expected 'bc_policy'"):
        ckpt.load_checkpoint(run_dir / "last.pt", kind="bc_policy")
    content = ckpt.load_checkpoint(run_dir / "last.pt")
    content["format_version"] = 99
    torch.save(content, tmp_path / "future.pt")
    with pytest.raises(ActJepaError, match="format version 99"):
        ckpt.load_checkpoint(tmp_path / "future.pt")


def test_resume_continues_to_the_total(push_demos, tmp_path):
    run = tmp_path / "r"
    train(push_demos, small_config(steps=40), run, progress=False)
    first = ckpt.load_checkpoint(run / "last.pt")["train_seconds"]
    with pytest.raises(ActJepaError, match="already holds a run"):
        train(push_demos, small_config(steps=40), run, progress=False)
    result = train(push_demos, small_config(steps=80), run, resume=True, progress=False)
    assert result.steps == 80
    resumed = ckpt.load_checkpoint(run / "last.pt")
    assert resumed["step"] == 80
    assert resumed["train_seconds"] > first > 0  # the training time counts across the resume
    steps = [r["step"] for r in read_metrics(run / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 80 and 40 in steps
    with pytest.raises(ActJepaError, match="no last.pt"):
        train(push_demos, small_config(steps=10), tmp_path / "new", resume=True, progress=False)


def test_same_seed_same_weights(push_demos, tmp_path):
    states = []
    for name in ("a", "b"):
        train(push_demos, small_config(steps=20), tmp_path / name, progress=False)
        states.append(ckpt.load_checkpoint(tmp_path / name / "last.pt")["model"])
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_validation_holds_out_whole_demos(push_demos):
    train_eps, val_eps = split_episodes(push_demos.episodes, 0.25, seed=0)
    assert len(val_eps) == 4 and len(train_eps) == 12
    assert not {id(e) for e in train_eps} & {id(e) for e in val_eps}


def test_transitions_never_cross_demos(push_demos, tmp_path):
    trainer = Trainer(push_demos, small_config(steps=1, loss__rollout_steps=3), tmp_path)
    ts: TransitionSet = trainer.train_set
    lengths = [ep.num_steps for ep in split_episodes(push_demos.episodes, 0.1, 0)[0]]
    assert len(ts) == sum(n - 3 for n in lengths)
    ends = torch.tensor(lengths).cumsum(0)  # first index of the next demo
    window_last = ts.starts + 3  # last observation a window reads
    demo_of_start = torch.searchsorted(ends, ts.starts, right=True)
    demo_of_last = torch.searchsorted(ends, window_last, right=True)
    assert torch.equal(demo_of_start, demo_of_last)


def test_multi_step_rollout_loss_trains(push_demos, tmp_path):
    result = train(push_demos, small_config(steps=60, loss__rollout_steps=3), tmp_path / "k3",
                   progress=False)
    assert math.isfinite(result.loss) and result.collapse > COLLAPSED


def test_schedules():
    assert lr_at(0, 100, 1.0, 0.1) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 0.1) == pytest.approx(1.0)
    assert lr_at(99, 100, 1.0, 0.1) < 0.01
    assert tau_at(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert tau_at(100, 100, 0.996, 1.0) == pytest.approx(1.0)
    assert tau_at(10, 100, 0.996, 1.0) < tau_at(60, 100, 0.996, 1.0)


def test_bf16_autocast_trains_and_keeps_fp32_weights(push_demos, tmp_path):
    config = small_config(steps=60, run__precision="bf16")
    result = train(push_demos, config, tmp_path / "bf16", progress=False)
    assert math.isfinite(result.loss) and result.collapse > COLLAPSED
    state = ckpt.load_checkpoint(tmp_path / "bf16" / "last.pt")["model"]
    assert all(v.dtype == torch.float32 for v in state.values())


def test_init_encoder_starts_a_run_from_a_pretrained_encoder(trained_run, push_demos, tmp_path):
    """Fine-tuning (`run.init_encoder`): the new run's encoder starts equal to the pretrained
    online encoder, whatever its objective; a checkpoint trained on other observations or with
    other encoder layers is refused by name."""
    run_dir, _ = trained_run
    source = ckpt.load_checkpoint(run_dir / "best.pt", kind=ckpt.WORLD_MODEL)["model"]
    config = small_config(steps=2, run__init_encoder=str(run_dir / "best.pt"))
    config.objective = "raw"
    mine = Trainer(push_demos, config, tmp_path / "tuned", device="cpu").model.encoder
    for key, value in mine.state_dict().items():
        assert torch.equal(value, source[f"encoder.{key}"]), key
    scratch = Trainer(push_demos, small_config(steps=2, run__seed=0), tmp_path / "s", "cpu")
    assert not all(torch.equal(v, source[f"encoder.{k}"])
                   for k, v in scratch.model.encoder.state_dict().items())

    wider = small_config(steps=2, run__init_encoder=str(run_dir / "best.pt"))
    wider.model.latent_dim *= 2
    with pytest.raises(ActJepaError, match="run.init_encoder .*layers differ"):
        Trainer(push_demos, wider, tmp_path / "w", device="cpu")
    model = Trainer(push_demos, config, tmp_path / "t2", device="cpu").model
    with pytest.raises(ActJepaError, match="trained on observations .*this run's data has"):
        ckpt.init_encoder(model, run_dir / "best.pt", {"image": {"shape": [64, 64, 3],
                                                                 "dtype": "uint8"}})


def test_noise_augmentation_reaches_o_t_only_at_stds_up_to_its_bound(push_demos, tmp_path):
    trainer = Trainer(push_demos, small_config(steps=1, augment__noise=0.5), tmp_path)
    clean = trainer.train_set.batch(torch.arange(256))
    noisy = trainer.noised(clean)
    assert torch.equal(noisy.next_obs["state"], clean.next_obs["state"])  # targets stay clean
    assert torch.equal(noisy.actions, clean.actions)
    std = (noisy.obs["state"] - clean.obs["state"]).std(dim=1)  # (B,) per-sample noise level
    assert std.max() < 0.5 * 1.3 and std.min() < 0.1 < std.max()  # drawn in [0, 0.5]
    off = Trainer(push_demos, small_config(steps=1), tmp_path / "off")
    assert off.noised(clean) is clean


def test_a_negative_noise_bound_is_refused():
    from actjepa_core.config import TrainConfig, apply_overrides

    with pytest.raises(ActJepaError, match="augment.noise must be a finite std >= 0, got -0.1"):
        apply_overrides(TrainConfig(), ["augment.noise=-0.1"], where="train.yaml")
