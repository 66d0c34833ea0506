"""The trainer on streamed image data, the loader choice, and the GPU-path options on the CPU
(channels-last kernels, torch.compile): same results as the plain path, within float tolerance."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from actjepa_core.data.episodes import Episode, write_episodes
from actjepa_core.data.streaming import StreamingTransitions, open_training_data
from actjepa_core.data.transitions import TransitionSet
from actjepa_core.training import checkpoint as ckpt
from actjepa_core.training.metrics import read_metrics
from actjepa_core.training.trainer import Trainer, train

from demo_data import small_config

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    """Small models on a busy 2-core machine: a second torch thread makes them many times
    slower (conftest.train_on_one_thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def image_episodes(n=6, steps=70, size=16, seed=0):
    """A bright square moved by the action over a noisy background."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        pos = rng.uniform(3, size - 4, 2)
        actions = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
        frames = rng.integers(0, 40, (steps, size, size, 3)).astype(np.uint8)
        states = np.zeros((steps, 2), np.float32)
        for t in range(steps):
            y, x = np.clip(pos, 1, size - 3).astype(int)
            frames[t, y:y + 3, x:x + 3] = 220
            states[t] = pos
            pos = np.clip(pos + actions[t], 1, size - 3)
        yield Episode({"image": frames, "state": states}, actions)


@pytest.fixture(scope="module")
def images_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "images.hdf5"
    write_episodes(path, image_episodes(), source="unit")
    return path


def image_config(steps=20, **overrides):
    config = small_config(steps=steps, **overrides)
    config.model.image_channels = [8, 16]
    config.model.latent_dim = 32
    config.model.predictor_hidden = [32]
    config.optim.batch_size = 32
    config.data.workers = 1
    return config


def test_streamed_and_in_memory_training_take_the_same_steps_for_the_same_batches(images_file,
                                                                                  tmp_path):
    config = image_config()
    streamed, _ = open_training_data(images_file, None, "stream")
    in_memory, _ = open_training_data(images_file, None, "memory")
    a = Trainer(in_memory, config, tmp_path / "a")
    b = Trainer(streamed, config, tmp_path / "b")
    assert isinstance(a.train_set, TransitionSet)
    assert isinstance(b.train_set, StreamingTransitions)
    loader = b.train_set.loader(32, seed=0, workers=1, with_positions=True)
    for step in range(6):
        positions, batch = next(loader)
        out_a = a.train_step(a.train_set.batch(positions), 1e-3, 0.99)
        out_b = b.train_step(batch, 1e-3, 0.99)
        assert torch.equal(out_a.loss, out_b.loss), step
    loader.close()
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    assert a.validate() == b.validate()  # the streamed validation pass: same numbers


def test_auto_streams_past_the_budget_and_trains(images_file, tmp_path):
    config = image_config(steps=30)
    config.augment.shift = 2
    data, plan = open_training_data(images_file, None, "auto", budget_gb=1e-4)
    assert plan.loader == "stream" and "streaming image" in plan.describe()
    result = train(data, config, tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert result.steps == 30 and np.isfinite(result.loss) and rows[-1]["loss"] < rows[0]["loss"]
    assert "val_loss" in rows[-1] and (tmp_path / "run" / "best.pt").exists()


@pytest.mark.slow  # three CLI processes: ~20 s on a busy 2-core machine; the loader's skip is
# tested in test/core/data/test_streaming.py, the in-memory kill in test_distributed.py
def test_streamed_resume_after_a_kill_equals_the_uninterrupted_run(images_file, tmp_path):
    flags = ["--data", str(images_file), "--steps", "50", "--batch-size", "32", "--device",
             "cpu", "--quiet", "--set", "data.loader=stream", "--set", "data.workers=1",
             "--set", "augment.shift=2", "--set", "model.image_channels=[8,16]",
             "--set", "model.latent_dim=32", "--set", "run.checkpoint_every=10"]
    command = [sys.executable, "-m", "actjepa_core.cli", "train"]
    whole = subprocess.run([*command, *flags, "--out", str(tmp_path / "whole")], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([*command, *flags, "--out", str(tmp_path / "cut")], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (tmp_path / "cut" / "last.pt").exists():
        assert proc.poll() is None
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert ckpt.load_checkpoint(tmp_path / "cut" / "last.pt")["step"] < 50
    resumed = subprocess.run([*command, *flags, "--out", str(tmp_path / "cut"), "--resume"],
                             env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a = ckpt.load_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    b = ckpt.load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    for key in a:  # the workers' random shifts are seeded per batch: replayed exactly
        assert torch.equal(a[key], b[key]), key


def test_channels_last_kernels_train_like_contiguous_ones(images_file, tmp_path):
    data, _ = open_training_data(images_file, None, "memory")
    results = {}
    for fmt in ("contiguous", "channels_last"):
        config = image_config(steps=8, run__memory_format=fmt)
        (tmp_path / fmt).mkdir()
        trainer = Trainer(data, config, tmp_path / fmt)
        conv = trainer.model.encoder.encoders["image"].convs[0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last")
        trainer.run(progress=False)
        results[fmt] = {k: v.contiguous() for k, v in trainer.model.state_dict().items()}
    for key, value in results["contiguous"].items():
        torch.testing.assert_close(results["channels_last"][key], value, rtol=1e-4, atol=1e-5)
    config = image_config(steps=1)  # auto: channels-last on CUDA only, so the CPU is unchanged
    assert not Trainer(data, config, tmp_path / "auto").channels_last


@pytest.mark.slow
def test_compiled_step_matches_eager(images_file, tmp_path):
    data, _ = open_training_data(images_file, None, "memory")
    states = {}
    for compiled in (False, True):
        (tmp_path / str(compiled)).mkdir()
        trainer = Trainer(data, image_config(steps=4, run__compile=compiled),
                          tmp_path / str(compiled))
        trainer.run(progress=False)
        states[compiled] = trainer.model.state_dict()
    for key, value in states[False].items():
        torch.testing.assert_close(states[True][key], value, rtol=1e-4, atol=1e-5)
