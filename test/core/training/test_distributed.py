"""Data-parallel training under torchrun (gloo, CPU processes) and exact resume after a kill.

Every test here starts real processes: torchrun with two workers, or two ranks started by hand
with the environment torchrun would give them (no agent to tear the group down, so the survivor's
own timeout and error handling are what is tested).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from actjepa_core.data.episodes import Episode, read_episodes, write_episodes
from actjepa_core.training import checkpoint as ckpt
from actjepa_core.training.metrics import read_metrics
from actjepa_core.training.trainer import train

from demo_data import small_config

TOLERANCE = dict(rtol=1e-4, atol=1e-5)  # float32 sums of two half-batches vs one batch
FLAGS = ["--device", "cpu", "--batch-size", "64", "--quiet", "--set", "run.log_every=5",
         "--set", "run.val_every=10", "--set", "model.state_hidden=[64,64]",
         "--set", "model.predictor_hidden=[64]", "--set", "model.latent_dim=32"]
STOP_S = 20  # a killed or hung rank must stop the other within this (run.dist_timeout_s + slack)
# one torch thread per process, as torchrun sets it: tiny MLPs on a busy 2-core machine are
# several times slower with two
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def state_episodes(n=10, steps=60, seed=0):
    """A linear system driven by random actions: s' = s + B a + noise."""
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(2, 6))
    for _ in range(n):
        s = [rng.normal(size=6)]
        actions = rng.uniform(-1, 1, (steps, 2))
        for a in actions[:-1]:
            s.append(s[-1] + 0.3 * a @ b + 0.01 * rng.normal(size=6))
        yield Episode({"state": np.array(s, np.float32)}, actions.astype(np.float32))


@pytest.fixture(scope="module")
def states_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "states.hdf5"
    write_episodes(path, state_episodes(), source="unit")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "actjepa_core.cli", *args]


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
            "-m", "actjepa_core.cli", *args]


