"""The four tables (and the extras) in the paper's shape, and two plots, from the results file
alone: `python -m experiments.paper.run --report` writes them into docs/results/paper.md
between markers and docs/results/paper-<obs>-*.png beside it; the same file gives the same
bytes.

A cell pools its seeds: successes/episodes over seeds with the Wilson interval of the pooled
rate, and the spread (sd) of the per-seed rates when there are several. A table's average is the
mean of its task rates (each task weighs the same), pooled counts beside it.
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from actjepa_core.evaluation.evaluate import wilson_interval
from actjepa_core.evaluation.tables import markdown_table
from experiments.paper import published
from experiments.paper.plan import (
    ABLATION_METHODS,
    MAIN_METHODS,
    METHODS,
    PaperConfig,
    cell_id,
    plan_units,
)

PLOT_DPI = 100


def label(method: str) -> str:
    """The row's name in the tables (the method's label, or its name when it has none)."""
    found = METHODS.get(method)
    return found.label if found is not None and found.label else method


def latest_rows(path: Path) -> dict[tuple, dict]:
    """Cell id -> its latest row (a re-run cell replaces the old one)."""
    rows: dict[tuple, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows[(r["task"], r["method"], r["demos"], r["sigma"], r["seed"])] = r
    return rows


class Cells:
    """Pooled success of (task, method, demos, sigma) over seeds."""

    def __init__(self, rows: dict[tuple, dict]):
        self.by = defaultdict(list)
        for (task, method, demos, sigma, _), r in sorted(rows.items(), key=lambda kv: str(kv[0])):
            self.by[(task, method, demos, round(sigma, 6))].append(r)

    def get(self, task, method, demos, sigma=0.0) -> list[dict]:
        return self.by.get((task, method, demos, round(sigma, 6)), [])

    def rate(self, tasks, method, demos, sigma=0.0) -> tuple[float, int, int, float] | None:
        """(mean over tasks of pooled rates, successes, episodes, sd over seeds) or None."""
        groups = [self.get(t, method, demos, sigma) for t in tasks]
        if not all(groups):
            return None
        rates = [sum(r["successes"] for r in g) / sum(r["episodes"] for r in g) for g in groups]
        wins = sum(r["successes"] for g in groups for r in g)
        n = sum(r["episodes"] for g in groups for r in g)
        seeds = sorted({r["seed"] for g in groups for r in g})
        per_seed = [statistics.mean(sum(r["successes"] for r in g if r["seed"] == s) /
                                    max(1, sum(r["episodes"] for r in g if r["seed"] == s))
                                    for g in groups) for s in seeds]
        sd = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
        return statistics.mean(rates), wins, n, sd


def fmt(value: tuple | None, seeds: bool = True) -> str:
    if value is None:
        return "—"
    rate, wins, n, sd = value
    low, high = wilson_interval(wins, n)
    spread = f" ± {100 * sd:.0f}" if sd and seeds else ""
    return f"**{100 * rate:.0f}%**{spread} ({wins}/{n}, {100 * low:.0f}-{100 * high:.0f}%)"


def pct(value: float | None) -> str:
    return "collapsed" if value is None else f"{100 * value:.1f}%"


def main_table(cells: Cells, config: PaperConfig) -> str:
    tasks = config.tasks
    header = ["method", *[f"{t} (ours)" for t in tasks], "avg (ours)", "paper: " +
              " / ".join(t.split("-v")[0] for t in published.TASKS) + " / avg"]
    rows = []
    for m in MAIN_METHODS:
        ours = [fmt(cells.rate([t], m.name, config.demos)) for t in tasks]
        paper = published.MAIN.get(m.name)
        rows.append([label(m.name), *ours, fmt(cells.rate(tasks, m.name, config.demos)),
                     " / ".join(pct(p) for p in paper) if paper else ""])
    return markdown_table(header, rows)


def noise_table(cells: Cells, config: PaperConfig) -> str:
    header = ["method (avg over tasks)", *[f"σ = {s:g}" for s in config.sigmas],
              "retained at max σ"]
    rows = []
    for m in MAIN_METHODS:
        values = [cells.rate(config.tasks, m.name, config.demos, s) for s in config.sigmas]
        paper = dict(zip(published.SIGMAS, published.NOISE.get(m.name, ())))
        cells_ = [fmt(v) + (f" [paper {pct(paper[s])}]" if s in paper else "")
                  for v, s in zip(values, config.sigmas)]
        kept = (f"{100 * values[-1][0] / values[0][0]:.0f}%"
                if values[0] and values[-1] and values[0][0] > 0 else "—")
        rows.append([label(m.name), *cells_, kept])
    return markdown_table(header, rows)


def ablation_table(cells: Cells, config: PaperConfig) -> str:
    full = cells.rate(config.tasks, "act-jepa", config.demos)
    header = ["variant", *[t for t in config.tasks], "avg (ours)", "Δ vs full (ours)",
              "paper avg", "paper Δ"]
    rows = []
    for name in ["act-jepa", "passive-jepa", *[m.name for m in ABLATION_METHODS]]:
        value = cells.rate(config.tasks, name, config.demos)
        delta = (f"{100 * (value[0] - full[0]):+.1f}" if value and full and name != "act-jepa"
                 else "")
        paper = published.ABLATIONS.get(name, "n/a")
        paper_delta = (f"{100 * (paper - published.ABLATIONS['act-jepa']):+.1f}"
                       if isinstance(paper, float) and name != "act-jepa" else "")
        row_name = "Full ACT-JEPA" if name == "act-jepa" else (
            "No action conditioning (passive)" if name == "passive-jepa" else label(name))
        rows.append([row_name, *[fmt(cells.rate([t], name, config.demos), False)
                              for t in config.tasks], fmt(value), delta,
                     pct(paper) if paper != "n/a" else "n/a", paper_delta])
    return markdown_table(header, rows)


def data_table(cells: Cells, config: PaperConfig) -> str:
    header = ["method (avg over tasks)", *[f"{d} demos" for d in config.data_demos]]
    rows, values = [], {}
    for name in ("raw", "act-jepa"):
        values[name] = [cells.rate(config.tasks, name, d) for d in config.data_demos]
        paper = dict(zip(published.DEMO_COUNTS, published.DATA[name]))
        rows.append([label(name), *[fmt(v) + (f" [paper {pct(paper[d])}]" if d in paper else "")
                                     for v, d in zip(values[name], config.data_demos)]])
    gap = [f"{100 * (a[0] - r[0]):+.1f}" if a and r else "—"
           for a, r in zip(values["act-jepa"], values["raw"])]
    rows.append(["ACT-JEPA advantage (points)", *gap])
    return markdown_table(header, rows)


def extras_table(cells: Cells, config: PaperConfig) -> str:
    names = ["raw", "act-jepa", *config.extra_methods]
    noisy = [s for s in config.sigmas if s > 0]
    header = ["method", *config.tasks, "avg", *[f"avg σ = {s:g}" for s in noisy]]
    rows = [[label(n), *[fmt(cells.rate([t], n, config.demos), False)
                                 for t in config.tasks],
             fmt(cells.rate(config.tasks, n, config.demos)),
             *[fmt(cells.rate(config.tasks, n, config.demos, s)) for s in noisy]]
            for n in names]
    return markdown_table(header, rows)


def wall_time(rows: dict[tuple, dict]) -> str:
    """Cells, encoders and time per machine kind: encoders trained on a GPU (and evaluated there
    with GPU rendering) are counted apart from the CPU's."""
    units = {(r["task"], r["method"], r["demos"], r["seed"]): r for r in rows.values()}
    parts = []
    for device in sorted({r.get("train_device", "cpu") for r in rows.values()}):
        mine = [r for r in rows.values() if r.get("train_device", "cpu") == device]
        encoders = [r for r in units.values() if r.get("train_device", "cpu") == device]
        train = sum(r["train_wall_s"] + r["bc_wall_s"] for r in encoders)
        evals = sum(r["eval_wall_s"] for r in mine)
        # rows from before the renderer was recorded rendered with the default, OSMesa
        renderers = sorted({r.get("renderer") or "osmesa" for r in mine if r["obs"] == "image"})
        rendering = f"; rendering: {', '.join(renderers)}" if renderers else ""
        parts.append(f"{len(mine)} cells from {len(encoders)} encoders trained on {device} "
                     f"({train / 3600:.1f} h training + {evals / 3600:.1f} h evaluation, one "
                     f"core each{rendering})")
    return "; ".join(parts)


