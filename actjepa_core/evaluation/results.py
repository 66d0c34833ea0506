"""Success tables for docs/results/, rendered from `actjepa eval` JSON lines.

Each cell shows the measured success with its episode count and 95% Wilson interval; the paper's
published ACT-JEPA + BC row stands beside it for comparison. The latest line for a (policy type,
task, noise) wins, so re-running an evaluation replaces its cell.
"""
from __future__ import annotations

import json
from pathlib import Path

from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.tables import markdown_table

PAPER_BC = {"reach-v3": 0.924, "push-v3": 0.746, "pick-place-v3": 0.589}  # paper §9, ACT-JEPA + BC
ROW_LABELS = {"expert": "Meta-World scripted expert",
              "raw-bc": "Raw-state BC (same head, no encoder)", "bc": "ACT-JEPA + BC (ours)",
              "nn": "ACT-JEPA + latent NN (ours)", "mpc": "ACT-JEPA + latent MPC (ours)"}
TASK_ORDER = ("reach-v3", "push-v3", "pick-place-v3")
PAPER_BC_NOISE = {0.0: 0.753, 0.05: 0.708, 0.1: 0.642, 0.2: 0.531, 0.3: 0.417}  # paper §9, average


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ActJepaError(f"{path}: results file not found (made by `actjepa eval --out`)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ActJepaError(f"{path}:{number}: not a JSON line ({err})") from None
    return rows


def success_table(rows: list[dict], noise: float = 0.0) -> str:
    """Markdown: one row per policy type, one column per task, the paper's BC row first."""
    latest: dict[tuple[str, str], dict] = {}
    for row in rows:
        if row.get("noise", 0.0) == noise:
            latest[(_kind(row), row["task"])] = row
    tasks = [t for t in TASK_ORDER if any(task == t for _, task in latest)]
    tasks += sorted({task for _, task in latest} - set(tasks))
    table = [["paper §9: ACT-JEPA + BC (published)",
              *(f"{100 * PAPER_BC[t]:.1f}%" if t in PAPER_BC else "" for t in tasks)]]
    for kind in sorted({k for k, _ in latest}, key=_order):
        table.append([_label(kind), *(_cell(latest.get((kind, task))) for task in tasks)])
    return markdown_table(["method", *tasks], table)


def _kind(row: dict) -> str:
    return f"{row['type']}:{row['variant']}" if row.get("variant") else row["type"]


def _order(kind: str) -> tuple[int, str]:
    base = kind.split(":")[0]
    return (list(ROW_LABELS).index(base) if base in ROW_LABELS else len(ROW_LABELS), kind)


def _label(kind: str) -> str:
    base, _, variant = kind.partition(":")
    label = ROW_LABELS.get(base, base)
    return label.replace(" (ours)", f", {variant} (ours)") if variant else label


def _cell(row: dict | None) -> str:
    if row is None:
        return "not run"
    return (f"**{100 * row['success']:.0f}%** ({row['successes']}/{row['episodes']}, "
            f"{100 * row['ci_low']:.0f}-{100 * row['ci_high']:.0f}%)")


def noise_table(rows: list[dict], kind: str = "bc") -> str:
    """Markdown: success of one policy kind per task (rows) and test-time noise sigma (columns),
    with the three-task average beside the paper's published averages."""
    latest: dict[tuple[str, float], dict] = {}
    for row in rows:
        if _kind(row) == kind:
            latest[(row["task"], float(row.get("noise", 0.0)))] = row
    sigmas = sorted({sigma for _, sigma in latest})
    tasks = [t for t in TASK_ORDER if any(task == t for task, _ in latest)]
    header = ["task", *("clean" if s == 0 else f"sigma = {s:g}" for s in sigmas)]
    table = [[task, *(_cell(latest.get((task, s))) for s in sigmas)] for task in tasks]
    averages = []
    for sigma in sigmas:
        cells = [latest.get((task, sigma)) for task in tasks]
        averages.append(f"{100 * sum(c['success'] for c in cells) / len(cells):.1f}%"
                        if all(cells) else "")
    table.append([f"average ({_label(kind)})", *averages])
    table.append(["paper §9 average, ACT-JEPA + BC",
                  *(f"{100 * PAPER_BC_NOISE[s]:.1f}%" if s in PAPER_BC_NOISE else ""
                    for s in sigmas)])
    return markdown_table(header, table)
