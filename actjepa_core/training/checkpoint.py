"""One-file checkpoints: weights + config + observation/action spec + normalisation stats + version.

Everything is stored as tensors and plain Python containers so a checkpoint loads with
``torch.load(..., weights_only=True)``: opening a checkpoint can never run code.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actjepa_core.atomic import atomic_path
from actjepa_core.config import TrainConfig, from_dict
from actjepa_core.errors import ActJepaError
from actjepa_core.objectives import build_objective
from actjepa_core.data.normalise import Normaliser

FORMAT = "actjepa"
FORMAT_VERSION = 1
WORLD_MODEL = "world_model"


def save_checkpoint(path: str | Path, kind: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` plus the format header atomically."""
    content = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(), **payload}
    with atomic_path(path) as tmp:
        torch.save(content, tmp)


def load_checkpoint(path: str | Path, kind: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check the header; a wrong file, version or kind is an ActJepaError."""
    path = Path(path)
    if not path.is_file():
        raise ActJepaError(f"{path}: checkpoint not found")
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for foreign/corrupt files
        raise ActJepaError(f"{path}: not a readable actjepa checkpoint ({err})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ActJepaError(f"{path}: not an actjepa checkpoint (no '{FORMAT}' format header)")
    if content.get("format_version") != FORMAT_VERSION:
        raise ActJepaError(f"{path}: checkpoint format version {content.get('format_version')}; "
                           f"expected {FORMAT_VERSION}")
    if kind is not None and content.get("kind") != kind:
        raise ActJepaError(f"{path}: checkpoint holds a {content.get('kind')!r}; expected {kind!r}")
    return content


def obs_shapes(spec: dict[str, dict]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(entry["shape"]) for key, entry in spec.items()}


def build_world_model(content: dict[str, Any], where: str = "checkpoint") -> nn.Module:
    """The (untrained) model a checkpoint's config describes: ACT-JEPA, or the objective it names."""
    config = from_dict(TrainConfig, content["config"], where)
    return build_objective(config, obs_shapes(content["obs_spec"]), int(content["action_dim"]))


def load_world_model(path: str | Path, device: str | torch.device = "cpu"
                     ) -> tuple[nn.Module, Normaliser, dict[str, Any]]:
    """The trained world model (eval mode, on ``device``), its normaliser and the raw content."""
    content = load_checkpoint(path, kind=WORLD_MODEL)
    model = build_world_model(content, str(path))
    model.load_state_dict(content["model"])
    normaliser = Normaliser.from_state_dict(content["stats"]).to(device)
    return model.to(device).eval(), normaliser, content
