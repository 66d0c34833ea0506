"""The camera study's runner and report: the recipe is the shipped camera config, workers never
take the same unit, finished units are skipped, and the page is rebuilt from result lines."""
from __future__ import annotations

import json

from actjepa_core.config import TrainConfig, apply_overrides, load_yaml
from experiments.camera.report import render
from experiments.camera.run import (
    HERE,
    CameraStudy,
    done_keys,
    next_unit,
    pending_units,
    unit_key,
    unit_row,
    units,
)

from demo_data import REPO


def study() -> CameraStudy:
    return load_yaml(CameraStudy, HERE / "camera.yaml")


def write_measured(results, cell, task: str, demos: int, seed: int) -> None:
    """A results file in which this unit is measured at every noise level of its cell."""
    results.write_text("".join(json.dumps({"cell": cell.name, "task": task, "demos": demos,
                                           "seed": seed, "noise": n}) + "\n" for n in cell.noise))


def test_the_recipe_is_the_shipped_camera_config():
    """config/train_camera.yaml (what the README tells a user to run) is what was measured."""
    recipe = apply_overrides(TrainConfig(), study().shipped_overrides())
    assert load_yaml(TrainConfig, REPO / "config" / "train_camera.yaml") == recipe


def test_finished_units_leave_the_queue(tmp_path):
    s = study()
    every = units(s)
    results = tmp_path / "camera.jsonl"
    assert pending_units(s, results, set()) == every
    cell, task, demos, seed = every[0]
    write_measured(results, cell, task, demos, seed)
    assert done_keys(results) == {unit_key(cell, task, demos, seed, n) for n in cell.noise}
    assert pending_units(s, results, set()) == every[1:]
    assert {c.name for c, *_ in pending_units(s, results, {"recipe-84px"})} == {"recipe-84px"}
    assert done_keys(tmp_path / "none.jsonl") == set()


def test_workers_never_hold_the_same_unit_and_a_released_unit_is_taken_again(tmp_path):
    """Each worker takes the first unit no other holds; the lock goes with its holder."""
    config, results, work = HERE / "camera.yaml", tmp_path / "camera.jsonl", tmp_path / "work"
    every = units(study())
    first = next_unit(config, results, work, set())
    second = next_unit(config, results, work, set())
    assert [first[1], second[1]] == every[:2]
    first[2].close()
    again = next_unit(config, results, work, set())
    assert again[1] == every[0]
    cell, task, demos, seed = every[2]
    write_measured(results, cell, task, demos, seed)
    assert next_unit(config, results, work, set())[1] == every[3]


def test_the_page_pools_seeds_with_wilson_intervals():
    s = study()
    row = {"cell": s.shipped, "demos": 100, "noise": 0.0, "episodes": 50, "train_s": 600.0,
           "image_size": 64, "overrides": []}
    rows = [{**row, "task": "reach-v3", "seed": 0, "successes": 48},
            {**row, "cell": f"{s.shipped}-seed1", "task": "reach-v3", "seed": 1, "successes": 46}]
    page = render(s, rows)
    assert (f"| shipped ({s.shipped}), 100 demos (seeds pooled: reach 2, push 0, pick-place 0) "
            "| 94/100 (94%, 88%-97%) | — | — | — |") in page  # each task's own seed count
    other = s.contenders[0]
    rows = [{**row, "cell": f"{other}-seed2", "task": t, "seed": 2, "successes": 40}
            for t in ("reach-v3", "push-v3", "pick-place-v3")]
    page = render(s, rows)
    assert (f"| {other}, 100 demos (1 seed(s) pooled) | 40/50 (80%, 67%-89%) | 40/50 (80%, "
            "67%-89%) | 40/50 (80%, 67%-89%) | 80% |") in page


def test_the_act_jepa_table_shows_each_demo_count_clean_and_under_noise_where_measured():
    row = {"cell": "jepa-joint-25demos", "demos": 25, "seed": 0, "episodes": 50,
           "train_s": 600.0, "image_size": 64, "overrides": [], "task": "reach-v3"}
    page = render(study(), [{**row, "noise": 0.0, "successes": 6},
                            {**row, "noise": 0.1, "successes": 8}])
    jepa = page.split("## ACT-JEPA inside the recipe")[1].split("##")[0]
    assert "| joint: BC + ACT-JEPA, 25 demos | 6/50 (12%, 6%-24%) |" in jepa
    assert "| joint: BC + ACT-JEPA, 25 demos, sigma = 0.1 | 8/50 (16%, 8%-29%) |" in jepa
    assert "10 demos" not in jepa  # rows with nothing measured are left out


