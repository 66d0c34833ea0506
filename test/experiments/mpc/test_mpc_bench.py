"""`python -m experiments.mpc.run` and `.planning`: every setting evaluated once, resumed without
redoing finished cells, the table and timings rendered from what was measured."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from actjepa_core.errors import ActJepaError
from experiments.mpc import planning
from experiments.mpc import run as mpc_run
from experiments.mpc.bench import (
    MPCBenchConfig,
    Setting,
    ensure_world,
    world_dir,
    world_settings,
)

pytestmark = pytest.mark.sim

TINY = {"tasks": ["reach-v3"], "demos": 4, "play_episodes": 2, "play_steps": 20,
        "world_steps": 20, "world_overrides": ["loss.rollout_steps=2", "optim.batch_size=32",
                                               "run.val_every=10", "run.log_every=10",
                                               "run.checkpoint_every=10"],
        "val_demos": 1, "horizon": 3, "eval_episodes": 2, "max_steps": 8,
        "settings": [{"name": "cem-final", "goal_source": "demo",
                      "overrides": ["cem.samples=16", "cem.elites=4", "cem.iterations=2"]},
                     {"name": "icem-tracking", "goal_source": "demo",
                      "overrides": ["goal=tracking", "planner=icem", "icem.samples=16",
                                    "icem.elites=4", "binary_dims=[3]"]},
                     {"name": "mppi-subgoals", "goal_source": "demo-subgoals",
                      "overrides": ["goal=subgoals", "planner=mppi", "mppi.samples=16"]}]}


def test_bench_mpc_runs_each_setting_once_and_resumes(tmp_path, capsys, one_torch_thread):
    config = tmp_path / "mpc.yaml"
    config.write_text(yaml.safe_dump(TINY))
    results = tmp_path / "mpc.jsonl"
    args = ["--config", str(config), "--work", str(tmp_path / "work"),
            "--results", str(results), "--quiet"]
    assert mpc_run.main([*args, "--settings", "icem-tracking"]) == 0  # one setting alone first
    assert mpc_run.main([*args, "--settings", "no-such"]) != 0
    assert "no setting 'no-such'; expected one of ['cem-final'" in capsys.readouterr().err
    assert mpc_run.main(args) == 0  # then the rest
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["setting"] for r in rows] == ["icem-tracking", "cem-final", "mppi-subgoals"]
    rows = [rows[1], rows[0], rows[2]]  # the config's order
    for row in rows:
        assert row["episodes"] == 2 and len(row["rollout_rel_error"]) == 3
        assert all(e >= 0 for e in row["rollout_rel_error"]) and row["ms_p99"] >= row["ms_p50"]
    assert "tracking 3 demos" in rows[1]["summary"]
    table = capsys.readouterr().out
    assert "`icem-tracking`" in table and "k=3" in table

    assert mpc_run.main(args) == 0  # nothing left to do: no new line
    assert len(results.read_text().splitlines()) == 3

    out = tmp_path / "BENCH.md"
    assert planning.main(["--config", str(config), "--world",
                     str(tmp_path / "work" / "reach-v3" / "world" / "best.pt"), "--data",
                     str(tmp_path / "work" / "reach-v3-expert.hdf5"), "--samples", "5",
                     "--demos", "2", "--out", str(out)]) == 0
    text = out.read_text()
    for name in ("cem-final", "icem-tracking", "mppi-subgoals"):
        assert f"`{name}`" in text
    assert "matmul peak" in text and "p99 ms/action" in text


def test_bench_mpc_on_images_plans_from_the_camera_alone(tmp_path, one_torch_thread):
    """`obs: image`: demos rendered once into size-tagged files, a world model that encodes the
    image only, goals given as the expert's final camera image."""
    from actjepa_core.policies import FrozenWorld

    tiny = {**TINY, "obs": "image", "image_size": 16, "demos": 3, "play_episodes": 1,
            "play_steps": 10, "world_steps": 4, "eval_episodes": 1, "max_steps": 4,
            "world_overrides": [*TINY["world_overrides"], "model.image_channels=[4, 8]"],
            "settings": TINY["settings"][:1]}
    config = tmp_path / "mpc.yaml"
    config.write_text(yaml.safe_dump(tiny))
    results = tmp_path / "mpc-image.jsonl"
    work = tmp_path / "work"
    assert mpc_run.main(["--config", str(config), "--work", str(work),
                     "--results", str(results), "--quiet"]) == 0
    doc = tmp_path / "RESULTS.md"
    doc.write_text("<!-- bench:mpc:start -->\nstate table\n<!-- bench:mpc:end -->\n")
    assert mpc_run.main(["--config", str(config), "--results", str(results),
                     "--report", "--out", str(doc)]) == 0
    text = doc.read_text()  # its own block, named for the results file; the state one kept
    assert "state table" in text and "<!-- bench:mpc-image:start -->" in text
    [row] = [json.loads(line) for line in results.read_text().splitlines()]
    assert row["obs"] == "image" and row["episodes"] == 1 and row["setting"] == "cem-final"
    assert (work / "reach-v3-expert-16px.hdf5").is_file()
    world = FrozenWorld.from_checkpoint(work / "reach-v3" / "world-16px" / "best.pt")
    assert list(world.spec) == ["image"] and tuple(world.spec["image"]["shape"]) == (16, 16, 3)


