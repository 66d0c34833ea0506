"""docs/results/camera.md from docs/results/camera.jsonl alone: the headline table (the recipe per
task against the issue's aims), MT10, the ACT-JEPA rows, the recipe ablation, and the commands."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

from actjepa_core.atomic import atomic_path
from actjepa_core.evaluation.evaluate import wilson_interval
from actjepa_core.evaluation.tables import markdown_table
from actjepa_core.sim.tasks import MT10

TASKS = ("reach-v3", "push-v3", "pick-place-v3")
AIMS = {100: ("95%", "95%", "85%", "90%"), 10: ("", "", "", "50%")}
# (label, {demos: cell}): the ACT-JEPA rows at 100, 25 and 10 demos
JEPA_ROWS = (("none (the recipe)",
              {100: "recipe", 25: "recipe-25demos", 10: "recipe-10demos"}),
             ("joint: BC + ACT-JEPA",
              {100: "jepa-joint", 25: "jepa-joint-25demos", 10: "jepa-joint-10demos"}),
             ("joint: BC + 0.1 x ACT-JEPA",
              {100: "jepa-joint-w0.1", 10: "jepa-joint-w0.1-10demos"}),
             ("pretrain, then fine-tune",
              {100: "pretrain-finetune", 25: "pretrain-finetune-25demos",
               10: "pretrain-finetune-10demos"}))
# the headline's 10-demo rows: one camera, then the scene + wrist cameras
TEN_DEMO_CELLS = ("recipe-10demos", "wrist-camera-10demos")
# the recipe's demo count: an ablation row changes one thing from it, or adds demos
ABLATION_DEMOS = 100
# cells with their own table (the ACT-JEPA rows)
NOT_ABLATIONS = {c for _, cells in JEPA_ROWS for c in cells.values()} - {"recipe"}
COMMANDS = """```bash
python -m experiments.camera.run & python -m experiments.camera.run   # one per core
python -m experiments.camera.run --report      # this page, from docs/results/camera.jsonl
```"""


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pooled(rows: Iterable[dict]) -> str:
    """Successes over every episode of ``rows`` (seeds pooled) with the Wilson interval."""
    rows = list(rows)
    if not rows:
        return "—"
    wins, n = sum(r["successes"] for r in rows), sum(r["episodes"] for r in rows)
    low, high = wilson_interval(wins, n)
    return f"{wins}/{n} ({wins / n:.0%}, {low:.0%}-{high:.0%})"


def rate(rows: list[dict]) -> float | None:
    n = sum(r["episodes"] for r in rows)
    return sum(r["successes"] for r in rows) / n if n else None


def index(rows: list[dict]) -> dict[tuple, list[dict]]:
    """(cell, task, demos, noise) -> rows (one per seed)."""
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[(r["cell"], r["task"], r["demos"], float(r["noise"]))].append(r)
    return out


def per_task_row(label: str, by: dict, cells: str | tuple[str, ...], demos: int,
                 noise: float = 0.0) -> list[str]:
    """One table row: each task's rows of ``cells`` (seeds pooled), the average of the task
    rates, and the median training time."""
    names = (cells,) if isinstance(cells, str) else cells
    found = [[r for c in names for r in by.get((c, t, demos, noise), [])] for t in TASKS]
    rates = [rate(c) for c in found]
    mean = (f"{np.mean(rates):.0%}" if all(r is not None for r in rates) else "—")
    minutes = [r["train_s"] / 60 for c in found for r in c]
    time = f"{np.median(minutes):.0f} min" if minutes else "—"
    return [label, *(pooled(c) for c in found), mean, time]


HEADER = ["", *TASKS, "average", "training per task (median)"]


def seed_cells(shipped: str) -> tuple[str, ...]:
    """The cells the headline row pools: the shipped cell and its seed copies."""
    return (shipped, f"{shipped}-seed1", f"{shipped}-seed2")


def seed_rows(by: dict, cell: str, label: str) -> list[list[str]]:
    """The clean and sigma = 0.1 rows of ``cell`` at 100 demos, its seed copies pooled."""
    cells = seed_cells(cell)
    seeds = seed_counts(by, cells)
    return [per_task_row(f"{label}, 100 demos ({seeds})", by, cells, 100),
            per_task_row(f"{label}, 100 demos, sigma = 0.1 ({seeds})", by, cells, 100, 0.1)]


def seed_counts(by: dict, cells: tuple[str, ...]) -> str:
    """How many training seeds each task's pooled cell holds: one number where all agree."""
    counts = [len({r["seed"] for c in cells for r in by.get((c, t, 100, 0.0), [])})
              for t in TASKS]
    if len(set(counts)) == 1:
        return f"{counts[0]} seed(s) pooled"
    return "seeds pooled: " + ", ".join(f"{t.removesuffix('-v3')} {n}"
                                         for t, n in zip(TASKS, counts))