def run(command: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_checkpoint(run_dir / "last.pt")["model"]


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(states_file, tmp_path):
    steps = "30"
    run(torchrun("train", "--data", str(states_file), "--out", str(tmp_path / "ddp"),
                 "--steps", steps, *FLAGS))
    run(cli("train", "--data", str(states_file), "--out", str(tmp_path / "one"), "--steps",
            steps, *FLAGS))
    one, ddp = weights(tmp_path / "one"), weights(tmp_path / "ddp")
    assert one.keys() == ddp.keys()
    for key in one:  # online and EMA target weights alike
        torch.testing.assert_close(ddp[key], one[key], **TOLERANCE, msg=key)
    rows_one = read_metrics(tmp_path / "one" / "metrics.csv")
    rows_ddp = read_metrics(tmp_path / "ddp" / "metrics.csv")  # rank 0 wrote it, once
    assert [r["step"] for r in rows_ddp] == [r["step"] for r in rows_one]
    for a, b in zip(rows_one, rows_ddp):  # losses, lr and tau schedule, validation
        for key in ("loss", "collapse", "lr", "tau", "val_loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-3), key
    assert (tmp_path / "ddp" / "best.pt").exists()


def start_ranks(states_file, out, timeout_s, steps=100000):
    port, procs = free_port(), []
    for rank in range(2):
        env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank)}
        procs.append(subprocess.Popen(
            cli("train", "--data", str(states_file), "--out", str(out), "--steps", str(steps),
                *FLAGS, "--set", "run.checkpoint_every=10",
                "--set", f"run.dist_timeout_s={timeout_s}"),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


@pytest.mark.parametrize("fault", ["kill", "hang"])
def test_a_dead_or_hung_rank_stops_the_other_with_an_error(states_file, tmp_path, fault):
    survivor, victim = start_ranks(states_file, tmp_path / "run", timeout_s=5)
    try:
        wait_for(tmp_path / "run" / "last.pt", survivor)
        os.kill(victim.pid, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        start = time.monotonic()
        _, err = survivor.communicate(timeout=STOP_S)
        assert time.monotonic() - start < STOP_S
    finally:
        for proc in (survivor, victim):
            if proc.poll() is None:
                proc.kill()
        victim.communicate()
    assert survivor.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "rank 0/2: stopped at step" in err, err
    assert "another training process failed or stopped answering" in err
    assert "rerun with --resume" in err and "last.pt holds step" in err


def test_torchrun_stops_the_group_when_a_worker_is_killed(states_file, tmp_path):
    proc = subprocess.Popen(torchrun("train", "--data", str(states_file), "--out",
                                     str(tmp_path / "run"), "--steps", "100000", *FLAGS,
                                     "--set", "run.checkpoint_every=10",
                                     "--set", "run.dist_timeout_s=5"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for(tmp_path / "run" / "last.pt", proc)
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(workers) == 2
        os.kill(int(workers[1]), signal.SIGKILL)
        proc.communicate(timeout=STOP_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode not in (0, None)
    assert not any(Path(f"/proc/{pid}").exists() and "zombie" not in
                   Path(f"/proc/{pid}/status").read_text() for pid in workers)


def test_resume_after_a_kill_equals_the_uninterrupted_run(states_file, tmp_path):
    flags = ["--steps", "200", *FLAGS, "--set", "run.checkpoint_every=10"]
    run(cli("train", "--data", str(states_file), "--out", str(tmp_path / "whole"), *flags))
    proc = subprocess.Popen(cli("train", "--data", str(states_file), "--out",
                                str(tmp_path / "cut"), *flags),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    wait_for(tmp_path / "cut" / "last.pt", proc)
    proc.kill()
    proc.wait()
    cut_at = ckpt.load_checkpoint(tmp_path / "cut" / "last.pt")["step"]
    assert 0 < cut_at < 200
    run(cli("train", "--data", str(states_file), "--out", str(tmp_path / "cut"), "--resume",
            *flags))
    whole, resumed = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key  # bit for bit, mid-epoch too
    rows = read_metrics(tmp_path / "cut" / "metrics.csv")
    assert [r["step"] for r in rows] == [r["step"] for r in
                                         read_metrics(tmp_path / "whole" / "metrics.csv")]


@pytest.mark.slow
def test_resume_under_torchrun_after_a_killed_worker(states_file, tmp_path):
    flags = ["--steps", "150", *FLAGS, "--set", "run.checkpoint_every=10"]
    run(torchrun("train", "--data", str(states_file), "--out", str(tmp_path / "whole"), *flags))
    proc = subprocess.Popen(torchrun("train", "--data", str(states_file), "--out",
                                     str(tmp_path / "cut"), *flags),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    wait_for(tmp_path / "cut" / "last.pt", proc)
    workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    os.kill(int(workers[1]), signal.SIGKILL)
    assert proc.wait(timeout=STOP_S) != 0
    assert ckpt.load_checkpoint(tmp_path / "cut" / "last.pt")["step"] < 150
    run(torchrun("train", "--data", str(states_file), "--out", str(tmp_path / "cut"),
                 "--resume", *flags))
    whole, resumed = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], **TOLERANCE, msg=key)


@pytest.mark.slow
def test_bc_head_under_torchrun_matches_one_process(states_file, tmp_path):
    world = tmp_path / "world"
    train(read_episodes(states_file), small_config(steps=20), world, progress=False)
    flags = ["--encoder", str(world / "last.pt"), "--data", str(states_file), "--steps", "40",
             "--seed", "1"]
    run(cli("train-policy", "bc", *flags, "--out", str(tmp_path / "one.pt")))
    run(torchrun("train-policy", "bc", *flags, "--out", str(tmp_path / "ddp.pt")))
    one = ckpt.load_checkpoint(tmp_path / "one.pt")
    ddp = ckpt.load_checkpoint(tmp_path / "ddp.pt")
    for key, value in one["policy"]["head"].items():
        torch.testing.assert_close(ddp["policy"]["head"][key], value, **TOLERANCE, msg=key)
