"""One Policy interface for every controller built on a frozen ACT-JEPA encoder.

``act(obs)`` takes a raw observation dict (robot units, uint8 images), checks it against the spec
the encoder was trained on, normalises, encodes, asks the concrete policy for a normalised action,
maps it back to robot units and clips it to the dataset's action bounds. It never returns a
non-finite action: a policy that produces one raises instead.

A policy file is one checkpoint (kind ``policy``) holding the world model (weights, config, spec,
stats) and the policy's own part, so a node needs a single path.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from actjepa_core.training import checkpoint as ckpt
from actjepa_core.errors import ActJepaError
from actjepa_core.models import ACTJEPA
from actjepa_core.data.normalise import Normaliser
from actjepa_core.training.trainer import resolve_device

POLICY = "policy"
WORLD_MODEL_KEYS = ("config", "obs_spec", "action_dim", "stats", "model", "data")


class Policy(ABC):
    policy_type: ClassVar[str]  # "bc" | "nn" | "mpc"
    registry: ClassVar[dict[str, type["Policy"]]] = {}

    def __init__(self, world: dict[str, Any], device: str | torch.device = "cpu"):
        """``world``: the world-model part of a checkpoint (see WORLD_MODEL_KEYS)."""
        self.device = resolve_device(device)
        self.world = {k: world[k] for k in WORLD_MODEL_KEYS if k in world}
        self.model: ACTJEPA = ckpt.build_world_model(self.world)
        self.model.load_state_dict(world["model"])
        self.model.to(self.device).eval().requires_grad_(False)
        self.normaliser = Normaliser.from_state_dict(world["stats"]).to(self.device)
        self.obs_spec: dict[str, dict] = world["obs_spec"]
        self.action_dim = int(world["action_dim"])
        self.obs_noise = 0.0  # test-time Gaussian noise on the normalised observation (eval)
        self.noise_generator = torch.Generator(device=self.device).manual_seed(0)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "policy_type", None):
            Policy.registry[cls.policy_type] = cls

    # ---- the interface ---------------------------------------------------------------------
    @property
    def variant(self) -> str:
        """A short tag for results tables when settings change what the policy is ('' = plain)."""
        return ""

    def reset(self) -> None:
        """Forget per-episode state (warm starts, action chunks). Stateless policies: no-op."""

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Raw observation -> action in robot units, float32 (A,), finite and within bounds."""
        latent = self.encode(obs)  # (1, D)
        action = self.unnormalise(self.act_latent(latent))
        if not np.isfinite(action).all():
            raise ActJepaError(f"{self.policy_type} policy produced a non-finite action {action}")
        return action

    @abstractmethod
    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """(1, D) latent -> (A,) action in the normalised [-1, 1] space."""

    @abstractmethod
    def policy_state(self) -> dict[str, Any]:
        """The policy's own part of the checkpoint: tensors and plain containers only."""

    # ---- shared steps ----------------------------------------------------------------------
    def check_obs(self, obs: Mapping[str, np.ndarray]) -> None:
        missing = [k for k in self.obs_spec if k not in obs]
        if missing:
            raise ActJepaError(f"observation is missing key(s) {missing}; the encoder expects "
                               f"{sorted(self.obs_spec)}")
        for key, spec in self.obs_spec.items():
            value = np.asarray(obs[key])
            if tuple(value.shape) != tuple(spec["shape"]):
                raise ActJepaError(f"observation '{key}' has shape {tuple(value.shape)}; expected "
                                   f"{tuple(spec['shape'])}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ActJepaError(f"observation '{key}' contains NaN or Inf")

    def encode(self, obs: Mapping[str, np.ndarray]) -> torch.Tensor:
        """Check, normalise, add test-time noise, encode: raw obs -> (1, D)."""
        self.check_obs(obs)
        x = {k: torch.as_tensor(np.asarray(obs[k]), device=self.device)[None] for k in self.obs_spec}
        x = {k: v.float() if v.dtype != torch.uint8 else v for k, v in x.items()}
        x = self.normaliser.obs(x)
        if self.obs_noise > 0:
            x = {k: v + self.obs_noise * torch.randn(v.shape, device=self.device,
                                                     generator=self.noise_generator)
                 for k, v in x.items()}
        return self.model.encode(x)

    def unnormalise(self, action: torch.Tensor) -> np.ndarray:
        action = self.normaliser.unaction(action.clamp(-1.0, 1.0))
        action = torch.minimum(torch.maximum(action, self.normaliser.action_low),
                               self.normaliser.action_high)
        return action.reshape(self.action_dim).float().cpu().numpy()

    # ---- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        ckpt.save_checkpoint(path, POLICY, {"policy_type": self.policy_type,
                                            "world": self.world, "policy": self.policy_state()})

    @classmethod
    def from_state(cls, world: dict[str, Any], state: dict[str, Any],
                   device: str | torch.device) -> "Policy":
        """Rebuild from a checkpoint's parts; subclasses override to read their state."""
        raise NotImplementedError


def world_from_checkpoint(path: str | Path) -> dict[str, Any]:
    """The world-model part of a training checkpoint (no optimizer state)."""
    content = ckpt.load_checkpoint(path, kind=ckpt.WORLD_MODEL)
    return {k: content[k] for k in WORLD_MODEL_KEYS if k in content}


def load_policy(path: str | Path, device: str | torch.device = "cpu",
                policy_type: str | None = None) -> Policy:
    """Load any policy file; ``policy_type`` (if given) must match what the file holds."""
    content = ckpt.load_checkpoint(path, kind=POLICY)
    kind = content.get("policy_type")
    if policy_type is not None and kind != policy_type:
        raise ActJepaError(f"{path}: holds a {kind!r} policy; expected {policy_type!r}")
    if kind not in Policy.registry:
        raise ActJepaError(f"{path}: unknown policy type {kind!r}; known: "
                           f"{sorted(Policy.registry)}")
    return Policy.registry[kind].from_state(content["world"], content["policy"], device)