def plot(cells: Cells, config: PaperConfig, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for kind in ("noise", "data"):
        fig, ax = plt.subplots(figsize=(6, 4))
        methods = [m.name for m in MAIN_METHODS] if kind == "noise" else ["raw", "act-jepa"]
        xs = config.sigmas if kind == "noise" else config.data_demos
        for colour, name in enumerate(methods):
            colour = f"C{colour}"  # one colour per method: ours solid, the paper's dashed
            pts = [(x, cells.rate(config.tasks, name, config.demos if kind == "noise" else x,
                                  x if kind == "noise" else 0.0)) for x in xs]
            pts = [(x, v) for x, v in pts if v]
            if pts:
                low_high = [wilson_interval(v[1], v[2]) for _, v in pts]
                ax.errorbar([x for x, _ in pts], [100 * v[0] for _, v in pts],
                            yerr=[[100 * (v[0] - lo) for (_, v), (lo, _) in zip(pts, low_high)],
                                  [100 * (hi - v[0]) for (_, v), (_, hi) in zip(pts, low_high)]],
                            marker="o", capsize=3, color=colour, label=f"{label(name)} (ours)")
            paper = (published.NOISE if kind == "noise" else published.DATA).get(name)
            if paper:
                px = published.SIGMAS if kind == "noise" else published.DEMO_COUNTS
                ax.plot(px, [100 * p for p in paper], linestyle="--", alpha=0.6, color=colour,
                        label=f"{label(name)} (paper)")
        ax.set_xlabel("test-time noise σ" if kind == "noise" else "demonstrations per task")
        ax.set_ylabel("success, average over tasks (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{config.obs} observations: success vs "
                     f"{'noise' if kind == 'noise' else 'number of demos'}")
        ax.legend(fontsize=6)
        fig.tight_layout()
        path = out / f"paper-{config.obs}-{kind}.png"
        fig.savefig(path, dpi=PLOT_DPI, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
    return paths


def report(config: PaperConfig, results: Path, command: str) -> str:
    rows = latest_rows(results)
    cells = Cells(rows)
    scale = (f"{config.obs} observations"
             + (f" ({config.image_size}x{config.image_size} pixels)" if config.obs == "image"
                else "") + f"; {config.demos} demos per task; {config.eval_episodes} evaluation "
             f"episodes per cell (seed {config.eval_seed}, starts disjoint from the demos'); "
             f"seeds {config.seeds}"
             + (f" for {', '.join(config.seeded_methods)}, seed {config.seeds[0]} for the rest"
                if config.seeded_methods else "")
             + f"; encoders trained {config.train_steps} steps at batch {config.train_batch}"
             + (f" with {' '.join(config.train_overrides)}" if config.train_overrides else "")
             + f", BC heads {config.bc_steps} steps.")
    planned = {c for u in plan_units(config) for c in u.cells()}
    measured = {cell_id(config.obs, *k[:2], k[2], k[4], k[3]) for k in rows} & planned
    progress = (f"**{len(measured)} of {len(planned)} planned cells measured so far** (the run "
                "resumes where it stopped; '—' marks a cell not yet measured). "
                if len(measured) < len(planned) else "")
    parts = [f"{progress}Command: `{command}`. Scale: {scale} {wall_time(rows)}.", "",
             "**Main table** (clean observations):", "", main_table(cells, config), "",
             "**Noise robustness** (test-time Gaussian noise on the model's input):", "",
             noise_table(cells, config), "", "**Ablations**:", "",
             ablation_table(cells, config), "", "**Data efficiency**:", "",
             data_table(cells, config), "", "**Beyond the paper's recipe** (named rows):", "",
             extras_table(cells, config), "",
             f"![success vs noise](paper-{config.obs}-noise.png) "
             f"![success vs demos](paper-{config.obs}-data.png)"]
    return "\n".join(parts)


def write_report(config: PaperConfig, results: Path, out: Path, command: str) -> None:
    """The tables into ``out`` (between this obs kind's markers) and the plots beside it."""
    from actjepa_core.evaluation.sections import write_section

    plots = out.parent  # the study page (docs/results/paper.md) links its plots beside it
    plots.mkdir(parents=True, exist_ok=True)
    plot(Cells(latest_rows(results)), config, plots)
    write_section(out, f"paper-{config.obs}", report(config, results, command))