def test_bench_mpc_trains_the_value_and_prior_once_per_task(tmp_path, one_torch_thread,
                                                            monkeypatch):
    """Settings that differ only in the search share one value and one prior; the prior-only
    setting runs without search, and planning timings build without training anything."""
    from actjepa_core.policies import mpc as mpc_policy

    fits = []
    for name in ("fit_value", "fit_prior"):
        real = getattr(mpc_policy, name)
        monkeypatch.setattr(mpc_policy, name,
                            lambda *a, _real=real, _name=name: fits.append(_name) or _real(*a))
    small = ["value.steps=20", "value.batch_size=32", "prior.steps=20", "prior.batch_size=32",
             "cem.samples=16", "cem.elites=4", "cem.iterations=2"]
    tiny = {**TINY, "settings": [
        {"name": "prior-direct", "goal_source": "demo", "overrides": [*small,
                                                                      "prior.mode=direct"]},
        {"name": "value-prior", "goal_source": "demo",
         "overrides": [*small, "cost=value", "prior.mode=proposal"]},
        {"name": "value-prior-narrow", "goal_source": "demo",
         "overrides": [*small, "cost=value", "prior.mode=proposal", "cem.init_std=0.05"]},
        {"name": "value-prior-guard", "goal_source": "demo",
         "overrides": [*small, "cost=value", "prior.mode=proposal", "prior.guard=true"]}]}
    config = tmp_path / "bench_mpc_learned.yaml"
    config.write_text(yaml.safe_dump(tiny))
    results = tmp_path / "mpc-learned.jsonl"
    assert mpc_run.main(["--config", str(config), "--work", str(tmp_path / "work"),
                     "--results", str(results), "--quiet"]) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["setting"] for r in rows] == ["prior-direct", "value-prior", "value-prior-narrow",
                                            "value-prior-guard"]
    assert sorted(fits) == ["fit_prior", "fit_value"]
    assert "prior, no search" in rows[0]["summary"] and "value cost" in rows[1]["summary"]
    assert "plan_share" not in rows[1] and 0 <= rows[3]["plan_share"] <= 1  # guarded ticks
    assert rows[3]["guard_gain_p50"] <= rows[3]["guard_gain_p90"]
    results.unlink()  # a rerun from scratch reads the value and prior the first one kept
    assert mpc_run.main(["--config", str(config), "--work", str(tmp_path / "work"),
                     "--results", str(results), "--quiet", "--settings", "value-prior"]) == 0
    assert sorted(fits) == ["fit_prior", "fit_value"]
    assert planning.main(["--config", str(config), "--world",
                     str(tmp_path / "work" / "reach-v3" / "world" / "best.pt"), "--data",
                     str(tmp_path / "work" / "reach-v3-expert.hdf5"), "--samples", "3",
                     "--demos", "2", "--out", str(tmp_path / "BENCH.md")]) == 0
    assert sorted(fits) == ["fit_prior", "fit_value"]  # timing trained nothing
    text = (tmp_path / "BENCH.md").read_text()  # its own block, named for the config
    assert "<!-- bench:planning-learned:start -->" in text and "`value-prior`" in text


def test_bench_mpc_refuses_a_world_trained_from_other_settings(tmp_path):
    """Two configs sharing a --work folder must not plan with each other's world models."""
    config = MPCBenchConfig(settings=[Setting("cem-final")])
    run = world_dir("reach-v3", config, tmp_path)
    run.mkdir(parents=True)
    (run / "done").write_text(json.dumps(world_settings(config)))
    other = replace(config, world_overrides=[*config.world_overrides, "ema.tau_start=0.9999"])
    with pytest.raises(ActJepaError, match=r"world_overrides=.*another --work folder"):
        ensure_world("reach-v3", other, tmp_path)
    (run / "done").write_text("")  # a marker that says nothing is not trusted either
    with pytest.raises(ActJepaError, match=r"done records no world settings"):
        ensure_world("reach-v3", config, tmp_path)
