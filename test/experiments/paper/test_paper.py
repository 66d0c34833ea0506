"""`python -m experiments.paper.run`: the plan covers the four tables, the quick mode runs end to
end, a stopped run resumes without redoing finished cells, and the report is a pure function of the
results file."""
from __future__ import annotations

import json
import os

import pytest
import torch

from actjepa_core.errors import ActJepaError
from experiments.paper import run as paper_run
from experiments.paper.plan import (
    ABLATION_METHODS,
    MAIN_METHODS,
    PaperConfig,
    load_paper_config,
    plan_units,
)

from demo_data import REPO


def test_the_plan_trains_each_shared_cell_once_and_covers_every_table():
    config = PaperConfig(tasks=["push-v3"], seeds=[0, 1], seeded_methods=["act-jepa"]).validate()
    units = plan_units(config)
    keys = [u.key for u in units]
    assert len(keys) == len(set(keys))
    act = [u for u in units if u.method.name == "act-jepa" and u.demos == 100]
    assert [u.seed for u in act] == [0, 1]  # seeded method: every seed
    assert act[0].sigmas == (0.0, 0.05, 0.1, 0.2, 0.3)  # main + noise + ablation ref + data 100
    assert {u.seed for u in units if u.method.name == "autoencoder"} == {0}
    names = {u.method.name for u in units}
    assert {m.name for m in (*MAIN_METHODS, *ABLATION_METHODS)} <= names
    assert {u.demos for u in units if u.method.name == "raw"} == {10, 25, 50, 100}
    # the central comparison first: act-jepa and raw on every task, seed 0
    assert [(u.method.name, u.seed) for u in units[:2]] == [("act-jepa", 0), ("raw", 0)]


def test_priority_extras_run_right_after_the_central_comparisons_first_seed():
    config = PaperConfig(tasks=["reach-v3"], seeds=[0, 1], seeded_methods=["act-jepa"],
                         priority_methods=["act-jepa+norm"]).validate()
    names = [u.method.name for u in plan_units(config)]
    assert names[:3] == ["act-jepa", "raw", "act-jepa+norm"]  # before the other rows
    assert names.count("act-jepa+norm") == 1
    with pytest.raises(ActJepaError, match="priority_methods must be among extra_methods"):
        PaperConfig(extra_methods=[], priority_methods=["act-jepa+norm"]).validate()


def test_the_shipped_paper_configs_load():
    state = load_paper_config(REPO / "experiments" / "paper" / "paper_state.yaml")
    image = load_paper_config(REPO / "experiments" / "paper" / "paper_image.yaml")
    assert (state.obs, image.obs, image.image_size) == ("state", "image", 64)
    assert state.seeds == [0, 1, 2] and state.eval_episodes == 50


