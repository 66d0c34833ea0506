"""docs/results/lerobot.md from docs/results/lerobot.jsonl (and, for our side of the table, the
camera study's recipe rows in docs/results/camera.jsonl) alone: per task, success with its Wilson
interval, training wall time and steps, parameters and per-action latency; then who wins where,
judged by the intervals, and the commands."""
from __future__ import annotations

import json
from pathlib import Path

from actjepa_core.atomic import atomic_path
from actjepa_core.evaluation.evaluate import wilson_interval
from actjepa_core.evaluation.tables import markdown_table

TASKS = ("reach-v3", "push-v3", "pick-place-v3")
OURS = "noise-aug"  # the camera study's cell models/*_camera.pt ship from (seed 0, noise 0)
OURS_LABEL = "ours: shipped camera recipe (e2e BC)"
SHIPPED = "models/{name}_camera.pt"  # the policy file of that cell, per task (models/README.md)
COMMANDS = """```bash
make peers   # .venv-peers: lerobot, this package, the simulator
HF_HUB_OFFLINE=1 .venv-peers/bin/python -m experiments.lerobot.run --shard 0/2 &
HF_HUB_OFFLINE=1 .venv-peers/bin/python -m experiments.lerobot.run --shard 1/2
HF_HUB_OFFLINE=1 .venv-peers/bin/python -m experiments.lerobot.run --report   # this page
```"""


def read_rows(path: Path) -> list[dict]:
    """The results file's lines; a line that is not JSON is an error naming file and line."""
    from actjepa_core.errors import ActJepaError

    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise ActJepaError(f"{path}:{n}: not a JSON line; expected one result per line"
                               ) from None
    return rows


def ours(camera_results: Path, demos: int, eval_seed: int, episodes: int) -> list[dict]:
    """Our recipe's rows measured on the same demos and held-out episodes."""
    return [dict(r, cell=OURS_LABEL, params=r.get("params") or shipped_params(r["task"]))
            for r in read_rows(camera_results)
            if r.get("cell") == OURS and r.get("demos") == demos and float(r["noise"]) == 0.0
            and r.get("seed") == 0 and r.get("eval_seed") == eval_seed
            and r.get("episodes") == episodes]


def shipped_params(task: str) -> int | None:
    """Parameters of the shipped policy file for ``task`` (None when it is not there)."""
    path = Path(SHIPPED.format(name=task.removesuffix("-v3")))
    if not path.is_file():
        return None
    from actjepa_core.policies import load_policy

    return sum(p.numel() for p in load_policy(path, policy_type="e2e").model.parameters())


def success(row: dict | None) -> str:
    if row is None:
        return "—"
    low, high = wilson_interval(row["successes"], row["episodes"])
    return f"{row['successes']}/{row['episodes']} ({row['success']:.0%}, {low:.0%}-{high:.0%})"


def params(row: dict) -> str:
    return f"{row['params'] / 1e6:.1f} M" if row.get("params") else "—"


def table(rows: list[dict], cells: list[str]) -> str:
    by = {(r["cell"], r["task"]): r for r in rows}
    lines = []
    for task in TASKS:
        for cell in cells:
            r = by.get((cell, task))
            if r is None:
                continue
            steps = f"{r['steps']:,}" if r.get("steps") else "—"
            lines.append([task, cell, success(r), f"{r['train_s'] / 60:.0f} min", steps,
                          params(r), f"{r['ms_p50']:.1f}", f"{r['ms_p99']:.1f}"])
    return markdown_table(["task", "policy", "success (95% Wilson)", "training", "steps",
                           "parameters", "ms p50", "ms p99"], lines)


def verdicts(rows: list[dict], cells: list[str]) -> list[str]:
    """Per task: the best success rate wins when its interval clears every other's."""
    by = {(r["cell"], r["task"]): r for r in rows}
    out = []
    for task in TASKS:
        found = [by[(c, task)] for c in cells if (c, task) in by]
        if len(found) < 2:
            continue
        ranked = sorted(found, key=lambda r: r["success"], reverse=True)
        best, rest = ranked[0], ranked[1:]
        low = wilson_interval(best["successes"], best["episodes"])[0]
        beaten = all(wilson_interval(r["successes"], r["episodes"])[1] < low for r in rest)
        if beaten:
            out.append(f"- {task}: **{best['cell']}** wins ({best['success']:.0%}; every other "
                       "interval lies below its interval)")
        else:
            tied = [r["cell"] for r in rest
                    if wilson_interval(r["successes"], r["episodes"])[1] >= low]
            out.append(f"- {task}: no clear winner: {best['cell']} ({best['success']:.0%}) and "
                       f"{', '.join(tied)} have overlapping intervals")
    return out or ["- not measured yet"]


def missing(study, rows: list[dict]) -> list[str]:
    """A line naming the configured (cell, task) units with no result yet (none when done)."""
    have = {(r["cell"], r["task"]) for r in rows}
    left = [f"{c.name} {t}" for c in study.cells for t in c.tasks if (c.name, t) not in have]
    return [f"Not measured yet: {', '.join(left)} (the commands below run them)."] if left else []


def render(study, rows: list[dict], mine: list[dict]) -> str:
    cells = [OURS_LABEL] * bool(mine) + [c.name for c in study.cells]
    everything = mine + rows
    budget = f"{study.budget_s / 60:.0f} min"
    return "\n\n".join([
        "# LeRobot's ACT and Diffusion Policy on our tasks",
        f"Trained on the same {study.demos} demos per task as our camera policies (Meta-World's "
        "scripted expert, seed 0; observations: the corner camera at "
        f"{study.image_size} px and the arm's joint positions, never the object's or goal's "
        f"position), each with a wall-clock training budget of {budget} per task on one core "
        "of this 2-core CPU, fp32 (at least what ours took: the training column), and "
        "evaluated in our "
        f"closed-loop harness on the same held-out start configurations ({study.eval_episodes} "
        f"episodes, evaluation seed {study.eval_seed}, at most {study.max_steps} steps) through "
        "the adapter policy_node serves them with. LeRobot's own defaults otherwise (batch 8, "
        "its optimizer and scheduler presets, its processors), except where the cell's "
        "overrides say (experiments/lerobot/lerobot.yaml): no ImageNet backbone weights "
        "(nothing downloads here), Diffusion Policy's crop fitted to 64 px and DDIM with 10 "
        "denoising steps at run time. Latency: one act() call (a chunk's first action pays for "
        "the whole chunk, so p99 is the cost of a model call).",
        "## Success, training time, size and latency", table(everything, cells),
        *missing(study, rows),
        "## Who wins where", "\n".join(verdicts(everything, cells)),
        "What this measures: what each policy makes of the same CPU time, not each method at "
        "its best. LeRobot's ACT defaults to 100,000 steps of batch 8 with a ResNet-18 "
        "backbone; on one core of this CPU the same budget as ours buys it under 1% of that "
        "(the steps column), from ImageNet-free weights. Its own recommended budget needs a "
        "GPU (none was lent to these sessions).",
        "Our parameters are those of the shipped policy file (models/<task>_camera.pt: a "
        "4-layer CNN and an MLP head); LeRobot's ACT and Diffusion Policy carry a ResNet-18 per "
        "camera.",
        "## Commands", COMMANDS, ""])


def write_report(study, results: Path, out: Path,
                 camera_results: Path = Path("docs/results/camera.jsonl")) -> None:
    mine = ours(camera_results, study.demos, study.eval_seed, study.eval_episodes)
    with atomic_path(out) as tmp:
        tmp.write_text(render(study, read_rows(results), mine))
    print(f"wrote {out}")
