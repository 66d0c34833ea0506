"""Per-step schedules: learning rate (linear warmup, then cosine to zero) and EMA momentum tau
(cosine from tau_start to tau_end), both pure functions of the step so a resumed run continues
exactly where it stopped."""
from __future__ import annotations

import math


def lr_at(step: int, total: int, base_lr: float, warmup_fraction: float) -> float:
    warmup = int(warmup_fraction * total)
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def tau_at(step: int, total: int, tau_start: float, tau_end: float) -> float:
    progress = min(step / max(1, total), 1.0)
    return tau_end - (tau_end - tau_start) * 0.5 * (1.0 + math.cos(math.pi * progress))
