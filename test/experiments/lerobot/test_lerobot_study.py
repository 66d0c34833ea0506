"""The LeRobot side-by-side runner and report (.venv, no lerobot: training and evaluation run in
.venv-peers): its config matches the camera study's protocol, shards split the units without
overlap, finished units are skipped, bad settings are one line, and the page is rebuilt from
result lines alone, with who wins judged by the intervals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from actjepa_core.config import load_yaml
from actjepa_core.errors import ActJepaError
from experiments.camera.run import HERE as CAMERA_HERE
from experiments.camera.run import CameraStudy
from experiments.lerobot.report import OURS_LABEL, render, verdicts
from experiments.lerobot.run import (
    HERE,
    Cell,
    LeRobotStudy,
    done_keys,
    main,
    overrides,
    training,
    units,
)
from experiments.lerobot.train import LeRobotTraining, Trained, train_lerobot, write_trained


def study() -> LeRobotStudy:
    return load_yaml(LeRobotStudy, HERE / "lerobot.yaml")


def test_same_demos_and_held_out_episodes_as_the_camera_study():
    ours, theirs = load_yaml(CameraStudy, CAMERA_HERE / "camera.yaml"), study()
    for field in ("image_size", "demo_seed", "eval_seed", "eval_episodes", "max_steps",
                  "threads"):
        assert getattr(theirs, field) == getattr(ours, field), field
    assert theirs.demos == 100 and {c.policy for c in theirs.cells} == {"act", "diffusion"}
    diffusion = training(theirs, next(c for c in theirs.cells if c.policy == "diffusion"))
    assert diffusion.overrides["crop_shape"] == [56, 56]
    assert diffusion.overrides["pretrained_backbone_weights"] is None
    assert diffusion.budget_s == theirs.budget_s == 1380.0


def test_shards_split_every_unit_once_and_finished_units_are_skipped(tmp_path):
    every = units(study())
    assert len(every) == 6
    shards = [[u for i, u in enumerate(every) if i % 2 == k] for k in range(2)]
    assert sorted(map(repr, shards[0] + shards[1])) == sorted(map(repr, every))
    results = tmp_path / "lerobot.jsonl"
    results.write_text(json.dumps(row("act", "reach-v3", 10)) + "\n")
    assert done_keys(results) == {("act", "reach-v3", 100)}


def test_bad_settings_are_one_line(tmp_path, capsys):
    with pytest.raises(ActJepaError, match="expected key=value"):
        overrides(Cell(name="x", policy="act", overrides=["chunk_size"]))
    config = tmp_path / "bad.yaml"
    config.write_text("cells: [{name: x, policy: vqbet}]\n")
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "policy is 'vqbet'" in err[0] and "act" in err[0]
    assert main(["--shard", "2/2", "--results", str(tmp_path / "r.jsonl")]) == 2
    assert "--shard is '2/2'" in capsys.readouterr().err


def row(cell: str, task: str, successes: int, episodes: int = 50) -> dict:
    return {"cell": cell, "task": task, "demos": 100, "successes": successes,
            "episodes": episodes, "success": successes / episodes, "train_s": 1380.0,
            "steps": 700, "params": 51_598_212, "ms_p50": 1.2, "ms_p99": 60.0}


def test_the_page_is_rebuilt_from_result_lines_and_names_the_winner():
    s = study()
    ours = [dict(row("recipe", "push-v3", 45), cell=OURS_LABEL, params=None)]
    rows = [row("act", "push-v3", 5), row("diffusion", "push-v3", 10),
            row("act", "reach-v3", 20), row("diffusion", "reach-v3", 22)]
    page = render(s, rows, ours)
    assert "| push-v3 | act | 5/50 (10%, 4%-21%) | 23 min | 700 | 51.6 M | 1.2 | 60.0 |" in page
    lines = verdicts(ours + rows, [OURS_LABEL, "act", "diffusion"])
    assert lines[0].startswith("- reach-v3: no clear winner: diffusion (44%)")
    assert lines[1] == (f"- push-v3: **{OURS_LABEL}** wins (90%; every other interval lies "
                        "below its interval)")
    assert "Not measured yet: act pick-place-v3, diffusion pick-place-v3" in page
    assert "--shard 0/2" in page and Path("docs/results/lerobot.md").name not in page


def test_a_finished_run_is_read_back_without_training_or_lerobot(tmp_path):
    """A resumed study evaluates a finished run: no step is trained again, and lerobot (absent
    from .venv) is never imported on that path."""
    spec = LeRobotTraining(policy="diffusion", budget_s=60.0)
    write_trained(tmp_path, {"step": 184, "train_s": 1383.8}, 263_117_604, spec)

    trained = train_lerobot(tmp_path / "missing.hdf5", tmp_path, spec)

    assert trained == Trained(tmp_path / "policy", 1383.8, 184, 263_117_604)