def test_the_mt10_table_takes_each_task_from_the_first_cell_holding_it_and_averages_those():
    s = study()
    first, second = s.mt10[0], s.mt10[-1]
    row = {"demos": 100, "seed": 0, "noise": 0.0, "episodes": 50, "train_s": 1200.0,
           "image_size": 64, "overrides": []}
    rows = [{**row, "cell": first, "task": "reach-v3", "successes": 40, "max_steps": 150},
            {**row, "cell": second, "task": "reach-v3", "successes": 10, "max_steps": 500},
            {**row, "cell": second, "task": "door-open-v3", "successes": 30, "max_steps": 500},
            {**row, "cell": second, "task": "door-open-v3", "successes": 0, "max_steps": 500,
             "seed": 1}]  # another seed: not in the seed-0 table
    assert s.eval_steps(s.cell(second)) == 500 and s.eval_steps(s.cell(first)) == s.max_steps
    mt10 = render(s, rows).split("## MT10")[1].split("##")[0]
    assert f"| reach-v3 | 40/50 (80%, 67%-89%) | {first} | 150 | 20 min |" in mt10
    assert f"| door-open-v3 | 30/50 (60%, 46%-72%) | {second} | 500 | 20 min |" in mt10
    assert "| window-close-v3 | — |" in mt10
    assert "| **mean over 2 of 10 tasks** | **70%** |" in mt10


def test_a_written_line_marks_its_unit_done_whatever_the_evaluation_seed(tmp_path):
    """The evaluation's summary carries its own seed; the line keeps the training seed, so a
    rerun skips the unit instead of evaluating it again."""
    s = study()
    cell, task, demos, seed = units(s)[0]
    summary = {"seed": 1, "noise": 0.1, "episodes": 50, "successes": 9}
    row = unit_row(s, cell, task, demos, seed, 64, summary, 60.0,
                   apply_overrides(TrainConfig(), s.recipe))
    assert row["seed"] == seed and row["eval_seed"] == 1
    results = tmp_path / "camera.jsonl"
    results.write_text(json.dumps(row) + "\n")
    assert done_keys(results) == {unit_key(cell, task, demos, seed, 0.1)}


def test_dart_and_tool_aimed_demos_go_to_their_own_files_that_say_how_made(tmp_path):
    from actjepa_core.data.episodes import read_episodes
    from experiments.camera.run import KEYS, demo_file

    clean = demo_file(tmp_path, "reach-v3", 1, 16, 0, KEYS)
    dart = demo_file(tmp_path, "reach-v3", 1, 16, 0, KEYS, dart_noise=0.3)
    assert clean != dart and clean.exists() and dart.exists()
    assert read_episodes(clean).source == "metaworld:reach-v3:seed=0"
    assert read_episodes(dart).source == "metaworld:reach-v3:seed=0:dart_noise=0.3"
    assert demo_file(tmp_path, "reach-v3", 1, 16, 0, KEYS, dart_noise=0.3) == dart  # kept
    tool = demo_file(tmp_path, "reach-v3", 1, 16, 0, KEYS, expert_aim="tool")
    assert tool not in (clean, dart)
    assert read_episodes(tool).source == "metaworld:reach-v3:seed=0:expert_aim=tool"


def test_the_ablation_table_holds_cells_with_more_demos_and_names_the_count():
    """A cell that only adds demos is one change from the recipe: its row says how many."""
    s = study()
    more = next(c for c in s.cells if c.demos[0] > 100 and set(c.tasks) <= {"reach-v3"})
    row = {"cell": more.name, "task": "reach-v3", "demos": more.demos[0], "seed": 0,
           "noise": 0.0, "episodes": 50, "successes": 45, "train_s": 600.0, "image_size": 64,
           "overrides": []}
    ablation = render(s, [row]).split("## What each element buys")[1].split("##")[0]
    assert f"| {more.name} | 45/50 (90%, 79%-96%) |" in ablation
    assert f"{more.demos[0]} demos" in ablation.split(more.name)[1].splitlines()[0]
    assert "10demos" not in ablation  # fewer demos than the recipe: the headline's rows