def test_a_bad_paper_config_names_the_key(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text("obs: lidar\n")
    with pytest.raises(ActJepaError, match="paper.yaml: obs is 'lidar'; expected one of state"):
        load_paper_config(path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
def test_training_on_cuda_where_there_is_none_stops_with_one_line(tmp_path, capsys):
    args = ["--quick", "--device", "cuda", "--work", str(tmp_path / "work"),
            "--results", str(tmp_path / "r.jsonl"), "--quiet"]
    assert paper_run.main(args) != 0
    assert "device 'cuda' asked for, but CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "work").exists()


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.sim
def test_quick_mode_runs_resumes_and_reports_from_the_results_alone(tmp_path, capsys,
                                                                     one_torch_thread):
    results, out = tmp_path / "r.jsonl", tmp_path / "docs" / "results" / "paper.md"
    args = ["--quick", "--work", str(tmp_path / "work"), "--results",
            str(results), "--out", str(out), "--quiet"]
    assert paper_run.main(args) == 0
    rows = read(results)
    cells = {(r["method"], r["demos"], r["sigma"]) for r in rows}
    assert len(cells) == len(rows) == 21  # 5 main x 2 sigmas, 7 ablations, 2 x 1 data, 1 extra x 2
    for row in rows:
        assert row["episodes"] == 2 and 0 <= row["successes"] <= 2
        assert row["ci_low"] <= row["success"] <= row["ci_high"]
        assert {"objective", "overrides", "train_wall_s", "git_commit", "seed"} <= set(row)
        assert row["train_device"] == "cpu" and row["renderer"] == os.environ["MUJOCO_GL"]
    first = out.read_text()
    for table in ("Main table", "Noise robustness", "Ablations", "Data efficiency"):
        assert table in first
    plots = sorted(out.parent.glob("paper-state-*.png"))  # beside the study page
    assert [p.name for p in plots] == ["paper-state-data.png", "paper-state-noise.png"]
    images = [p.read_bytes() for p in plots]

    # a stopped run: one cell lost -> only that cell is redone, from the saved encoder and head
    results.write_text("\n".join(json.dumps(r) for r in rows[:-1]) + "\n")
    assert paper_run.main(args) == 0
    again = read(results)
    assert len(again) == 21 and again[-1]["method"] == rows[-1]["method"]
    assert again[-1]["successes"] == rows[-1]["successes"]  # same head, same episodes

    # the report alone gives the same bytes
    results.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert paper_run.main([*args, "--report"]) == 0
    assert out.read_text() == first
    assert [p.read_bytes() for p in plots] == images


def test_a_fine_tuning_row_needs_its_source_row():
    PaperConfig(extra_methods=["act-jepa+finetune"]).validate()  # act-jepa is a main row
    with pytest.raises(ActJepaError, match="starts from act-jepa\\+vicreg's encoder"):
        PaperConfig(extra_methods=["act-jepa+vicreg+finetune"]).validate()


def tiny_config(extra: str) -> PaperConfig:
    """A paper config whose encoders train in 4 steps, with one extra row."""
    return PaperConfig(tasks=["push-v3"], train_steps=4, train_batch=16,
                       train_overrides=["run.val_every=2", "run.log_every=2",
                                        "run.checkpoint_every=2"],
                       extra_methods=[extra]).validate()


def push_unit(method: str):
    from experiments.paper.plan import METHODS, Unit

    return Unit("state", "push-v3", METHODS[method], 100, 0, (0.0,))


def test_a_fine_tuning_unit_trains_its_source_first_and_starts_from_it(push_demos, tmp_path,
                                                                      one_torch_thread):
    import yaml

    from experiments.paper import runner

    name = "act-jepa+finetune"
    world = runner.ensure_world(push_unit(name), tiny_config(name), tmp_path, push_demos)
    source = tmp_path / "state/push-v3/act-jepa/d100/s0/world"
    assert (source / runner.DONE).exists() and (world / runner.DONE).exists()
    saved = yaml.safe_load((world / "config.yaml").read_text())
    assert saved["objective"] == "raw"
    assert saved["run"]["init_encoder"] == str(source / "best.pt")


def test_the_fine_tuning_control_trains_for_both_stages_steps():
    from experiments.paper import runner
    from experiments.paper.plan import METHODS, Unit

    config = PaperConfig(train_steps=300).validate()
    doubled = Unit("state", "push-v3", METHODS["raw+2x-steps"], 100, 0, (0.0,))
    single = Unit("state", "push-v3", METHODS["raw"], 100, 0, (0.0,))
    assert runner.train_config(doubled, config).optim.steps == 600
    assert runner.train_config(single, config).optim.steps == 300


def test_a_bc_side_variant_reads_its_sources_encoder_without_training_one(push_demos, tmp_path,
                                                                         one_torch_thread):
    from experiments.paper import runner

    name = "act-jepa+bc-std"
    world = runner.ensure_world(push_unit(name), tiny_config(name), tmp_path, push_demos)
    assert world == tmp_path / "state/push-v3/act-jepa/d100/s0/world"
    assert (world / runner.DONE).exists()
    assert not (tmp_path / "state/push-v3/act-jepa+bc-std").exists()
    with pytest.raises(ActJepaError, match="starts from act-jepa\\+vicreg\\+noise's encoder"):
        PaperConfig(extra_methods=["act-jepa+vicreg+noise+bc-std"]).validate()


def test_rows_at_the_floor_can_skip_the_noise_sweep():
    from experiments.paper.plan import extra_sigmas

    config = PaperConfig(tasks=["reach-v3"], extra_methods=["act-jepa+chunk", "raw+proprio"],
                         clean_extras=["act-jepa+chunk"]).validate()
    sweep = {u.method.name: u.sigmas for u in plan_units(config)}
    assert sweep["act-jepa+chunk"] == (0.0,)
    assert sweep["raw+proprio"] == tuple(config.sigmas)
    assert extra_sigmas(PaperConfig(tables=["extras"]), "raw+proprio") == [0.0]
    with pytest.raises(ActJepaError, match="clean_extras must be among extra_methods"):
        PaperConfig(extra_methods=[], clean_extras=["act-jepa+chunk"]).validate()


@pytest.mark.sim
def test_a_proprioception_row_reads_hand_and_gripper_in_training_and_in_the_simulator(
        tmp_path, one_torch_thread):
    """The image + proprioception rows: the demos' "proprio" is cut from the recorded state, and
    the policy trained on it gets the same cut from the simulated arm when evaluated."""
    from actjepa_core.data.episodes import write_episodes
    from actjepa_core.policies import load_policy
    from actjepa_core.sim.collect import collect_episodes
    from experiments.paper import runner
    from experiments.paper.plan import METHODS, Unit

    config = PaperConfig(obs="image", image_size=16, tasks=["reach-v3"], demos=2, data_demos=[2],
                         train_steps=4, train_batch=8, bc_steps=4, eval_episodes=1, max_steps=3,
                         train_overrides=["run.val_every=2", "run.log_every=2",
                                          "run.checkpoint_every=2",
                                          "model.image_channels=[4, 8]"],
                         extra_methods=["raw+proprio", "raw+head-proprio"]).validate()
    path = runner.demos_path(tmp_path, config, "reach-v3")
    path.parent.mkdir(parents=True)
    write_episodes(path, collect_episodes("reach-v3", 2, image_size=16, max_steps=6,
                                          progress=False), source="test")
    unit = Unit("image", "reach-v3", METHODS["raw+proprio"], 2, 0, (0.0,))
    data = runner.unit_data(tmp_path, config, unit)
    assert data.obs_keys == ["image", "proprio"]
    full = runner.read_episodes(path, ["state"]).episodes[0].obs["state"]
    first = data.episodes[0].obs
    assert set(first) == {"image", "proprio"} and first["proprio"].shape == (len(full), 4)
    assert (first["proprio"] == full[:, :4]).all()  # hand xyz, gripper

    results = tmp_path / "r.jsonl"
    [row] = runner.run_unit(unit, config, tmp_path, results)
    assert row["obs_keys"] == ["image", "proprio"] and row["episodes"] == 1

    # the same vector at the BC head instead, beside the frozen raw encoder's latent of the image
    head = Unit("image", "reach-v3", METHODS["raw+head-proprio"], 2, 0, (0.0,))
    [row] = runner.run_unit(head, config, tmp_path, results)
    assert (row["obs_keys"], row["bc_vector"]) == (["image"], "proprio")
    policy = load_policy(tmp_path / head.key / "bc.pt")
    assert list(policy.world.spec) == ["image"] and policy.obs_spec["proprio"]["shape"] == [4]