def headline(by: dict, shipped: str, contenders: Iterable[str] = ()) -> str:
    label = "shipped" if shipped == "recipe" else f"shipped ({shipped})"
    rows = [*seed_rows(by, shipped, label)]
    for cell in contenders:
        rows += seed_rows(by, cell, cell)
    rows += [["aim, 100 demos", *AIMS[100], ""],
             *(per_task_row(f"{cell}, 10 demos", by, cell, 10) for cell in TEN_DEMO_CELLS),
             ["aim, 10 demos", *AIMS[10], ""]]
    return markdown_table(HEADER, rows)


def jepa_table(by: dict) -> str:
    rows = []
    for label, cells in JEPA_ROWS:
        for demos, cell in cells.items():
            rows.append(per_task_row(f"{label}, {demos} demos", by, cell, demos))
            rows.append(per_task_row(f"{label}, {demos} demos, sigma = 0.1", by, cell, demos, 0.1))
    return markdown_table(HEADER, [r for r in rows if any(c != "—" for c in r[1:4])])


def mt10_row(by: dict, cells: Iterable[str], task: str) -> list[dict]:
    """The task's seed-0 clean rows at 100 demos from the first of ``cells`` that holds any."""
    for cell in cells:
        rows = [r for r in by.get((cell, task, 100, 0.0), []) if r["seed"] == 0]
        if rows:
            return rows
    return []


def mt10_table(by: dict, cells: Iterable[str]) -> str:
    """Each MT10 task from the first of ``cells`` that holds it, and the mean over the tasks
    measured: the issue's MT10 aim, set beside the state policies of results/mt10.md."""
    cells = tuple(cells)
    rows, rates = [], []
    for task in MT10:
        found = mt10_row(by, cells, task)
        if not found:
            rows.append([task, "—", "—", "—", "—"])
            continue
        rates.append(rate(found))
        first = found[0]
        rows.append([task, pooled(found), first["cell"], str(first["max_steps"]),
                     f"{first['train_s'] / 60:.0f} min"])
    mean = f"**{np.mean(rates):.0%}**" if rates else "—"
    rows.append([f"**mean over {len(rates)} of {len(MT10)} tasks**", mean, "", "", ""])
    return markdown_table(["task", "success (95% Wilson)", "cell", "step cap", "training"], rows)


def change(cell, recipe: list[str], image_size: int) -> str:
    """What a cell changes from the recipe, in the words of its config."""
    parts = [o for o in cell.overrides if o not in recipe]
    if cell.demos != [ABLATION_DEMOS]:
        parts.append(f"{cell.demos[0]} demos")
    if cell.image_size and cell.image_size != image_size:
        parts.append(f"{cell.image_size} px")
    if cell.extra_cameras:
        parts.append("+ camera " + ", ".join(cell.extra_cameras))
    if cell.demo_noise:
        parts.append(f"DART demos (expert action + N(0, {cell.demo_noise:g}) applied)")
    if cell.expert_aim != "hand":
        parts.append(f"demos aimed at the {cell.expert_aim} centre, not the hand")
    return "; ".join(parts) or "(the recipe)"


def ablation_table(by: dict, study) -> str:
    """One row per measured recipe variant at 100 demos or more (and its sigma = 0.1 line
    where measured): each task's result, what the row changes from the recipe."""
    rows = []
    for cell in study.cells:
        if (cell.name in NOT_ABLATIONS or len(cell.demos) != 1
                or cell.demos[0] < ABLATION_DEMOS or cell.pretrain
                or cell.seeds != [0] or not set(cell.tasks) <= set(TASKS)):
            continue
        for noise in sorted({k[3] for k in by if k[0] == cell.name}):
            row = per_task_row(cell.name + (f", sigma = {noise:g}" if noise else ""), by,
                               cell.name, cell.demos[0], noise)
            rows.append([*row, change(cell, study.recipe, study.image_size)])
    return markdown_table([*HEADER, "change"], rows)


def render(study, rows: list[dict]) -> str:
    by = index(rows)
    return "\n\n".join([
        "# Camera + joint-state policies, end to end",
        "Observations: the corner camera and the joint positions sim_node publishes (7 hinges, "
        "2 finger slides); "
        "never the object's or goal's position. Success closed loop on held-out start "
        f"configurations ({study.eval_episodes} episodes per cell, evaluation seed "
        f"{study.eval_seed}, at most {study.max_steps} steps), 95% Wilson intervals. Training "
        "on one core of the 2-core CPU, fp32 (no AVX512-BF16 here).",
        "## Headline", headline(by, study.shipped, study.contenders),
        "## MT10 from the camera (100 demos, seed 0, clean)", mt10_table(by, study.mt10),
        "## ACT-JEPA inside the recipe", jepa_table(by),
        "## What each element buys (100 demos unless a row says more; one seed; a row "
        "changes one thing)",
        ablation_table(by, study),
        "## Commands", COMMANDS, ""])


def write_report(study, results: Path, out: Path) -> None:
    with atomic_path(out) as tmp:
        tmp.write_text(render(study, read_rows(results)))
    print(f"wrote {out}")
