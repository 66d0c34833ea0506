"""Which torch device a run, a policy or a benchmark asked for ("auto", "cpu", "cuda", "cuda:1"):
one small module, so that loading a policy never imports the trainer."""
from __future__ import annotations

import torch

from actjepa_core.errors import ActJepaError


def resolve_device(name: str | torch.device) -> torch.device:
    """"auto" is CUDA when there is one, else the CPU; a CUDA device asked for where there is
    none is an error, not a silent fall back to the CPU."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ActJepaError(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)
