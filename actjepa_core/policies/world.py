"""The frozen world model every policy builds on: trained weights plus the observation processor.

``FrozenWorld`` is the typed form of a checkpoint's world-model part (config, observation spec,
action size, normalisation statistics, weights): it loads from a training checkpoint
(``from_checkpoint``) or from the ``world`` entry of a policy file (``from_state``), and writes the
same entry back (``state``), so policy files keep their format. The model is in eval mode with no
gradients; every raw observation reaches it through ``processor`` (data/processor.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from actjepa_core.data.episodes import Episode
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.processor import ObservationProcessor, ObsSpec
from actjepa_core.device import resolve_device
from actjepa_core.training import checkpoint as ckpt

ENCODE_BATCH = 1024  # observations per encoder pass (64x64 images: ~50 MB of float input)
STORED = ("config", "obs_spec", "action_dim", "stats", "model")  # besides the passed-through extra
EXTRA = ("data",)  # where the training data came from: kept, never read


@dataclass
class FrozenWorld:
    model: nn.Module  # eval mode, requires_grad False, on processor.device
    processor: ObservationProcessor
    action_dim: int
    config: dict[str, Any]  # the training config, as the checkpoint stores it
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], device: str | torch.device = "cpu",
                   where: str = "checkpoint") -> "FrozenWorld":
        """From a checkpoint's world-model entries (a training checkpoint's top level, or a
        policy file's ``world``)."""
        device = resolve_device(device)
        model = ckpt.build_world_model(dict(state), where)
        model.load_state_dict(state["model"])
        model.to(device).eval().requires_grad_(False)
        processor = ObservationProcessor(state["obs_spec"],
                                         Normaliser.from_state_dict(state["stats"]), device)
        return cls(model, processor, int(state["action_dim"]), state["config"],
                   {k: state[k] for k in EXTRA if k in state})

    @classmethod
    def from_checkpoint(cls, path: str | Path,
                        device: str | torch.device = "cpu") -> "FrozenWorld":
        """The world model of a training checkpoint (`actjepa train`'s best.pt / last.pt)."""
        return cls.from_state(ckpt.load_checkpoint(path, kind=ckpt.WORLD_MODEL), device, str(path))

    def state(self) -> dict[str, Any]:
        """The checkpoint entries this world was loaded from (CPU tensors): a policy's ``world``."""
        weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return {"config": self.config, "obs_spec": self.spec, "action_dim": self.action_dim,
                "stats": self.processor.normaliser.to("cpu").state_dict(), "model": weights,
                **self.extra}

    @property
    def spec(self) -> ObsSpec:
        return self.processor.spec

    @property
    def device(self) -> torch.device:
        return self.processor.device

    @property
    def latent_dim(self) -> int:
        return int(self.config["model"]["latent_dim"])  # D

    # ---- encoding --------------------------------------------------------------------------
    @torch.no_grad()
    def encode_goal(self, obs: Mapping[str, np.ndarray]) -> torch.Tensor:
        """A raw goal observation through the TARGET encoder -> (1, D) (what the predictor was
        trained to output)."""
        return self.model.encode_target(self.processor.to_model(obs, "goal observation"))

    @torch.no_grad()
    def encode_episodes(self, episodes: Sequence[Episode], batch_size: int = ENCODE_BATCH,
                        target: bool = False) -> torch.Tensor:
        """Every observation of every demo, in order, through the frozen online encoder (or the
        target encoder, ``target=True``) -> (N, D), in no-grad batches."""
        self.processor.check_episodes(episodes)
        rows = self.processor.episode_rows(episodes)
        total = len(next(iter(rows.values())))
        encode = self.model.encode_target if target else self.model.encode
        latents = [encode(self.processor.rows_to_model(
            {k: v[start:start + batch_size] for k, v in rows.items()}))  # (b, D)
            for start in range(0, total, batch_size)]
        return torch.cat(latents).float()  # (N, D)
