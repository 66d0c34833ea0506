"""One-file checkpoints: weights + config + observation/action spec + normalisation stats + version.

Everything is stored as tensors and plain Python containers so a checkpoint loads with
``torch.load(..., weights_only=True)``: opening a checkpoint can never run code.
"""
from __future__ import annotations

import datetime as _dt
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actjepa_core.atomic import atomic_path
from actjepa_core.config import TrainConfig, from_dict
from actjepa_core.data.normalise import Normaliser
from actjepa_core.errors import ActJepaError
from actjepa_core.objectives import build_objective

FORMAT = "actjepa"
FORMAT_VERSION = 1
WORLD_MODEL = "world_model"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
PICKLE_MAGIC = b"\x80"  # pickle protocol >= 2: torch's legacy (non-zip) format
UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")  # torch.load's wording
WEIGHTS_ONLY_FAILED = "weights only load failed"  # torch.load's refusal (lower case)
MAX_GLOBALS_SHOWN = 3  # of the Python globals a refused pickle needs, named in the error


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
    verify_archive(path)
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for foreign/corrupt files
        raise ActJepaError(_load_failure(path, err)) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ActJepaError(f"{path}: not an actjepa checkpoint (no '{FORMAT}' format header)")
    if content.get("format_version") != FORMAT_VERSION:
        raise ActJepaError(f"{path}: checkpoint format version {content.get('format_version')}; "
                           f"expected {FORMAT_VERSION}")
    if kind is not None and content.get("kind") != kind:
        raise ActJepaError(f"{path}: checkpoint holds a {content.get('kind')!r}; expected {kind!r}")
    return content


def verify_archive(path: str | Path) -> None:
    """Refuse a checkpoint archive (torch.save's zip format) with a member that fails its
    CRC-32: torch.load does not check them, so a flipped bit in the weights would otherwise load
    silently as a different model."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return  # not an archive: torch.load's failure says what it is
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise ActJepaError(f"{path}: damaged checkpoint archive ({type(err).__name__}: {err}); "
                           "expected an intact file from actjepa") from None
    if bad is not None:
        raise ActJepaError(f"{path}: damaged checkpoint: {bad} fails its CRC check (the file "
                           "changed after it was written); expected an intact copy")


def _load_failure(path: Path, err: Exception) -> str:
    """One line for a file ``torch.load(weights_only=True)`` failed on: what the file is, and,
    for a pickle that needs arbitrary Python objects, that it is refused (torch's own message
    advises retrying with ``weights_only=False``, i.e. running whatever the file holds)."""
    with open(path, "rb") as f:
        head = f.read(len(HDF5_MAGIC))
    if head == HDF5_MAGIC:
        return (f"{path}: not a readable actjepa checkpoint (it is an HDF5 file, e.g. an "
                "episodes file, not a torch.save file)")
    if not head.startswith((ZIP_MAGIC, PICKLE_MAGIC)):
        return (f"{path}: not a readable actjepa checkpoint (not a torch.save file: neither a "
                "zip archive nor a pickle)")
    try:
        needed = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - legacy or damaged archive: fall back on torch's message
        needed = UNSUPPORTED_GLOBAL.findall(str(err))
    if needed:
        shown = ", ".join(needed[:MAX_GLOBALS_SHOWN]) + (
            f" and {len(needed) - MAX_GLOBALS_SHOWN} more"
            if len(needed) > MAX_GLOBALS_SHOWN else "")
        return (f"{path}: refused: a pickle of Python objects that would import {shown} to "
                "load; an actjepa checkpoint holds only tensors and plain containers, and other "
                "pickles can run code when loaded, so they are never opened (expected a file "
                "from `actjepa train` or `actjepa train-policy`)")
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    first = lines[0] if lines and WEIGHTS_ONLY_FAILED not in lines[0].lower() else ""
    return (f"{path}: not a readable actjepa checkpoint (damaged or truncated: "
            f"{type(err).__name__}{': ' + first if first else ''})")


def obs_shapes(spec: dict[str, dict]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(entry["shape"]) for key, entry in spec.items()}


def build_world_model(content: dict[str, Any], where: str = "checkpoint") -> nn.Module:
    """The (untrained) model a checkpoint's config describes: ACT-JEPA, or the objective it
    names."""
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


ENCODER_PREFIXES = ("encoder.", "target_encoder.")  # online encoder, EMA target (ACT-JEPA)


def init_encoder(model: nn.Module, path: str | Path, obs_spec: dict[str, dict]) -> None:
    """Copy the online encoder of the checkpoint at ``path`` into ``model``'s encoder (and into
    its EMA target, when it has one), so a run starts from a pretrained representation.

    The observation spec must match: the same keys, shapes and dtypes the encoder was trained
    on (the keys this run's encoder reads: objective ``bc`` feeds its head keys past it).
    Normalisation statistics are fitted afresh on this run's data; fine-tuning on the data the
    encoder was pretrained on (the usual case) gives the same statistics."""
    content = load_checkpoint(path, kind=WORLD_MODEL)
    keys = getattr(model.encoder, "keys", sorted(obs_spec))  # what this run's encoder reads
    wanted = {k: obs_spec.get(k) for k in keys}
    if content["obs_spec"] != wanted:
        raise ActJepaError(f"run.init_encoder {path}: its encoder was trained on observations "
                           f"{content['obs_spec']}; this run's data has {wanted} for the keys "
                           "its encoder reads")
    source = {k[len("encoder."):]: v for k, v in content["model"].items()
              if k.startswith("encoder.")}
    for prefix in ENCODER_PREFIXES:
        module = getattr(model, prefix.rstrip("."), None)
        if module is None:
            continue
        mine = module.state_dict()
        if set(mine) != set(source) or any(mine[k].shape != source[k].shape for k in mine):
            raise ActJepaError(f"run.init_encoder {path}: its encoder's layers differ from this "
                               "run's (model.* settings must match the pretrained run's)")
        module.load_state_dict(source)
