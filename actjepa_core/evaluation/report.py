"""A finished (or running) training run, summarised: final and best metrics, plus a curves
figure."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from actjepa_core.atomic import atomic_path  # noqa: E402
from actjepa_core.errors import ActJepaError  # noqa: E402
from actjepa_core.evaluation import tables  # noqa: E402
from actjepa_core.training.metrics import read_metrics  # noqa: E402

CURVES = (("loss", "val_loss", "latent L2 loss"),
          (None, "val_rel_loss", "val loss / target variance"),
          ("collapse", "val_collapse", "collapse metric"),
          ("lr", None, "learning rate"), ("tau", None, "EMA tau"))


def summarise(run_dir: str | Path) -> dict[str, float]:
    rows = _rows(run_dir)
    first, last = rows[0], rows[-1]
    val = [r for r in rows if "val_rel_loss" in r]
    best = min(val, key=lambda r: r["val_rel_loss"]) if val else None
    return {"steps": last["step"], "first_loss": first["loss"], "final_loss": last["loss"],
            "final_collapse": last["collapse"],
            "best_val_rel_loss": best["val_rel_loss"] if best else math.nan,
            "best_val_step": best["step"] if best else math.nan,
            "final_val_collapse": val[-1].get("val_collapse", math.nan) if val else math.nan,
            "transitions_per_s": last.get("transitions_per_s", math.nan)}


def markdown_table(names: list[str], summaries: list[dict[str, float]]) -> str:
    """One row per run, one column per summary key (the keys of the first summary)."""
    keys = list(summaries[0])
    return tables.markdown_table(["run", *keys], (
        [name, *(f"{summary.get(k, math.nan):.4g}" for k in keys)]
        for name, summary in zip(names, summaries)))


def plot_curves(run_dir: str | Path, out: str | Path | None = None) -> Path:
    rows = _rows(run_dir)
    out = Path(out) if out else Path(run_dir) / "curves.png"
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.2))
    for ax, (key, val_key, title) in zip(axes, CURVES):
        if key:
            ax.plot([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r],
                    label="train")
        if val_key:
            val = [r for r in rows if val_key in r]
            ax.plot([r["step"] for r in val], [r[val_key] for r in val], "o-", label="val")
            ax.legend()
        ax.set_title(title)
        ax.set_xlabel("step")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out


def _rows(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise ActJepaError(f"{path}: no metrics.csv; expected a run directory made by "
                           "`actjepa train --out`")
    rows = read_metrics(path)
    if not rows:
        raise ActJepaError(f"{path}: holds no metric rows yet")
    return rows
