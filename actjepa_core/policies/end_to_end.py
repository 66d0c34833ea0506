"""The camera policy trained end to end (objective ``bc``): its own encoder and head, deployed
as trained, with action chunks ensembled over time.

Unlike ``bc`` (a head fitted on a frozen encoder), nothing is trained here: ``build`` wraps a
checkpoint of `actjepa train --set objective=bc` in the Policy interface, so the ROS node, the
evaluation harness and the demo load it like any other policy file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.errors import ActJepaError
from actjepa_core.objectives.bc import EndToEndBC
from actjepa_core.policies.base import Policy, require_finite_latent
from actjepa_core.policies.bc import TemporalEnsemble
from actjepa_core.policies.world import FrozenWorld


@dataclass
class EndToEndConfig:
    """How the trained network is run; what it is comes from the training checkpoint."""

    ensemble_decay: float = 0.01  # m in w_i = exp(-m * i) over the chunks made for this step
    averaged: bool = True  # act with the EMA weights (bc.policy_ema > 0), else the last ones

    def validate(self, where: str = "config") -> "EndToEndConfig":
        if not 0.0 <= self.ensemble_decay < float("inf"):
            raise ActJepaError(f"{where}: ensemble_decay must be a finite value >= 0, got "
                               f"{self.ensemble_decay}")
        return self


class EndToEndPolicy(Policy):
    policy_type = "e2e"
    config_class = EndToEndConfig
    needs_demos = False

    def __init__(self, world: FrozenWorld, config: EndToEndConfig):
        super().__init__(world, config)
        if not isinstance(world.model, EndToEndBC):
            raise ActJepaError(f"an e2e policy runs a checkpoint trained with objective bc; this "
                               f"one was trained with {world.config.get('objective')!r} (use "
                               "`train-policy bc` to fit a head on a frozen encoder)")
        self.ensemble = TemporalEnsemble(world.model.chunk, self.config.ensemble_decay)

    @classmethod
    def build(cls, world: FrozenWorld, demos: EpisodeSet | Sequence[Episode] | None,
              config: EndToEndConfig | None = None) -> "EndToEndPolicy":
        return cls(world, config or EndToEndConfig())

    def summary(self) -> str:
        model = self.world.model
        return (f"e2e policy: encoder on {model.encoder.keys}, head keys {model.head_keys}, "
                f"chunk {model.chunk}, {'EMA' if self.uses_average else 'last'} weights")

    @property
    def uses_average(self) -> bool:
        return self.config.averaged and self.world.model.averaged is not None

    @property
    def variant(self) -> str:
        chunk = self.world.model.chunk
        return f"chunk {chunk}" if chunk > 1 else ""

    def reset(self) -> None:
        self.ensemble.reset()

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        chunk = self.world.model.act_chunk(self.model_input(obs), self.config.averaged)[0]
        require_finite_latent(chunk, self.policy_type)  # (chunk, A)
        action = self.processor.to_robot(self.ensemble(chunk))
        if not np.isfinite(action).all():
            raise ActJepaError(f"{self.policy_type} policy produced a non-finite action {action}")
        return action

    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        raise ActJepaError("an e2e policy acts on observations (its head reads vector keys "
                           "beside the latent); call act(obs)")
