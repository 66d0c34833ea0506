"""The one place that maps between robot data and model data.

A world model is trained on an observation spec (key -> shape and dtype, stored in every checkpoint)
and normalisation statistics. ``ObservationProcessor`` holds both and does every conversion:

- ``check(obs)``: a raw observation dict against the spec (keys, shapes, finite values);
- ``to_model(obs)``: one raw observation -> normalised model input, a batch of one;
- ``rows_to_model(rows)``: raw rows (N, ...) of an episodes file -> normalised model input;
- ``compact(key, rows)`` / ``expand(rows)``: the training set's storage form (states normalised
  once, images kept uint8, 4x smaller) and its model input;
- ``actions_to_model(actions)``: robot units -> [-1, 1];
- ``to_robot(action)``: [-1, 1] -> robot units, clipped to the dataset's action bounds.

States are standardised, images (uint8) become floats in [0, 1] (``Normaliser``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from actjepa_core.data.episodes import Episode
from actjepa_core.data.normalise import Normaliser
from actjepa_core.errors import ActJepaError

ObsSpec = dict[str, dict[str, Any]]
"""key -> {"shape": [...], "dtype": "float32" | "uint8" | ...}, one observation (no time axis)."""


class ObservationProcessor:
    """An observation spec and its normalisation statistics, on one device."""

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], normaliser: Normaliser,
                 device: str | torch.device = "cpu"):
        self.spec: ObsSpec = {key: dict(entry) for key, entry in spec.items()}
        self.device = torch.device(device)
        self.normaliser = normaliser.to(self.device)
        self.action_dim = int(self.normaliser.action_low.numel())
        self.action_low = self.normaliser.action_low.cpu().numpy()  # (A,) robot units
        self.action_high = self.normaliser.action_high.cpu().numpy()

    @classmethod
    def from_episodes(cls, episodes: Sequence[Episode], keys: Sequence[str],
                      normaliser: Normaliser, device: str | torch.device = "cpu"
                      ) -> "ObservationProcessor":
        """The spec of ``keys`` as the first episode holds them."""
        first = episodes[0].obs
        spec = {k: {"shape": list(first[k].shape[1:]), "dtype": str(first[k].dtype)}
                for k in keys}
        return cls(spec, normaliser, device)

    @property
    def keys(self) -> list[str]:
        return list(self.spec)

    def to(self, device: str | torch.device) -> "ObservationProcessor":
        return ObservationProcessor(self.spec, self.normaliser, device)

    # ---- checks ----------------------------------------------------------------------------
    def check(self, obs: Mapping[str, np.ndarray], what: str = "observation") -> None:
        """One raw observation: every spec key, in its shape, with finite float values."""
        missing = [k for k in self.spec if k not in obs]
        if missing:
            raise ActJepaError(f"{what} is missing key(s) {missing}; the encoder expects "
                               f"{sorted(self.spec)}")
        for key, entry in self.spec.items():
            value = np.asarray(obs[key])
            if tuple(value.shape) != tuple(entry["shape"]):
                raise ActJepaError(f"{what} '{key}' has shape {tuple(value.shape)}; expected "
                                   f"{tuple(entry['shape'])}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ActJepaError(f"{what} '{key}' contains NaN or Inf")

    def check_episodes(self, episodes: Sequence[Episode]) -> None:
        """Demos must carry every spec key in the same shape and kind, and actions of the same
        size as the world model's."""
        for i, ep in enumerate(episodes):
            for key, entry in self.spec.items():
                if key not in ep.obs:
                    raise ActJepaError(f"demo {i} has no observation key {key!r}; the encoder "
                                       f"expects {sorted(self.spec)}")
                arr = ep.obs[key]
                if tuple(arr.shape[1:]) != tuple(entry["shape"]):
                    raise ActJepaError(f"demo {i} observation {key!r} has shape "
                                       f"{tuple(arr.shape[1:])} per step; the encoder expects "
                                       f"{tuple(entry['shape'])}")
                if (arr.dtype == np.uint8) != (np.dtype(entry["dtype"]) == np.uint8):
                    raise ActJepaError(f"demo {i} observation {key!r} has dtype {arr.dtype}; the "
                                       f"encoder expects {entry['dtype']}")
            if ep.actions.shape[1] != self.action_dim:
                raise ActJepaError(f"demo {i} has {ep.actions.shape[1]}-dim actions; the "
                                   f"encoder's world model expects {self.action_dim}")

    # ---- observations in -------------------------------------------------------------------
    def to_model(self, obs: Mapping[str, np.ndarray],
                 what: str = "observation") -> dict[str, torch.Tensor]:
        """Check one raw observation and normalise it: key -> (1, ...) float tensors."""
        self.check(obs, what)
        x = {k: torch.as_tensor(np.asarray(obs[k]), device=self.device)[None] for k in self.spec}
        x = {k: v.float() if v.dtype != torch.uint8 else v for k, v in x.items()}
        return self.normaliser.obs(x)

    def rows_to_model(self, rows: Mapping[str, np.ndarray | torch.Tensor]
                      ) -> dict[str, torch.Tensor]:
        """Raw rows key -> (N, ...) (already checked, e.g. by check_episodes) -> model input."""
        return self.normaliser.obs({k: torch.as_tensor(rows[k], device=self.device)
                                    for k in self.spec})

    def episode_rows(self, episodes: Sequence[Episode]) -> dict[str, np.ndarray]:
        """Every observation of ``episodes``, in order, concatenated: key -> (N, ...) raw."""
        return {k: np.concatenate([ep.obs[k] for ep in episodes]) for k in self.spec}

    def compact(self, key: str, rows: torch.Tensor) -> torch.Tensor:
        """Storage form of raw rows: states normalised now, uint8 images left compact."""
        return rows if rows.dtype == torch.uint8 else self.normaliser.obs_key(key, rows)

    def expand(self, rows: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Compact rows -> model input (images to floats in [0, 1])."""
        return {k: self.normaliser.obs_key(k, v) if v.dtype == torch.uint8 else v
                for k, v in rows.items()}

    # ---- actions ---------------------------------------------------------------------------
    def actions_to_model(self, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Robot units (N, A) -> the normalised [-1, 1] space the policies work in."""
        return self.normaliser.action(torch.as_tensor(actions, device=self.device).float())

    def episode_actions(self, episodes: Sequence[Episode]) -> torch.Tensor:
        """Every demo action, in order, normalised -> (N, A)."""
        return self.actions_to_model(np.concatenate([ep.actions for ep in episodes]))

    def to_robot(self, action: torch.Tensor) -> np.ndarray:
        """One normalised action -> float32 (A,) in robot units, within the dataset's bounds."""
        action = self.normaliser.unaction(action.clamp(-1.0, 1.0))
        action = torch.minimum(torch.maximum(action, self.normaliser.action_low),
                               self.normaliser.action_high)
        return action.reshape(self.action_dim).float().cpu().numpy()
