"""Training metrics to CSV (one row per log step, flushed at once) and TensorBoard."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping

from torch.utils.tensorboard import SummaryWriter

COLUMNS = ("step", "loss", "collapse", "val_loss", "val_rel_loss", "val_collapse", "lr", "tau",
           "transitions_per_s")


class MetricsLog:
    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.path = run_dir / "metrics.csv"
        rows = read_metrics(self.path) if resume_step is not None and self.path.exists() else []
        rows = [r for r in rows if resume_step is not None and r["step"] <= resume_step]
        self._file = self.path.open("w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS)
        self._csv.writeheader()
        for row in rows:
            self._csv.writerow({k: _cell(row.get(k)) for k in COLUMNS})
        self._file.flush()
        self._tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step)

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self._csv.writerow({"step": step, **{k: _cell(values.get(k)) for k in COLUMNS[1:]}})
        self._file.flush()
        for key, value in values.items():
            if value is not None and math.isfinite(value):
                self._tb.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        self._tb.close()


def _cell(value) -> str:
    return "" if value is None or value == "" else f"{float(value):.6g}"


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a metrics.csv as dicts of floats (missing cells absent); step as int."""
    with Path(path).open(newline="") as f:
        rows = []
        for raw in csv.DictReader(f):
            row = {k: float(v) for k, v in raw.items() if v not in ("", None)}
            row["step"] = int(row["step"])
            rows.append(row)
    return rows
